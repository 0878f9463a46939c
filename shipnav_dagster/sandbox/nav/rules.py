"""NAV's field rules as a page web service applies them: ETags, lengths, editability, status
locks, table relations, line quantities, and the length of filter literals.

Sources: Microsoft's OData error table
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/dynamics-error-codes)
for the codes and messages; the table and page definitions of NAV 2018 and Business Central
(github.com/microsoft/BCApps, Sales/Document/SalesHeader.Table.al, SalesLine.Table.al,
Sales/History/PostedSalesShipment.Page.al) for which field validates what.
"""

import copy
import json
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from shipnav_dagster.sandbox.nav import schema
from shipnav_dagster.sandbox.nav.errors import ODataFailure, json_default, native
from shipnav_dagster.sandbox.nav.odata_filter import BoolOp, Call, Compare, FieldRef, Literal, Node
from shipnav_dagster.sandbox.nav.schema import POSTED_SHIPMENT, SALES_LINE, EntityDef, view
from shipnav_dagster.sandbox.state import NavState

AGENT = "Shipping_Agent_Code"
SERVICE = "Shipping_Agent_Service_Code"
PRECONDITION_MESSAGE = (
    "Could not validate the client concurrency token required by the service. "
    "Please provide a valid token in the client request."
)
# How an OData comparison reads as an AL filter expression (the text NAV quotes in a filter error).
AL_OPERATORS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


# --- filter literals -------------------------------------------------------------------------


def filter_length(prop: schema.Prop, nav: NavState) -> int | None:
    """The length NAV enforces on a filter value for ``prop``: the field's, unless overridden."""
    override = nav.filter_length_overrides.get(prop.name)
    if override is not None:
        return override
    return schema.max_length(prop, nav.tracking_max_length, nav.platform)


def check_filter_lengths(node: Node, entity: EntityDef, nav: NavState) -> None:
    """A string literal longer than the Code/Text field it is compared with fails the request.

    NAV turns the OData filter into an AL filter on the table field and refuses a value that
    cannot fit, for the whole request: 400 ``Application_FilterErrorException``, "The filter
    "='SELLACRE24_W%2FOORINGS'" is not valid for the No. field on the Item table. The length of
    the string is 22, but it must be less than or equal to 20 characters. Value: ..." (Microsoft's
    OData error table, NavFilterException).
    """
    if not nav.enforce_filter_lengths:
        return
    if isinstance(node, BoolOp):
        check_filter_lengths(node.left, entity, nav)
        check_filter_lengths(node.right, entity, nav)
        return
    if not isinstance(node, Compare):
        return  # startswith/contains/endswith become wildcard filters: no fixed length to check
    left, right = node.left, node.right
    if isinstance(left, Literal):
        left, right = right, left
    while isinstance(left, Call) and left.args:  # tolower(Field)/toupper(Field)
        left = left.args[0]
    if not isinstance(left, FieldRef) or not isinstance(right, Literal) or right.kind != "string":
        return
    prop = entity.prop(left.name)
    limit = filter_length(prop, nav) if prop is not None else None
    value = str(right.value)
    if prop is None or limit is None or len(value) <= limit:
        return
    expression = f"{AL_OPERATORS[node.op]}'{value}'"
    raise ODataFailure(
        400,
        "Application_FilterErrorException",
        f'The filter "{expression}" is not valid for the {prop.caption} field on the {entity.table} table. '
        f"The length of the string is {len(value)}, but it must be less than or equal to {limit} "
        f"characters. Value: {value}",
    )


# --- PATCH -----------------------------------------------------------------------------------


_ETAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*')


def check_if_match(header: str | None, record: Mapping[str, Any]) -> None:
    """No If-Match -> 400 BadRequest_InvalidToken ("Could not validate the client concurrency
    token..."); a stale ETag -> 409 Request_EntityChanged ("Another user has already changed the
    record"), per Microsoft's OData error table and HTTP status table (409 Conflict)."""
    if header is None or not header.strip():
        raise ODataFailure(400, "BadRequest_InvalidToken", PRECONDITION_MESSAGE)
    if header.strip() == "*":
        return  # documented: If-Match: * overwrites whatever is there
    tags = []
    for part in header.split(","):
        match = _ETAG.fullmatch(part)
        if match is None:
            raise ODataFailure(400, "BadRequest_InvalidToken", PRECONDITION_MESSAGE)
        tags.append(match.group(1))
    current = _ETAG.fullmatch(NavState.etag(dict(record)))
    assert current is not None
    if current.group(1) not in tags:
        raise ODataFailure(409, "Request_EntityChanged", "Another user has already changed the record")


def read_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ODataFailure(400, "BadRequest", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ODataFailure(400, "BadRequest", "The request body must be a JSON object")
    return {k: v for k, v in body.items() if not k.startswith("@") and "@odata." not in k}


def _convert(prop: schema.Prop, value: Any, entity: EntityDef) -> Any:
    """JSON value -> stored value, or the 400 the OData layer gives for a wrong type."""
    wrong = ODataFailure(
        400,
        "BadRequest",
        f"Cannot convert the value of property '{prop.name}' of type 'NAV.{entity.name}' to '{prop.edm}'",
    )
    if prop.edm == "Edm.String":
        if not isinstance(value, str):
            raise wrong
        return value.upper() if prop.code else value
    if prop.edm == "Edm.Date":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise wrong
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError as exc:
            raise wrong from exc
    if prop.edm in ("Edm.Decimal", "Edm.Int32"):
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise wrong
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise wrong from exc
        if prop.edm == "Edm.Int32":
            if number != number.to_integral_value():
                raise wrong
            return int(number)
        return native(number)
    if prop.edm == "Edm.Boolean":
        if not isinstance(value, bool):
            raise wrong
        return value
    raise wrong


def _status_open(order: Mapping[str, Any], prop: schema.Prop) -> None:
    status = order.get("Status", "Open") or "Open"
    if status != "Open":
        raise ODataFailure(
            400,
            "Application_FieldValidationException",
            f"Status must be equal to 'Open'  in Sales Header: Document Type=Order, No.={order['No']}. "
            f"Current value is '{status}'",
        )


def _length(prop: schema.Prop, value: str, nav: NavState) -> None:
    limit = schema.max_length(prop, nav.tracking_max_length, nav.platform)
    if limit is not None and len(value) > limit:
        raise ODataFailure(
            400,
            "Application_StringExceededLength",
            f"The length of the string is {len(value)}, but it must be less than or equal to {limit} "
            f"characters. Value: {value}",
        )


def _relations(entity: EntityDef, row: Mapping[str, Any], changed: set[str], nav: NavState) -> None:
    """Table relations: Shipping Agent (291) and Shipping Agent Services (5790)."""
    agent = row.get(AGENT) or ""
    if AGENT in changed and agent and agent not in nav.shipping_agents:
        raise _relation_error(entity, "Shipping Agent Code", agent, "Shipping Agent")
    service = row.get(SERVICE) or ""
    if SERVICE in changed and service and service not in nav.shipping_agents.get(agent, set()):
        raise _relation_error(entity, "Shipping Agent Service Code", service, "Shipping Agent Services")


def _relation_error(entity: EntityDef, caption: str, value: str, related: str) -> ODataFailure:
    return ODataFailure(
        400,
        "Internal_InvalidTableRelation",
        f"The field {caption} of table {entity.table} contains a value ({value}) that cannot be found in "
        f"the related table ({related})",
    )


def _qty_to_ship(row: Mapping[str, Any], line_key: str) -> None:
    qty = Decimal(str(row.get("Qty_to_Ship") or 0))
    outstanding = Decimal(str(row.get("Quantity") or 0)) - Decimal(str(row.get("Quantity_Shipped") or 0))
    if qty < 0:
        raise ODataFailure(
            400,
            "Application_FieldValidationException",
            f"Qty. to Ship must be positive in Sales Line: {line_key}",
        )
    if qty > outstanding:
        raise ODataFailure(
            400,
            "Application_DialogException",
            f"You cannot ship more than {json_default(outstanding)} units",
        )


def apply_patch(
    nav: NavState,
    entity: EntityDef,
    record: dict[str, Any],
    order: dict[str, Any] | None,
    body: dict[str, Any],
) -> dict[str, Any]:
    """Validate a PATCH in page-control order on a copy; return the new record (nothing saved yet)."""
    unknown = [name for name in body if entity.prop(name) is None]
    if unknown:
        raise ODataFailure(
            400,
            "BadRequest",
            f"The property '{unknown[0]}' does not exist on type 'NAV.{entity.name}'. Make sure to only use "
            "property names that are defined by the type",
        )
    row = copy.deepcopy(record)
    changed: set[str] = set()
    for prop in entity.props:
        if prop.name not in body:
            continue
        value = _convert(prop, body[prop.name], entity)
        current = view(entity, record)[prop.name]
        if not schema.is_editable(prop, nav.platform):
            if _same(value, current):
                continue  # echoing an unchanged read-only value is harmless
            # ODataInvalidOperationException, e.g. "Control 'Last Date Modified' is read-only":
            # the control is named after its field (BC page 130: field("Package Tracking No."; ...)).
            raise ODataFailure(400, "BadRequest_InvalidOperation", f"Control '{prop.caption}' is read-only")
        if isinstance(value, str):
            _length(prop, value, nav)
        if prop.status_locked and order is not None:
            _status_open(order, prop)
        if prop.name == AGENT and entity is not POSTED_SHIPMENT and value != current and SERVICE not in body:
            row[SERVICE] = ""  # Shipping Agent Code OnValidate clears the service
        row[prop.name] = value
        changed.add(prop.name)
    _relations(entity, row, changed, nav)
    if entity is SALES_LINE:
        _line_rules(row, changed, body)
    return row


def _line_rules(row: dict[str, Any], changed: set[str], body: Mapping[str, Any]) -> None:
    key = f"Document Type=Order, Document No.={row.get('Document_No')}, Line No.={row.get('Line_No')}"
    if "Quantity" in changed:
        shipped = Decimal(str(row.get("Quantity_Shipped") or 0))
        if Decimal(str(row["Quantity"])) < shipped:
            raise ODataFailure(
                400,
                "Application_DialogException",
                f"You cannot reduce Quantity below the quantity already shipped ({json_default(shipped)})",
            )
        if "Qty_to_Ship" not in body:
            row["Qty_to_Ship"] = native(Decimal(str(row["Quantity"])) - shipped)  # InitQtyToShip
    if "Qty_to_Ship" in changed or "Quantity" in changed:
        _qty_to_ship(row, key)


def _same(a: Any, b: Any) -> bool:
    try:
        return Decimal(str(a)) == Decimal(str(b)) if not isinstance(a, str | bool) else a == b
    except InvalidOperation:
        return False


def push_to_lines(nav: NavState, order_no: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Header -> lines (Sales Header's UpdateSalesLinesByFieldNo pushes Shipment Date and the
    shipping agent to the open lines): the lines get new ETags too."""
    fields = [f for f in ("Shipment_Date", AGENT, SERVICE) if before.get(f) != after.get(f)]
    if not fields:
        return
    for line in nav.sales_lines.get(order_no, []):
        shipped = Decimal(str(line.get("Quantity_Shipped") or 0))
        if not line.get("Type") or shipped >= Decimal(str(line.get("Quantity") or 0)):
            continue
        for name in fields:
            line[name] = after.get(name, "")
        nav.stamp(line)
