"""The NAV side of the sandbox shop: platform and authentication, shipping agents, sales orders,
releasing, posting shipments, invoicing, and lookups by External Document No."""

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from shipnav_dagster.sandbox.nav.schema import (
    POSTED_SHIPMENT,
    SALES_LINE,
    SALES_ORDER,
    EntityDef,
    default_value,
)
from shipnav_dagster.sandbox.scenario.customers import customer_no_for
from shipnav_dagster.sandbox.scenario.values import (
    DEFAULT_SHIPPING_AGENTS,
    ItemSpec,
    Record,
    _date_text,
    _money,
    _product,
)
from shipnav_dagster.sandbox.state import (
    NAV_USER_PASSWORD,
    WINDOWS,
    SandboxWorld,
)


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
