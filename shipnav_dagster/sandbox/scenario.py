"""Small, composable mutations of a ``SandboxWorld``: the one place that knows record shapes.

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

import functools
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shipnav_dagster.sandbox.nav.schema import (
    POSTED_SHIPMENT,
    SALES_LINE,
    SALES_ORDER,
    EntityDef,
    default_value,
)
from shipnav_dagster.sandbox.shipstation.v2 import events as v2_events
from shipnav_dagster.sandbox.state import (
    NAV_USER_PASSWORD,
    WINDOWS,
    SandboxWorld,
    format_pacific,
    pacific_now,
)

Record = dict[str, Any]
ItemSpec = tuple[str, int]  # (sku, quantity)

# ShipStation account-level constants: one ShipStation user and one ship-from warehouse.
ACCOUNT_USER_ID = "c9a5a5d3-3f1e-4f7b-9d0e-2b1f6f3c8a10"
WAREHOUSE_ID = 88_001

# NAV demo shipping agents and their services (tables 291 and 5790), as the brief's shop has them.
DEFAULT_SHIPPING_AGENTS: dict[str, frozenset[str]] = {
    "UPS": frozenset({"GROUND", "NEXTDAY", "2DAY"}),
    "FEDEX": frozenset({"GROUND", "EXPRESS", "2DAY"}),
    "USPS": frozenset({"PRIORITY", "FIRST"}),
    "DHL": frozenset({"EXPRESS"}),
}

# The default service ShipStation shows for each carrier when a caller does not name one.
DEFAULT_SERVICE: dict[str, str] = {
    "ups": "ups_ground",
    "fedex": "fedex_ground",
    "usps": "usps_priority_mail",
    "stamps_com": "usps_priority_mail",
    "dhl_express": "dhl_express_worldwide",
    "ontrac": "ontrac_ground",
}


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price: float
    weight_oz: float
    product_id: int


# A small catalog so orders, shipment items and NAV lines agree on names and prices. NAV item
# numbers are Code[20], so every SKU is upper case and at most 20 characters.
CATALOG: dict[str, Product] = {
    p.sku: p
    for p in (
        Product("MUG-11OZ-BLK", "Ceramic Mug 11oz, Black", 14.0, 16.0, 41_001),
        Product("MUG-15OZ-WHT", "Ceramic Mug 15oz, White", 16.5, 20.0, 41_002),
        Product("TEE-CRW-M-NVY", "Crew Tee, Navy, M", 22.0, 6.0, 41_003),
        Product("TEE-CRW-L-GRY", "Crew Tee, Heather Grey, L", 22.0, 6.5, 41_004),
        Product("HOOD-ZIP-XL-BLK", "Zip Hoodie, Black, XL", 54.0, 22.0, 41_005),
        Product("CAP-5P-OLV", "Five-Panel Cap, Olive", 28.0, 4.0, 41_006),
        Product("BOTTLE-750-STL", "Insulated Bottle 750 ml", 32.0, 14.0, 41_007),
        Product("TOTE-CNV-NAT", "Canvas Tote, Natural", 18.0, 7.0, 41_008),
        Product("SOCK-3PK-MIX", "Crew Socks 3-Pack", 15.0, 5.0, 41_009),
        Product("POSTER-A2-MAP", 'Poster A2 "Coastline"', 24.0, 9.0, 41_010),
        Product("NOTEBK-A5-DOT", "Notebook A5, Dotted", 12.0, 8.0, 41_011),
        Product("LAMP-DESK-BRS", "Desk Lamp, Brass", 89.0, 56.0, 41_012),
        Product("KNIFE-CHEF-8IN", "Chef's Knife 8\"", 119.0, 12.0, 41_013),
        Product("CANDLE-SOY-CDR", "Soy Candle, Cedar", 26.0, 15.0, 41_014),
        Product("BLANKET-WOOL-Q", "Wool Blanket, Queen", 149.0, 68.0, 41_015),
    )
}

# --------------------------------------------------------------------------------------------
# Small formatting and derivation helpers
# --------------------------------------------------------------------------------------------


def _ts(value: datetime) -> str:
    return format_pacific(value)


def _item_ts(value: datetime) -> str:
    """Order-item timestamps: .NET drops trailing zeros there (``2015-08-17T09:24:14.78``)."""
    text = format_pacific(value).rstrip("0")
    return text.rstrip(".")


def _date_text(value: date | datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _digits(key: str, count: int) -> str:
    """``count`` pseudo-random digits derived from ``key`` (deterministic, well spread)."""
    out = ""
    counter = 0
    while len(out) < count:
        digest = hashlib.blake2b(f"{key}/{counter}".encode(), digest_size=16).digest()
        out += str(int.from_bytes(digest, "big"))[1:]  # drop the leading digit: it is biased
        counter += 1
    return out[:count]


def guid_for(key: str) -> str:
    """A GUID-shaped string derived from ``key`` (order keys, user ids): 36 characters."""
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def hex_key_for(key: str) -> str:
    """The same GUID without dashes: 32 hex digits (the other orderKey shape of manual orders)."""
    return guid_for(key).replace("-", "")


def tracking_number_for(carrier_code: str, serial: int, service_code: str | None = None) -> str:
    """A realistically shaped tracking number for ``carrier_code``, unique per (carrier, serial).

    The last digits embed ``serial`` so numbers never collide inside one world; the rest comes
    from a hash so they do not look sequential. FedEx SmartPost / Ground Economy numbers are 34
    digits, longer than NAV's 30-character Package Tracking No. (the over-long case).
    """
    code = carrier_code.lower()
    key = f"{code}:{serial}"
    tail9 = f"{serial % 10**9:09d}"
    if code == "ups":
        service = {"ups_next_day_air": "01", "ups_2nd_day_air": "02"}.get(service_code or "", "03")
        return "1Z" + _alnum(key, 6) + service + f"{serial % 10**8:08d}"  # 18 characters
    if code == "fedex":
        if service_code in ("fedex_ground_economy", "fedex_smartpost"):
            return "92612" + _digits(key, 20) + tail9  # 34 digits
        return "7" + _digits(key, 2) + tail9  # 12 digits
    if code in ("usps", "stamps_com"):
        return "94001" + _digits(key, 8) + tail9  # 22 digits
    if code == "dhl_express":
        return _digits(key, 1) + tail9  # 10 digits
    if code == "ontrac":
        return "C" + _digits(key, 5) + tail9  # 15 characters
    return "TRK" + _digits(key, 3) + tail9


def _alnum(key: str, count: int) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXY"
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:count])


def _now(value: datetime | None) -> datetime:
    return pacific_now() if value is None else value


def _money(value: float) -> float:
    return round(value, 2)


def _bump_modify(order: Record, when: datetime) -> None:
    """modifyDate only moves forward (a late-arriving helper call must not rewind it)."""
    stamp = _ts(when)
    if stamp > order["modifyDate"]:
        order["modifyDate"] = stamp


# Nested objects that never change after creation are shared between records (one dict per
# distinct value), which keeps 100k-shipment benchmark worlds small. Helpers that change such a
# value replace the object, never mutate it; callers must do the same.
@functools.cache
def _weight(ounces: float) -> Record:
    return {"value": ounces, "units": "ounces", "WeightUnits": 1}


@functools.cache
def _dimensions(length: float, width: float, height: float) -> Record:
    return {"units": "inches", "length": length, "width": width, "height": height}


@functools.cache
def _shipment_options(store_id: int) -> Record:
    return {
        "billToParty": None,
        "billToAccount": None,
        "billToPostalCode": None,
        "billToCountryCode": None,
        "storeId": store_id,
    }


_NO_INSURANCE: Record = {"provider": None, "insureShipment": False, "insuredValue": 0.0}
_NO_CUSTOMS: Record = {"contents": None, "customsItems": None, "nonDelivery": None}


def _product(sku: str) -> Product:
    product = CATALOG.get(sku)
    if product is not None:
        return product
    # Unknown SKUs are allowed (tests invent them); give them a stable price and weight.
    return Product(sku, sku.title(), 10.0, 8.0, 49_000 + int(_digits(sku, 3)))


# --------------------------------------------------------------------------------------------
# Addresses, customers, stores
# --------------------------------------------------------------------------------------------

_STREETS = ("Main St", "Oak Ave", "Pine St", "Maple Dr", "Cedar Ln", "Elm St", "Lakeview Rd", "2nd Ave")
_CITIES = (
    ("Seattle", "WA", "98101"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Chicago", "IL", "60607"),
    ("Brooklyn", "NY", "11201"),
    ("Atlanta", "GA", "30303"),
    ("San Diego", "CA", "92101"),
    ("Boise", "ID", "83702"),
    ("Madison", "WI", "53703"),
)


def make_address(
    name: str,
    *,
    company: str | None = None,
    key: str | None = None,
    country: str = "US",
    street1: str | None = None,
    city: str | None = None,
    state: str | None = None,
    postal_code: str | None = None,
    residential: bool | None = None,
) -> Record:
    """A ShipStation Address object; unspecified parts are derived from ``key`` (or the name)."""
    seed = key or name
    number = 100 + int(_digits(seed, 4)) % 9800
    default_city, default_state, default_zip = _CITIES[int(_digits(seed + "c", 2)) % len(_CITIES)]
    return {
        "name": name,
        "company": company,
        "street1": street1 or f"{number} {_STREETS[number % len(_STREETS)]}",
        "street2": None,
        "street3": None,
        "city": city or default_city,
        "state": state if state is not None else default_state,
        "postalCode": postal_code or default_zip,
        "country": country,
        "phone": "555-" + _digits(seed + "p", 3) + "-" + _digits(seed + "q", 4),
        "residential": (company is None) if residential is None else residential,
        "addressVerified": "Address validated successfully",
    }


def customer_no_for(name: str) -> str:
    """A stable NAV customer number (Code[20]) for a sell-to name."""
    return "C" + _digits(" ".join(name.split()).lower(), 5)


def _email_for(name: str) -> str:
    ascii_name = name.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", ".", ascii_name).strip(".") or "customer"
    return f"{slug}@example.com"


def add_store(
    world: SandboxWorld,
    *,
    store_name: str = "ShipStation Manual Store",
    marketplace_name: str = "ShipStation",
    marketplace_id: int = 0,
    store_id: int | None = None,
    created: datetime | None = None,
) -> Record:
    """A ShipStation store (``GET /stores`` shape). Store ids come from the world's id counter."""
    when = _now(created)
    with world.lock:
        sid = store_id if store_id is not None else world.shipstation.next_id()
        store = {
            "storeId": sid,
            "storeName": store_name,
            "marketplaceId": marketplace_id,
            "marketplaceName": marketplace_name,
            "accountName": None,
            "email": None,
            "integrationUrl": None,
            "active": True,
            "companyName": "",
            "phone": "",
            "publicEmail": "",
            "website": "",
            "refreshDate": _ts(when),
            "lastRefreshAttempt": _ts(when),
            "createDate": _ts(when),
            "modifyDate": _ts(when),
            "autoRefresh": marketplace_id != 0,
        }
        world.shipstation.stores[sid] = store
        return store


def _default_store(world: SandboxWorld) -> int:
    if not world.shipstation.stores:
        add_store(world)
    return next(iter(world.shipstation.stores))


# --------------------------------------------------------------------------------------------
# ShipStation orders
# --------------------------------------------------------------------------------------------


def _order_item(
    world: SandboxWorld,
    sku: str,
    quantity: int,
    when: datetime,
    *,
    line_item_key: str | None,
    unit_price: float | None = None,
    adjustment: bool = False,
    name: str | None = None,
) -> Record:
    product = _product(sku)
    return {
        "orderItemId": world.shipstation.next_id(),
        "lineItemKey": line_item_key,
        "sku": sku,
        "name": name or product.name,
        "imageUrl": None,
        "weight": None if adjustment else _weight(product.weight_oz),
        "quantity": quantity,
        "unitPrice": product.unit_price if unit_price is None else unit_price,
        "taxAmount": None,
        "shippingAmount": None,
        "warehouseLocation": None,
        "options": [],
        "productId": None if adjustment else product.product_id,
        "fulfillmentSku": None,
        "adjustment": adjustment,
        "upc": None,
        "createDate": _item_ts(when),
        "modifyDate": _item_ts(when),
    }


def _order_totals(items: Sequence[Record]) -> tuple[float, float]:
    """(goods total incl. adjustments, weight in ounces of shippable items)."""
    total = sum(i["quantity"] * i["unitPrice"] for i in items)
    weight = sum(i["quantity"] * i["weight"]["value"] for i in items if i["weight"])
    return _money(total), round(weight, 1)


def _next_order_number(world: SandboxWorld) -> str:
    taken = {o["orderNumber"] for o in world.shipstation.orders.values()}
    number = 100_001 + len(world.shipstation.orders)
    while str(number) in taken:
        number += 1
    return str(number)


def add_ss_order(
    world: SandboxWorld,
    *,
    order_number: str | None = None,
    customer_name: str = "John Smith",
    company: str | None = None,
    order_date: datetime | None = None,
    created: datetime | None = None,
    items: Sequence[ItemSpec] = (("MUG-11OZ-BLK", 1),),
    adjustments: Sequence[tuple[str, float]] = (),
    store_id: int | None = None,
    order_status: str = "awaiting_shipment",
    order_key: str | None = None,
    ship_to: Record | None = None,
    bill_to: Record | None = None,
    line_item_keys: bool = False,
    custom_fields: Sequence[str | None] = (None, None, None),
    requested_shipping_service: str | None = None,
) -> Record:
    """A ShipStation order (``GET /orders`` item shape), without anything on the NAV side.

    ``created`` (the import into ShipStation) defaults to a few minutes after ``order_date``;
    ``adjustments`` are (name, amount) pseudo-lines with ``adjustment: true`` (discounts).
    ``ship_to``/``bill_to`` are used as given (so callers may share one address object).
    """
    placed = _now(order_date)
    imported = created if created is not None else placed + timedelta(minutes=3)
    with world.lock:
        state = world.shipstation
        sid = store_id if store_id is not None else _default_store(world)
        number = order_number if order_number is not None else _next_order_number(world)
        order_id = state.next_id()
        key = order_key if order_key is not None else guid_for(f"order:{sid}:{number}")
        ship = ship_to if ship_to is not None else make_address(customer_name, company=company, key=number)
        bill = bill_to if bill_to is not None else dict(ship)
        lines = [
            _order_item(
                world,
                sku,
                qty,
                placed,
                line_item_key=_digits(f"li:{key}:{n}", 11) if line_item_keys else None,
            )
            for n, (sku, qty) in enumerate(items)
        ]
        lines += [
            _order_item(
                world,
                "DISCOUNT CODE",
                1,
                placed,
                line_item_key=None,
                unit_price=-abs(amount),
                adjustment=True,
                name=name,
            )
            for name, amount in adjustments
        ]
        total, weight_oz = _order_totals(lines)
        email = _email_for(customer_name)
        shipping = 0.0 if total >= 75 else 7.95
        tax = _money(max(total, 0) * 0.0825)
        order = {
            "orderId": order_id,
            "orderNumber": number,
            "orderKey": key,
            "orderDate": _ts(placed),
            "createDate": _ts(imported),
            "modifyDate": _ts(imported),
            "paymentDate": None if order_status == "awaiting_payment" else _ts(placed),
            "shipByDate": None,
            "orderStatus": order_status,
            "customerId": int("7" + _digits(" ".join(customer_name.split()).lower(), 7)),
            "customerUsername": email,
            "customerEmail": email,
            "billTo": bill,
            "shipTo": ship,
            "items": lines,
            "orderTotal": _money(total + shipping + tax),
            "amountPaid": 0.0 if order_status == "awaiting_payment" else _money(total + shipping + tax),
            "taxAmount": tax,
            "shippingAmount": shipping,
            "customerNotes": None,
            "internalNotes": None,
            "gift": False,
            "giftMessage": None,
            "paymentMethod": "Credit Card",
            "requestedShippingService": requested_shipping_service,
            "carrierCode": None,
            "serviceCode": None,
            "packageCode": None,
            "confirmation": "none",
            "shipDate": None,
            "holdUntilDate": None,
            "weight": _weight(weight_oz),
            "dimensions": None,
            "insuranceOptions": _NO_INSURANCE,
            "internationalOptions": _NO_CUSTOMS,
            "advancedOptions": {
                "warehouseId": WAREHOUSE_ID,
                "nonMachinable": False,
                "saturdayDelivery": False,
                "containsAlcohol": False,
                "mergedOrSplit": False,
                "mergedIds": [],
                "parentId": None,
                "storeId": sid,
                "customField1": custom_fields[0],
                "customField2": custom_fields[1],
                "customField3": custom_fields[2],
                "source": None,
                "billToParty": None,
                "billToAccount": None,
                "billToPostalCode": None,
                "billToCountryCode": None,
                "billToMyOtherAccount": None,
            },
            "tagIds": None,
            "userId": None,
            "externallyFulfilled": False,
            "externallyFulfilledBy": None,
        }
        state.orders[order_id] = order
        return order


def add_customer_order(
    world: SandboxWorld,
    *,
    order_number: str | None = None,
    customer_name: str = "John Smith",
    company: str | None = None,
    order_date: datetime | None = None,
    created: datetime | None = None,
    items: Sequence[ItemSpec] = (("MUG-11OZ-BLK", 1),),
    adjustments: Sequence[tuple[str, float]] = (),
    store_id: int | None = None,
    order_status: str = "awaiting_shipment",
    order_key: str | None = None,
    ship_to: Record | None = None,
    bill_to: Record | None = None,
    line_item_keys: bool = False,
    in_nav: bool = True,
    nav_status: str = "Open",
    external_document_no: str | None = None,
    nav_no: str | None = None,
    nav_customer_name: str | None = None,
    nav_order_date: date | None = None,
) -> tuple[Record, Record | None]:
    """A ShipStation order and (``in_nav``) its NAV SalesOrder with one sales line per item.

    NAV defaults: ``External_Document_No`` = the ShipStation ``orderNumber`` (pass ``""`` for a
    blank one), ``No`` = the next ``SO-1xxxx`` number, ``Sell_to_Customer_Name`` = the ship-to
    name, ``Order_Date`` = the Pacific calendar date of ``orderDate``.
    Returns ``(shipstation_order, nav_sales_order_or_None)``.
    """
    with world.lock:
        order = add_ss_order(
            world,
            order_number=order_number,
            customer_name=customer_name,
            company=company,
            order_date=order_date,
            created=created,
            items=items,
            adjustments=adjustments,
            store_id=store_id,
            order_status=order_status,
            order_key=order_key,
            ship_to=ship_to,
            bill_to=bill_to,
            line_item_keys=line_item_keys,
        )
        if not in_nav:
            return order, None
        placed = datetime.fromisoformat(order["orderDate"][:26])
        nav = add_nav_order(
            world,
            nav_no,
            customer_name=nav_customer_name if nav_customer_name is not None else customer_name,
            order_date=nav_order_date or placed.date(),
            external_document_no=order["orderNumber"]
            if external_document_no is None
            else external_document_no,
            status=nav_status,
            lines=items,
            address=order["shipTo"],
        )
        return order, nav


def _order(world: SandboxWorld, order_id: int) -> Record:
    try:
        return world.shipstation.orders[order_id]
    except KeyError:
        raise KeyError(f"no ShipStation order {order_id}") from None


def touch_order(world: SandboxWorld, order_id: int, when: datetime | None = None) -> Record:
    """Bump ``modifyDate`` (an edit in ShipStation that changes nothing a poller cares about)."""
    with world.lock:
        order = _order(world, order_id)
        _bump_modify(order, _now(when))
        return order


def set_order_status(world: SandboxWorld, order_id: int, status: str, when: datetime | None = None) -> Record:
    with world.lock:
        order = _order(world, order_id)
        order["orderStatus"] = status
        _bump_modify(order, _now(when))
        return order


def split_order(
    world: SandboxWorld, order_id: int, items: Sequence[ItemSpec], *, when: datetime | None = None
) -> Record:
    """Split ``items`` (sku, quantity) off into a child order, as ShipStation's "Split Ship" does.

    The child is numbered ``<parent>-N``, carries ``advancedOptions.parentId`` = the parent's id
    and ``mergedOrSplit = true`` (the parent gets ``mergedOrSplit = true`` too); quantities move
    from the parent's items to new child items. Returns the child order.
    """
    at = _now(when)
    with world.lock:
        parent = _order(world, order_id)
        siblings = [
            o for o in world.shipstation.orders.values() if o["advancedOptions"]["parentId"] == order_id
        ]
        number = f"{parent['orderNumber']}-{len(siblings) + 1}"
        moved: list[Record] = []
        remaining = list(parent["items"])
        for sku, qty in items:
            index = next(
                (
                    n
                    for n, i in enumerate(remaining)
                    if i["sku"] == sku and not i["adjustment"] and i["quantity"] >= qty
                ),
                None,
            )
            if index is None:
                raise ValueError(f"order {parent['orderNumber']} has no {qty} x {sku} to split off")
            source = remaining[index]
            # Items may be shared with earlier labels' shipmentItems: replace, never mutate.
            remaining[index] = dict(source, quantity=source["quantity"] - qty, modifyDate=_item_ts(at))
            moved.append(
                dict(
                    source,
                    orderItemId=world.shipstation.next_id(),
                    quantity=qty,
                    createDate=_item_ts(at),
                    modifyDate=_item_ts(at),
                )
            )
        # The parent's totals stay as the channel sent them; only its items and weight change.
        parent["items"] = [i for i in remaining if i["quantity"] > 0]
        parent["weight"] = _weight(_order_totals(parent["items"])[1])
        parent["advancedOptions"]["mergedOrSplit"] = True
        _bump_modify(parent, at)

        child_total, child_weight = _order_totals(moved)
        child = dict(parent)
        child.update(
            orderId=world.shipstation.next_id(),
            orderNumber=number,
            orderKey=guid_for(f"split:{parent['orderKey']}:{number}"),
            createDate=_ts(at),
            modifyDate=_ts(at),
            items=moved,
            orderTotal=child_total,
            amountPaid=0.0,
            taxAmount=0.0,
            shippingAmount=0.0,
            billTo=dict(parent["billTo"]),
            shipTo=dict(parent["shipTo"]),
            weight=_weight(child_weight),
            advancedOptions=dict(
                parent["advancedOptions"], parentId=order_id, mergedOrSplit=True, mergedIds=[]
            ),
        )
        world.shipstation.orders[child["orderId"]] = child
        return child


# --------------------------------------------------------------------------------------------
# ShipStation labels (shipments) and fulfillments
# --------------------------------------------------------------------------------------------


def _shipment_items(order: Record, items: Sequence[ItemSpec] | None) -> list[Record]:
    """Order items (or the named (sku, qty) subset) in the OrderItem shape shipments carry."""
    goods = [i for i in order["items"] if not i["adjustment"]]
    if items is None:
        return goods  # the item objects themselves: shared, never mutated
    out = []
    for sku, qty in items:
        source = next((i for i in goods if i["sku"] == sku), None)
        if source is None:
            raise ValueError(f"order {order['orderNumber']} has no item {sku}")
        out.append(dict(source, quantity=qty))
    return out


def buy_label(
    world: SandboxWorld,
    order_id: int,
    *,
    carrier_code: str = "ups",
    service_code: str | None = None,
    tracking_number: str | None = None,
    created: datetime | None = None,
    ship_date: date | None = None,
    items: Sequence[ItemSpec] | None = None,
    is_return: bool = False,
    package_code: str = "package",
    shipment_cost: float | None = None,
    batch_number: str | None = None,
    dimensions: tuple[float, float, float] | None = (12.0, 9.0, 4.0),
) -> Record:
    """A purchased label for an order (``GET /shipments`` item shape, shipmentItems included).

    An outbound label moves the order to ``shipped`` with the label's carrier, service and ship
    date; a return label (``isReturnLabel: true``) leaves the order alone. ``service_code``
    defaults to the carrier's usual service, ``tracking_number`` to a realistic generated one,
    ``ship_date`` to the label's creation date. Returns the shipment record.
    """
    at = _now(created)
    with world.lock:
        order = _order(world, order_id)
        service = service_code or DEFAULT_SERVICE.get(carrier_code, f"{carrier_code}_ground")
        shipment_id = world.shipstation.next_id()
        tracking = tracking_number or tracking_number_for(carrier_code, shipment_id, service)
        ship_items = _shipment_items(order, items)
        weight = sum(i["quantity"] * (i["weight"] or {}).get("value", 0) for i in ship_items)
        shipped_on = _date_text(ship_date or at)
        shipment = {
            "shipmentId": shipment_id,
            "orderId": order_id,
            "orderKey": order["orderKey"],
            "userId": ACCOUNT_USER_ID,
            "customerEmail": order["customerEmail"],
            "orderNumber": order["orderNumber"],
            "createDate": _ts(at),
            "shipDate": shipped_on,
            "shipmentCost": shipment_cost if shipment_cost is not None else _money(6.5 + weight * 0.11),
            "insuranceCost": 0.0,
            "trackingNumber": tracking,
            "isReturnLabel": is_return,
            "batchNumber": batch_number,
            "carrierCode": carrier_code,
            "serviceCode": service,
            "packageCode": package_code,
            "confirmation": "none",
            "warehouseId": WAREHOUSE_ID,
            "voided": False,
            "voidDate": None,
            "marketplaceNotified": False,
            "notifyErrorMessage": None,
            "shipTo": order["shipTo"],  # shared, never mutated (see _weight)
            "weight": _weight(round(weight, 1)),
            "dimensions": None if dimensions is None else _dimensions(*dimensions),
            "insuranceOptions": _NO_INSURANCE,
            "advancedOptions": _shipment_options(order["advancedOptions"]["storeId"]),
            "shipmentItems": ship_items,
            "labelData": None,
            "formData": None,
        }
        world.shipstation.shipments[shipment_id] = shipment
        v2_events.label_created(world, shipment)
        if not is_return:
            order.update(
                orderStatus="shipped", shipDate=shipped_on, carrierCode=carrier_code, serviceCode=service
            )
            order["packageCode"] = package_code
            _bump_modify(order, at)
        return shipment


def void_label(world: SandboxWorld, shipment_id: int, when: datetime | None = None) -> Record:
    """Void a label: same record, ``voided: true`` and ``voidDate`` (``createDate`` unchanged).

    When no live outbound label or fulfillment is left, the order goes back to
    ``awaiting_shipment`` as in ShipStation. Returns the shipment.
    """
    at = _now(when)
    with world.lock:
        shipment = world.shipstation.shipments[shipment_id]
        if shipment["voided"]:
            raise ValueError(f"shipment {shipment_id} is already voided")
        if _ts(at) < shipment["createDate"]:
            raise ValueError(f"void time {at} is before the label was created ({shipment['createDate']})")
        shipment["voided"] = True
        shipment["voidDate"] = _ts(at)
        order = world.shipstation.orders.get(shipment["orderId"])
        if order is not None and not shipment["isReturnLabel"]:
            if not _order_still_shipped(world, order["orderId"]):
                order.update(
                    orderStatus="awaiting_shipment", shipDate=None, carrierCode=None, serviceCode=None
                )
            _bump_modify(order, at)
        return shipment


def _order_still_shipped(world: SandboxWorld, order_id: int) -> bool:
    live_label = any(
        s["orderId"] == order_id and not s["voided"] and not s["isReturnLabel"]
        for s in world.shipstation.shipments.values()
    )
    fulfilled = any(
        f["orderId"] == order_id and not f["voided"] for f in world.shipstation.fulfillments.values()
    )
    return live_label or fulfilled


def mark_shipped(
    world: SandboxWorld,
    order_id: int,
    *,
    carrier: str = "FedEx",
    tracking_number: str,
    ship_date: date | None = None,
    created: datetime | None = None,
) -> Record:
    """Mark an order shipped outside ShipStation: a ``GET /fulfillments`` record, no shipment.

    ``carrier`` is free text as the seller typed it (``FedEx``, ``Royal Mail``); the fulfillment's
    ``shipDate`` is a midnight datetime, unlike a shipment's bare date. Queues a
    FULFILLMENT_SHIPPED_V2 notification for each V2 subscription to it. Returns the fulfillment.
    """
    at = _now(created)
    with world.lock:
        order = _order(world, order_id)
        fulfillment_id = world.shipstation.next_id()
        shipped_on = ship_date or at.date()
        fulfillment = {
            "fulfillmentId": fulfillment_id,
            "orderId": order_id,
            "orderNumber": order["orderNumber"],
            "userId": ACCOUNT_USER_ID,
            "customerEmail": order["customerEmail"],
            "trackingNumber": tracking_number,
            "createDate": _ts(at),
            "shipDate": _ts(datetime.combine(shipped_on, datetime.min.time())),
            "voidDate": None,
            "deliveryDate": None,
            "carrierCode": carrier,
            "sellerFillProviderId": None,
            "sellerFillProviderName": None,
            "fulfillmentProviderCode": None,
            "fulfillmentServiceCode": None,
            "fulfillmentFee": 0.0,
            "voidRequested": False,
            "voided": False,
            "marketplaceNotified": False,
            "notifyErrorMessage": None,
            "shipTo": order["shipTo"],
        }
        world.shipstation.fulfillments[fulfillment_id] = fulfillment
        order.update(orderStatus="shipped", shipDate=_date_text(shipped_on))
        _bump_modify(order, at)
        v2_events.fulfillment_shipped(world, fulfillment)
        return fulfillment


# --------------------------------------------------------------------------------------------
# NAV
# --------------------------------------------------------------------------------------------


def set_nav_platform(world: SandboxWorld, platform: str) -> None:
    """Emulate NAV 2018 (``"nav2018"``) or Business Central (``"bc"``) from now on."""
    with world.lock:
        world.nav.apply_platform(platform)


def use_windows_auth(
    world: SandboxWorld,
    *,
    ntlm_only: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """NAV's credential type becomes Windows: every OData request needs an NTLM/Negotiate login
    per connection (``ntlm_only`` = the server setting ServicesUseNTLMAuthentication)."""
    with world.lock:
        nav = world.nav
        nav.credential_type = WINDOWS
        nav.services_use_ntlm_authentication = ntlm_only
        if username is not None:
            nav.windows_username = username
        if password is not None:
            nav.windows_password = password


def use_nav_user_password_auth(world: SandboxWorld) -> None:
    """Back to the NavUserPassword credential type (Basic and Entra bearer tokens)."""
    with world.lock:
        world.nav.credential_type = NAV_USER_PASSWORD


def install_shipping_agents(
    world: SandboxWorld, agents: dict[str, Iterable[str]] | None = None
) -> dict[str, set[str]]:
    """Shipping Agent codes (table 291) and their services (table 5790); the demo set by default."""
    with world.lock:
        for code, services in (agents or DEFAULT_SHIPPING_AGENTS).items():
            world.nav.shipping_agents.setdefault(code.upper(), set()).update(s.upper() for s in services)
        return world.nav.shipping_agents


def _next_nav_no(world: SandboxWorld) -> str:
    number = 10_001 + len(world.nav.sales_orders)
    while f"SO-{number}" in world.nav.sales_orders:
        number += 1
    return f"SO-{number}"


_BLANKS: dict[str, Record] = {}


def _blank(entity: EntityDef) -> Record:
    """Every field of the page with NAV's blank value, in page control order."""
    template = _BLANKS.get(entity.name)
    if template is None:
        template = _BLANKS[entity.name] = {prop.name: default_value(prop) for prop in entity.props}
    return dict(template)


def _nav_line(no: str, line_no: int, sku: str, qty: float, shipment_date: str) -> Record:
    product = _product(sku)
    line = _blank(SALES_LINE)
    line.update(
        Document_No=no,
        Line_No=line_no,
        Type="Item",
        No=sku.upper(),
        Description=product.name[:50],
        Quantity=qty,
        Unit_of_Measure_Code="PCS",
        Unit_Price=product.unit_price,
        Line_Amount=_money(product.unit_price * qty),
        Qty_to_Ship=qty,
        Qty_to_Invoice=qty,
        Shipment_Date=shipment_date,
    )
    return line


def _address_fields(name: str, address: Record | None) -> Record:
    """Sell-to / ship-to fields of page 42 taken from a ShipStation-shaped address."""
    if address is None:
        return {"Ship_to_Name": name[:50], "Bill_to_Name": name[:50]}
    street = (address.get("street1") or "")[:50]
    city = (address.get("city") or "")[:30]
    postal = (address.get("postalCode") or "").upper()[:20]
    country = (address.get("country") or "").upper()[:10]
    return {
        "Sell_to_Address": street,
        "Sell_to_City": city,
        "Sell_to_Post_Code": postal,
        "Sell_to_Country_Region_Code": country,
        "Bill_to_Name": name[:50],
        "Ship_to_Name": " ".join((address.get("name") or name).split())[:50],
        "Ship_to_Address": street,
        "Ship_to_City": city,
        "Ship_to_Post_Code": postal,
        "Ship_to_County": (address.get("state") or "")[:30],
        "Ship_to_Country_Region_Code": country,
    }


def add_nav_order(
    world: SandboxWorld,
    no: str | None = None,
    *,
    customer_name: str,
    order_date: date,
    external_document_no: str = "",
    status: str = "Open",
    lines: Sequence[ItemSpec] = (),
    customer_no: str | None = None,
    shipment_date: date | None = None,
    shipping_agent_code: str = "",
    shipping_agent_service_code: str = "",
    package_tracking_no: str = "",
    address: Record | None = None,
) -> Record:
    """A NAV SalesOrder (page 42 fields) and its SalesOrderSalesLines (page 46), lines 10000, 20000…

    Code fields (No, External_Document_No, agent codes, item numbers) are stored upper case as
    NAV does. ``no`` defaults to the next ``SO-1xxxx``; ``address`` (ShipStation-shaped) fills the
    sell-to and ship-to fields. Returns the header record.
    """
    with world.lock:
        nav = world.nav
        number = (no or _next_nav_no(world)).upper()
        if number in nav.sales_orders:
            raise ValueError(f"NAV sales order {number} already exists")
        ordered = _date_text(order_date)
        ship_on = ordered if shipment_date is None else _date_text(shipment_date)
        header = _blank(SALES_ORDER)
        header.update(_address_fields(customer_name, address))
        header.update(
            No=number,
            Sell_to_Customer_No=customer_no or customer_no_for(customer_name),
            Sell_to_Customer_Name=customer_name,
            External_Document_No=external_document_no.upper(),
            Document_Date=ordered,
            Posting_Date=ordered,
            Order_Date=ordered,
            Shipment_Date=ship_on,
            Shipping_Agent_Code=shipping_agent_code.upper(),
            Shipping_Agent_Service_Code=shipping_agent_service_code.upper(),
            Package_Tracking_No=package_tracking_no,
            Status=status,
        )
        nav.stamp(header)
        nav.sales_orders[number] = header
        rows = [_nav_line(number, 10_000 * (n + 1), sku, qty, ship_on) for n, (sku, qty) in enumerate(lines)]
        for row in rows:
            # Header agent codes are pushed to the lines (UpdateSalesLinesByFieldNo).
            row["Shipping_Agent_Code"] = header["Shipping_Agent_Code"]
            row["Shipping_Agent_Service_Code"] = header["Shipping_Agent_Service_Code"]
            nav.stamp(row)
        nav.sales_lines[number] = rows
        return header


def _nav_order(world: SandboxWorld, no: str) -> Record:
    try:
        return world.nav.sales_orders[no.upper()]
    except KeyError:
        raise KeyError(f"no NAV sales order {no}") from None


def update_nav_order(world: SandboxWorld, no: str, **fields: Any) -> Record:
    """Change header fields as a NAV user would (new row version, so older ETags go stale)."""
    with world.lock:
        header = _nav_order(world, no)
        header.update(fields)
        world.nav.stamp(header)
        return header


def release_nav_order(world: SandboxWorld, no: str) -> Record:
    """Status Open -> Released (agent, service and shipment date become status-locked)."""
    return update_nav_order(world, no, Status="Released")


def reopen_nav_order(world: SandboxWorld, no: str) -> Record:
    return update_nav_order(world, no, Status="Open")


def post_nav_shipment(
    world: SandboxWorld,
    order_no: str,
    *,
    posted_no: str | None = None,
    quantities: dict[str, float] | None = None,
    posting_date: date | None = None,
    invoice: bool = False,
) -> Record:
    """Post a (partial) shipment of a NAV order: a PostedSalesShipment record (page 130 fields).

    The header is copied the way Sales-Post does (``TransferFields``), so the posted shipment
    gets whatever tracking number, agent and service the order carries at this moment; the order
    keeps its values. ``quantities`` maps item No to the quantity shipped (default: each line's
    ``Qty_to_Ship``); the lines' ``Quantity_Shipped`` grow and ``Qty_to_Ship`` is reset to what is
    still outstanding. Returns the posted shipment.

    ``invoice`` posts "Ship and Invoice": what is shipped is also invoiced, and once every line
    is completely shipped and invoiced Sales-Post deletes the order and its lines
    (``EverythingInvoiced``): a later GET of the order answers 404 ``Internal_RecordNotFound``,
    and only the posted shipments (``Order_No``, ``External_Document_No``, tracking) remain.
    """
    with world.lock:
        nav = world.nav
        header = _nav_order(world, order_no)
        number = (posted_no or f"{102_001 + len(nav.posted_shipments)}").upper()
        if number in nav.posted_shipments:
            raise ValueError(f"posted shipment {number} already exists")
        # TransferFields: every same-named field of Sales Header lands on Sales Shipment Header.
        posted = _blank(POSTED_SHIPMENT)
        posted.update({name: header[name] for name in posted if name in header})
        posted.update(
            No=number,
            Order_No=header["No"],
            Posting_Date=_date_text(posting_date) if posting_date else header["Shipment_Date"],
        )
        _ship_lines(world, header["No"], quantities, invoice=invoice)
        nav.stamp(posted)
        nav.posted_shipments[number] = posted
        if invoice and _everything_invoiced(world, header["No"]):
            del nav.sales_orders[header["No"]]
            nav.sales_lines.pop(header["No"], None)
        return posted


def ship_and_invoice_nav_order(
    world: SandboxWorld,
    order_no: str,
    *,
    posted_no: str | None = None,
    quantities: dict[str, float] | None = None,
    posting_date: date | None = None,
) -> Record:
    """Post "Ship and Invoice" (``post_nav_shipment(..., invoice=True)``): the order and its lines
    are deleted once everything is shipped and invoiced. Returns the posted shipment."""
    return post_nav_shipment(
        world, order_no, posted_no=posted_no, quantities=quantities, posting_date=posting_date, invoice=True
    )


def _everything_invoiced(world: SandboxWorld, order_no: str) -> bool:
    lines = [line for line in world.nav.sales_lines.get(order_no, []) if line.get("Type")]
    return all(
        line["Quantity_Shipped"] >= line["Quantity"] and line.get("Quantity_Invoiced", 0) >= line["Quantity"]
        for line in lines
    )


def _ship_lines(
    world: SandboxWorld, order_no: str, quantities: dict[str, float] | None, *, invoice: bool = False
) -> None:
    lines = world.nav.sales_lines.get(order_no, [])
    upper = {sku.upper(): qty for sku, qty in (quantities or {}).items()}
    for line in lines:
        wanted = line["Qty_to_Ship"] if quantities is None else upper.get(line["No"], 0)
        outstanding = line["Quantity"] - line["Quantity_Shipped"]
        if wanted > outstanding:
            raise ValueError(f"cannot ship {wanted} of {line['No']} on {order_no}: {outstanding} outstanding")
        if wanted:
            line["Quantity_Shipped"] += wanted
            line["Qty_to_Ship"] = line["Quantity"] - line["Quantity_Shipped"]
            if invoice:
                line["Quantity_Invoiced"] = line.get("Quantity_Invoiced", 0) + wanted
                line["Qty_to_Invoice"] = line["Quantity"] - line["Quantity_Invoiced"]
            world.nav.stamp(line)
    header = world.nav.sales_orders[order_no]
    header["Completely_Shipped"] = bool(lines) and all(
        line["Quantity_Shipped"] >= line["Quantity"] for line in lines
    )
    world.nav.stamp(header)


def nav_order_for(world: SandboxWorld, external_document_no: str) -> list[Record]:
    """NAV orders whose External_Document_No equals the value (case-insensitive, as Code fields)."""
    wanted = external_document_no.upper()
    with world.lock:
        return [o for o in world.nav.sales_orders.values() if o["External_Document_No"] == wanted]


def order_by_number(world: SandboxWorld, order_number: str) -> Record:
    """The ShipStation order with this orderNumber (tests look orders up by their human number)."""
    with world.lock:
        for order in world.shipstation.orders.values():
            if order["orderNumber"] == order_number:
                return order
    raise KeyError(f"no ShipStation order number {order_number}")


def labels_of(world: SandboxWorld, order_id: int) -> list[Record]:
    """All shipments of an order, oldest first."""
    with world.lock:
        found = [s for s in world.shipstation.shipments.values() if s["orderId"] == order_id]
    return sorted(found, key=lambda s: (s["createDate"], s["shipmentId"]))
