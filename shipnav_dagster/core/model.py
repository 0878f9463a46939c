"""The records the decision steps work on, independent of how either API spells them."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["shipment", "fulfillment"]


class RecordStatus(StrEnum):
    """Where a ShipStation record stands in the ledger; every status it can have, in one place."""

    PENDING = "pending"  # new or changed in ShipStation: the next sync decides it
    MATCHED_PENDING = "matched_pending"  # matched to one NAV order, not written yet
    WRITTEN = "written"
    ALREADY_CORRECT = "already_correct"
    NO_ORDER_YET = "no_order_yet"  # no NAV order found yet: queued, re-checked by every sync
    NEEDS_ATTENTION = "needs_attention"  # still no NAV order after SHIPNAV_UNMATCHED_MAX_AGE_HOURS
    AMBIGUOUS = "ambiguous"  # several NAV orders fit: never written until exactly one does
    PARKED = "parked"  # NAV refused it for good, or a value NAV cannot hold: needs a person
    FAILED = "failed"  # a transient failure: retried by the next run that reaches NAV
    IGNORED = "ignored"  # a return label, or no tracking number: nothing to write
    VOIDED = "voided"
    INVALID = "invalid"  # the payload cannot be read or carries nothing to match on


# Records waiting for another attempt (the retry sensor and an operator's replay take these).
QUEUED_STATUSES = (RecordStatus.NO_ORDER_YET, RecordStatus.FAILED, RecordStatus.NEEDS_ATTENTION)


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
    api: Literal["v1", "v2"] = "v1"  # the ShipStation API generation it was read through
    order_id: int | None = None
    # The order's id as the API spells it where that is not just the number (V2: "se-123" for
    # order_id 123); NAV may hold either spelling in External_Document_No.
    order_ref: str | None = None
    order_key: str | None = None
    order_number: str | None = None
    tracking_number: str | None = None  # the label's (master) tracking number
    # Every package's tracking number of a multi-package label (V2 packages[]), the master first;
    # empty when the label has one package.
    package_tracking_numbers: tuple[str, ...] = ()
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

    def same_facts(self, other: "ShipRecord") -> bool:
        """Whether ``other`` says the same about this label as this record does: the facts a
        decision reads (order, tracking, carrier, service, dates, void, return). Two API
        generations spell one label differently (V2 labels list no items and no order number,
        which the order supplies); reading it through the other generation changes no fact."""
        return (
            self.record_key == other.record_key
            and self.order_id == other.order_id
            and self.tracking_number == other.tracking_number
            and (self.carrier_code or "").casefold() == (other.carrier_code or "").casefold()
            and self.service_code == other.service_code
            and self.ship_date == other.ship_date
            and self.created_at == other.created_at
            and self.voided == other.voided
            and self.void_date == other.void_date
            and self.is_return == other.is_return
        )


class ReceivedRecord(BaseModel):
    """One label or fulfillment as received from ShipStation (either API generation): the raw
    payload, always kept, and the parsed record, or why the payload could not be parsed."""

    model_config = ConfigDict(frozen=True)

    record_key: str
    source: Source
    payload: dict[str, Any]
    record: ShipRecord | None = None
    problem: str | None = None  # set exactly when record is None: the field, its value, the rule

    @property
    def source_id(self) -> int | None:
        return self.record.source_id if self.record else None


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
    status: str | None = None  # V1 orderStatus, V2 shipment_status: shown in the ledger only


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


class NavPostedShipment(BaseModel):
    model_config = ConfigDict(frozen=True)

    no: str
    order_no: str
    external_document_no: str = ""
    etag: str = ""
    posting_date: date | None = None
    package_tracking_no: str = ""
    shipping_agent_code: str = ""
    shipping_agent_service_code: str = ""


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


class MatchDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_key: str
    outcome: Literal["matched", "ambiguous", "no_order_yet", "invalid"]
    tier: int | None = None  # 1, 2 or 3 for matched/ambiguous
    nav_order_no: str | None = None
    reason: str
    candidates: tuple[str, ...] = Field(default=())


def record_key_of(identifier: str) -> str:
    """Operators may name a record as ``shipment:123``, ``fulfillment:45`` or a bare shipmentId."""
    text = identifier.strip()
    source, sep, number = text.partition(":")
    if sep and source in ("shipment", "fulfillment") and number.isdigit():
        return text
    if text.isdigit():
        return f"shipment:{text}"
    raise ValueError(f"not a shipment id or record key (shipment:123, fulfillment:45): {identifier!r}")
