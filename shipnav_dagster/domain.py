"""The records the decision steps work on, independent of how either API spells them."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["shipment", "fulfillment"]


class ShippedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    quantity: float


class ShipRecord(BaseModel):
    """One ShipStation label (shipment) or mark-as-shipped fulfillment."""

    model_config = ConfigDict(frozen=True)

    record_key: str  # "shipment:<shipmentId>" or "fulfillment:<fulfillmentId>"
    source: Source
    source_id: int
    order_id: int | None = None
    order_key: str | None = None
    order_number: str | None = None
    tracking_number: str | None = None
    carrier_code: str | None = None
    service_code: str | None = None
    ship_date: date | None = None
    created_at: datetime  # aware UTC
    voided: bool = False
    void_date: datetime | None = None
    is_return: bool = False
    ship_to_name: str | None = None
    items: tuple[ShippedItem, ...] = ()

    @property
    def is_outbound_active(self) -> bool:
        """A label that can carry the order's tracking: not voided, not a return, has a number."""
        return not self.voided and not self.is_return and bool((self.tracking_number or "").strip())


class OrderInfo(BaseModel):
    """What the matcher needs from the ShipStation order behind a record."""

    model_config = ConfigDict(frozen=True)

    order_id: int
    order_number: str | None = None
    order_key: str | None = None
    order_date: date | None = None  # Pacific calendar date
    ship_to_name: str | None = None
    bill_to_name: str | None = None
    parent_id: int | None = None


class NavOrder(BaseModel):
    """A NAV SalesOrder as read through OData (page 42 field names, kept raw)."""

    model_config = ConfigDict(frozen=True)

    no: str
    external_document_no: str = ""
    customer_name: str = ""
    order_date: date | None = None
    status: str = "Open"
    etag: str = ""
    package_tracking_no: str = ""
    shipping_agent_code: str = ""
    shipping_agent_service_code: str = ""
    shipment_date: date | None = None

    @classmethod
    def from_odata(cls, entity: dict) -> "NavOrder":
        return cls(
            no=entity["No"],
            external_document_no=entity.get("External_Document_No") or "",
            customer_name=entity.get("Sell_to_Customer_Name") or "",
            order_date=_nav_date(entity.get("Order_Date")),
            status=entity.get("Status") or "Open",
            etag=entity.get("@odata.etag") or "",
            package_tracking_no=entity.get("Package_Tracking_No") or "",
            shipping_agent_code=entity.get("Shipping_Agent_Code") or "",
            shipping_agent_service_code=entity.get("Shipping_Agent_Service_Code") or "",
            shipment_date=_nav_date(entity.get("Shipment_Date")),
        )


class NavPostedShipment(BaseModel):
    model_config = ConfigDict(frozen=True)

    no: str
    order_no: str
    etag: str = ""
    posting_date: date | None = None
    package_tracking_no: str = ""
    shipping_agent_code: str = ""
    shipping_agent_service_code: str = ""

    @classmethod
    def from_odata(cls, entity: dict) -> "NavPostedShipment":
        return cls(
            no=entity["No"],
            order_no=entity.get("Order_No") or "",
            etag=entity.get("@odata.etag") or "",
            posting_date=_nav_date(entity.get("Posting_Date")),
            package_tracking_no=entity.get("Package_Tracking_No") or "",
            shipping_agent_code=entity.get("Shipping_Agent_Code") or "",
            shipping_agent_service_code=entity.get("Shipping_Agent_Service_Code") or "",
        )


class NavSalesLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_no: int
    type: str = "Item"
    no: str = ""
    quantity: float = 0
    qty_to_ship: float = 0
    quantity_shipped: float = 0
    etag: str = ""

    @property
    def outstanding(self) -> float:
        return max(self.quantity - self.quantity_shipped, 0)

    @classmethod
    def from_odata(cls, entity: dict) -> "NavSalesLine":
        return cls(
            line_no=int(entity["Line_No"]),
            type=entity.get("Type") or "",
            no=entity.get("No") or "",
            quantity=float(entity.get("Quantity") or 0),
            qty_to_ship=float(entity.get("Qty_to_Ship") or 0),
            quantity_shipped=float(entity.get("Quantity_Shipped") or 0),
            etag=entity.get("@odata.etag") or "",
        )


def _nav_date(value: object) -> date | None:
    """NAV sends blank dates as 0001-01-01 (0D)."""
    if not value:
        return None
    parsed = date.fromisoformat(str(value)[:10])
    return None if parsed.year == 1 else parsed


class MatchDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_key: str
    outcome: Literal["matched", "ambiguous", "no_order_yet", "invalid"]
    tier: int | None = None  # 1, 2 or 3 for matched/ambiguous
    nav_order_no: str | None = None
    reason: str
    candidates: tuple[str, ...] = Field(default=())
