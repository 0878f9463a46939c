"""The emulated NAV page web services: fields, keys, editability, and the `$metadata` EDMX.

Field names are the page control names NAV exposes over OData V4 (spaces, dots and hyphens
become underscores or vanish): page 42 "Sales Order" (published as `SalesOrder`), its lines
part page 46 (the containment `SalesOrderSalesLines`) and page 130 "Posted Sales Shipment"
(`PostedSalesShipment`). The order of the fields is the page's control order, which is also the
order in which NAV validates the fields of a PATCH.

Lengths are the table lengths of NAV 2018 (C/AL exports of tables 36, 37, 110) and, where
Business Central lengthened a field, of current BC (github.com/microsoft/BCApps, e.g.
SalesHeader.Table.al: names, addresses and contacts Text[100] instead of Text[50]).
`Package_Tracking_No` follows the world's configured length: Text[30] in NAV and BC up to v26,
Text[50] from BC 27.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from xml.sax.saxutils import quoteattr

NAMESPACE = "NAV"
TRACKING_FIELD = "Package_Tracking_No"
BLANK_DATE = "0001-01-01"
NAV2018 = "nav2018"
BC = "bc"


@dataclass(frozen=True)
class Prop:
    name: str
    edm: str = "Edm.String"
    max_length: int | None = None  # the NAV 2018 length
    code: bool = False  # Code[n]: NAV stores it upper-cased
    editable: bool = False  # in NAV 2018
    status_locked: bool = False  # the field's OnValidate runs TestStatusOpen on the Sales Header
    bc_length: int | None = None  # the Business Central length, when BC changed it
    bc_editable: bool | None = None  # the Business Central editability, when BC changed it

    @property
    def caption(self) -> str:
        """The field (and page control) name as NAV writes it in messages: "External Document No."."""
        return caption_of(self.name)


_CAPTION_WORDS = [
    (r"\bSell to\b", "Sell-to"),
    (r"\bShip to\b", "Ship-to"),
    (r"\bBill to\b", "Bill-to"),
    (r"\bCountry Region\b", "Country/Region"),
    (r"\bQty to\b", "Qty. to"),
    (r"\bNo\b", "No."),
]


def caption_of(name: str) -> str:
    """``Sell_to_Customer_No`` -> ``Sell-to Customer No.``: the AL field name behind an OData name."""
    text = name.replace("_", " ")
    for pattern, replacement in _CAPTION_WORDS:
        text = re.sub(pattern, replacement, text)
    return text


@dataclass(frozen=True)
class EntityDef:
    name: str  # entity type name == service name == containment segment
    table: str  # the NAV table, as NAV names it in error messages
    keys: tuple[str, ...]
    props: tuple[Prop, ...]
    key_captions: Mapping[str, str]  # key field -> NAV caption, for "Document Type=Order, No.=..."

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)

    @property
    def field_types(self) -> dict[str, str]:
        return {p.name: p.edm for p in self.props}


def _code(name: str, length: int, **kwargs: Any) -> Prop:
    return Prop(name, "Edm.String", length, code=True, **kwargs)


def _text(name: str, length: int, **kwargs: Any) -> Prop:
    return Prop(name, "Edm.String", length, **kwargs)


def _date(name: str, **kwargs: Any) -> Prop:
    return Prop(name, "Edm.Date", **kwargs)


def _decimal(name: str, **kwargs: Any) -> Prop:
    return Prop(name, "Edm.Decimal", **kwargs)


SALES_ORDER = EntityDef(
    name="SalesOrder",
    table="Sales Header",
    keys=("Document_Type", "No"),
    key_captions={"Document_Type": "Document Type", "No": "No."},
    props=(
        Prop("Document_Type"),
        _code("No", 20),
        _code("Sell_to_Customer_No", 20),
        _text("Sell_to_Customer_Name", 50, bc_length=100),
        _text("Sell_to_Address", 50, bc_length=100),
        _text("Sell_to_City", 30),
        _code("Sell_to_Post_Code", 20),
        _code("Sell_to_Country_Region_Code", 10),
        _text("Sell_to_Contact", 50, bc_length=100),
        _text("Bill_to_Name", 50, bc_length=100),
        _code("External_Document_No", 35, editable=True),
        _text("Your_Reference", 35, editable=True),
        _date("Document_Date"),
        _date("Posting_Date"),
        _date("Order_Date"),
        _date("Requested_Delivery_Date"),
        _date("Shipment_Date", editable=True, status_locked=True),
        _text("Ship_to_Name", 50, bc_length=100),
        _text("Ship_to_Address", 50, bc_length=100),
        _text("Ship_to_City", 30),
        _code("Ship_to_Post_Code", 20),
        _text("Ship_to_County", 30),
        _code("Ship_to_Country_Region_Code", 10),
        _text("Ship_to_Contact", 50, bc_length=100),
        _code("Location_Code", 10),
        _code("Shipment_Method_Code", 10),
        _code("Shipping_Agent_Code", 10, editable=True, status_locked=True),
        _code("Shipping_Agent_Service_Code", 10, editable=True, status_locked=True),
        _text(TRACKING_FIELD, 30, editable=True),
        Prop("Status"),
        Prop("Completely_Shipped", "Edm.Boolean"),
    ),
)

SALES_LINE = EntityDef(
    name="SalesOrderSalesLines",
    table="Sales Line",
    keys=("Document_Type", "Document_No", "Line_No"),
    key_captions={"Document_Type": "Document Type", "Document_No": "Document No.", "Line_No": "Line No."},
    props=(
        Prop("Document_Type"),
        _code("Document_No", 20),
        Prop("Line_No", "Edm.Int32"),
        Prop("Type", editable=True, status_locked=True),
        _code("No", 20, editable=True, status_locked=True),
        _text("Description", 50, editable=True, bc_length=100),
        _code("Location_Code", 10, editable=True, status_locked=True),
        _decimal("Quantity", editable=True, status_locked=True),
        _code("Unit_of_Measure_Code", 10, editable=True, status_locked=True),
        _decimal("Unit_Price", editable=True, status_locked=True),
        _decimal("Line_Amount"),
        _decimal("Qty_to_Ship", editable=True),
        _decimal("Quantity_Shipped"),
        _decimal("Qty_to_Invoice", editable=True),
        _decimal("Quantity_Invoiced"),
        _date("Shipment_Date", editable=True, status_locked=True),
        _code("Shipping_Agent_Code", 10, editable=True, status_locked=True),
        _code("Shipping_Agent_Service_Code", 10, editable=True, status_locked=True),
    ),
)

POSTED_SHIPMENT = EntityDef(
    name="PostedSalesShipment",
    table="Sales Shipment Header",
    keys=("No",),
    key_captions={"No": "No."},
    props=(
        _code("No", 20),
        _code("Sell_to_Customer_No", 20),
        _text("Sell_to_Customer_Name", 50, bc_length=100),
        _text("Sell_to_Contact", 50, bc_length=100),
        _text("Ship_to_Name", 50, bc_length=100),
        _text("Ship_to_City", 30),
        _date("Posting_Date"),
        _date("Document_Date"),
        _date("Order_Date"),
        _code("Order_No", 20),
        _code("External_Document_No", 35),
        _text("Your_Reference", 35),
        _date("Shipment_Date"),
        _code("Location_Code", 10),
        _code("Shipment_Method_Code", 10),
        # Page 130 in NAV 2018: only these three are editable; OnModifyRecord runs CU 391
        # "Shipment Header - Edit". In current BC every control of page 130 is Editable = false
        # (the edit moved to page 1350, whose source table is temporary: no web service).
        _code("Shipping_Agent_Code", 10, editable=True, bc_editable=False),
        _code("Shipping_Agent_Service_Code", 10, editable=True, bc_editable=False),
        _text(TRACKING_FIELD, 30, editable=True, bc_editable=False),
        Prop("No_Printed", "Edm.Int32"),
    ),
)

# Published service name -> page definition. The lines are only reachable through the order.
SERVICES: dict[str, EntityDef] = {SALES_ORDER.name: SALES_ORDER, POSTED_SHIPMENT.name: POSTED_SHIPMENT}
LINES_SEGMENT = SALES_LINE.name


def max_length(prop: Prop, tracking_max_length: int, platform: str = NAV2018) -> int | None:
    """The field's length on ``platform`` (what $metadata advertises and writes enforce)."""
    if prop.name == TRACKING_FIELD:
        return tracking_max_length
    if platform == BC and prop.bc_length is not None:
        return prop.bc_length
    return prop.max_length


def is_editable(prop: Prop, platform: str = NAV2018) -> bool:
    if platform == BC and prop.bc_editable is not None:
        return prop.bc_editable
    return prop.editable


def default_value(prop: Prop) -> Any:
    if prop.name == "Document_Type":
        return "Order"
    if prop.name == "Status":
        return "Open"
    return {
        "Edm.Date": BLANK_DATE,
        "Edm.Decimal": 0,
        "Edm.Int32": 0,
        "Edm.Boolean": False,
    }.get(prop.edm, "")


def view(entity: EntityDef, record: Mapping[str, Any]) -> dict[str, Any]:
    """The page's fields of a record, blanks filled the way NAV shows them."""
    result: dict[str, Any] = {}
    for prop in entity.props:
        value = record.get(prop.name)
        if value is None:
            value = default_value(prop)
        elif isinstance(value, date):
            value = value.isoformat()
        result[prop.name] = value
    return result


# --- $metadata -------------------------------------------------------------------------------


def _property_xml(prop: Prop, entity: EntityDef, tracking_max_length: int, platform: str) -> str:
    attrs = [f"Name={quoteattr(prop.name)}", f"Type={quoteattr(prop.edm)}"]
    if prop.name in entity.keys:
        attrs.append('Nullable="false"')
    # CSDL MaxLength on every Code/Text property (Option fields have no length). No editability
    # annotation: none is documented for NAV/BC page metadata, so none is invented here.
    length = max_length(prop, tracking_max_length, platform)
    if length is not None:
        attrs.append(f'MaxLength="{length}"')
    if prop.edm == "Edm.Decimal":
        attrs.append('Scale="Variable"')
    return f"        <Property {' '.join(attrs)} />"


def _entity_type_xml(
    entity: EntityDef, tracking_max_length: int, platform: str, with_lines: bool
) -> list[str]:
    lines = [f'      <EntityType Name="{entity.name}">', "        <Key>"]
    lines += [f'          <PropertyRef Name="{key}" />' for key in entity.keys]
    lines.append("        </Key>")
    lines += [_property_xml(p, entity, tracking_max_length, platform) for p in entity.props]
    if with_lines:
        # As documented for page 42 (learn.microsoft.com/dynamics365/business-central/dev-itpro/
        # webservices/use-containments-associations): a containment
        # navigation property named <service><part> with a referential constraint on the key.
        lines += [
            f'        <NavigationProperty Name="{LINES_SEGMENT}" '
            f'Type="Collection({NAMESPACE}.{SALES_LINE.name})" ContainsTarget="true">',
            '          <ReferentialConstraint Property="No" ReferencedProperty="Document_No" />',
            '          <ReferentialConstraint Property="Document_Type" ReferencedProperty="Document_Type" />',
            "        </NavigationProperty>",
        ]
    lines.append("      </EntityType>")
    return lines


def metadata_xml(published: set[str], tracking_max_length: int, platform: str = NAV2018) -> str:
    """A CSDL 4.0 document describing the published services of this world."""
    services = [SERVICES[name] for name in sorted(published) if name in SERVICES]
    body: list[str] = []
    for entity in services:
        body += _entity_type_xml(entity, tracking_max_length, platform, with_lines=entity is SALES_ORDER)
    if any(entity is SALES_ORDER for entity in services):
        body += _entity_type_xml(SALES_LINE, tracking_max_length, platform, with_lines=False)
    body.append(f'      <EntityContainer Name="{NAMESPACE}">')
    body += [f'        <EntitySet Name="{e.name}" EntityType="{NAMESPACE}.{e.name}" />' for e in services]
    body.append("      </EntityContainer>")
    return "\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
            "  <edmx:DataServices>",
            f'    <Schema Namespace="{NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
            *body,
            "    </Schema>",
            "  </edmx:DataServices>",
            "</edmx:Edmx>",
            "",
        ]
    )
