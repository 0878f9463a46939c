"""Small, composable mutations of a ``SandboxWorld``: the one place that knows record shapes.

One module per part of the shop (``values``, ``customers``, ``orders``, ``labels``, ``nav``); every
helper is imported from here (``from shipnav_dagster.sandbox import scenario as sc``).

Every helper takes the world lock, writes records in exactly the JSON shape the real API returns
(ShipStation V1 objects with naive Pacific timestamps; NAV page fields with their OData names) and
returns the record it created or changed. Tests, the demo, the benchmark and the seed all build
their worlds through these functions, so a shape fix made here reaches all of them.

Times are naive Pacific ``datetime``s (ShipStation's wall clock); ``None`` means "now". Identifiers
and tracking numbers are derived deterministically from the world's id counter, so the same
sequence of calls always yields the same world.

Nested objects that never change once written (addresses, weights, dimensions, option blocks)
may be shared between records to keep large benchmark worlds small: replace them, never mutate
them in place.
"""

from shipnav_dagster.sandbox.scenario.customers import add_store, customer_no_for, make_address
from shipnav_dagster.sandbox.scenario.labels import buy_label, mark_shipped, void_label
from shipnav_dagster.sandbox.scenario.nav import (
    add_nav_order,
    install_shipping_agents,
    nav_order_for,
    post_nav_shipment,
    release_nav_order,
    reopen_nav_order,
    set_nav_platform,
    ship_and_invoice_nav_order,
    update_nav_order,
    use_nav_user_password_auth,
    use_windows_auth,
)
from shipnav_dagster.sandbox.scenario.orders import (
    add_customer_order,
    add_ss_order,
    labels_of,
    order_by_number,
    set_order_status,
    split_order,
    touch_order,
)
from shipnav_dagster.sandbox.scenario.values import (
    ACCOUNT_USER_ID,
    CATALOG,
    DEFAULT_SERVICE,
    DEFAULT_SHIPPING_AGENTS,
    WAREHOUSE_ID,
    ItemSpec,
    Product,
    Record,
    guid_for,
    hex_key_for,
    tracking_number_for,
)

__all__ = [
    "ACCOUNT_USER_ID",
    "CATALOG",
    "DEFAULT_SERVICE",
    "DEFAULT_SHIPPING_AGENTS",
    "WAREHOUSE_ID",
    "ItemSpec",
    "Product",
    "Record",
    "add_customer_order",
    "add_nav_order",
    "add_ss_order",
    "add_store",
    "buy_label",
    "customer_no_for",
    "guid_for",
    "hex_key_for",
    "install_shipping_agents",
    "labels_of",
    "make_address",
    "mark_shipped",
    "nav_order_for",
    "order_by_number",
    "post_nav_shipment",
    "release_nav_order",
    "reopen_nav_order",
    "set_nav_platform",
    "set_order_status",
    "ship_and_invoice_nav_order",
    "split_order",
    "touch_order",
    "tracking_number_for",
    "update_nav_order",
    "use_nav_user_password_auth",
    "use_windows_auth",
    "void_label",
]
