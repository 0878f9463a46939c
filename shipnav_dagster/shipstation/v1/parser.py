"""The one parser of ShipStation V1 payloads: each label, fulfillment and order on its own. Pure.

Strict by field, tolerant by record: a field shipnav uses that is present but unreadable makes
that one record ``invalid`` (the problem names the field, the value and the rule), and the rest
of the page goes on; fields shipnav does not use are never looked at. The poll, the webhook
drain and every later replay read records through here (the ledger keeps the parsed record).
The field readers are shared with the V2 parser (``shipstation.records``).
"""

from datetime import date, datetime
from typing import Any

from shipnav_dagster.core.model import OrderInfo, ReceivedRecord, ShippedItem, ShipRecord
from shipnav_dagster.shipstation.records import (
    RecordError,
    address_name,
    boolean,
    read_with,
    received,
    shown,
    text,
    whole_number,
)
from shipnav_dagster.shipstation.v1.timeutil import parse_pacific, parse_pacific_date

__all__ = ["RecordError", "parse_fulfillment", "parse_order", "parse_shipment"]


def _date(value: object, field: str) -> date | None:
    """ShipStation dates are Pacific calendar dates ("2024-09-17" or a midnight datetime)."""
    return read_with(parse_pacific_date, value, field, "is not a date")


def _when(value: object, field: str, *, required: bool = False) -> datetime | None:
    rule = "is not a ShipStation timestamp"
    return read_with(parse_pacific, value, field, rule, required=required)


def _items(payload: dict[str, Any], key: str) -> tuple[ShippedItem, ...]:
    raw = payload.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RecordError(f"{key} {shown(raw)} is not a list")
    items = []
    for n, item in enumerate(raw):
        if item is None:
            continue  # ShipStation sends null list entries now and then; they carry nothing
        if not isinstance(item, dict):
            raise RecordError(f"{key}[{n}] {shown(item)} is not an item")
        if boolean(item.get("adjustment"), f"{key}[{n}].adjustment"):
            continue
        sku = text(item.get("sku"), f"{key}[{n}].sku")
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int | float | str | type(None)):
            raise RecordError(f"{key}[{n}].quantity {shown(quantity)} is not a number")
        try:
            qty = float(quantity or 0)
        except ValueError:
            raise RecordError(f"{key}[{n}].quantity {shown(quantity)} is not a number") from None
        if sku and qty > 0:
            items.append(ShippedItem(sku=sku, quantity=qty))
    return tuple(items)


def _id_reader(field: str) -> Any:
    return lambda payload: whole_number(payload.get(field), field)


def _shipment(key: str, source_id: int, payload: dict[str, Any]) -> ShipRecord:
    return ShipRecord(
        record_key=key,
        source="shipment",
        source_id=source_id,
        order_id=whole_number(payload.get("orderId"), "orderId"),
        order_key=text(payload.get("orderKey"), "orderKey"),
        order_number=text(payload.get("orderNumber"), "orderNumber"),
        tracking_number=text(payload.get("trackingNumber"), "trackingNumber"),
        carrier_code=text(payload.get("carrierCode"), "carrierCode"),
        service_code=text(payload.get("serviceCode"), "serviceCode"),
        ship_date=_date(payload.get("shipDate"), "shipDate"),
        created_at=_when(payload.get("createDate"), "createDate", required=True),
        voided=boolean(payload.get("voided"), "voided"),
        void_date=_when(payload.get("voidDate"), "voidDate"),
        is_return=boolean(payload.get("isReturnLabel"), "isReturnLabel"),
        ship_to_name=address_name(payload.get("shipTo"), "shipTo"),
        items=_items(payload, "shipmentItems"),
    )


def _fulfillment(key: str, source_id: int, payload: dict[str, Any]) -> ShipRecord:
    return ShipRecord(
        record_key=key,
        source="fulfillment",
        source_id=source_id,
        order_id=whole_number(payload.get("orderId"), "orderId"),
        order_number=text(payload.get("orderNumber"), "orderNumber"),
        tracking_number=text(payload.get("trackingNumber"), "trackingNumber"),
        carrier_code=text(payload.get("carrierCode"), "carrierCode"),
        service_code=text(payload.get("fulfillmentServiceCode"), "fulfillmentServiceCode"),
        ship_date=_date(payload.get("shipDate"), "shipDate"),
        created_at=_when(payload.get("createDate"), "createDate", required=True),
        voided=boolean(payload.get("voided"), "voided"),
        void_date=_when(payload.get("voidDate"), "voidDate"),
        is_return=False,
        ship_to_name=address_name(payload.get("shipTo"), "shipTo"),
    )


def parse_shipment(payload: object) -> ReceivedRecord:
    """A V1 shipment (one purchased label) from ``GET /shipments`` or a SHIP_NOTIFY resource."""
    return received("shipment", "shipmentId", payload, _id_reader("shipmentId"), _shipment)


def parse_fulfillment(payload: object) -> ReceivedRecord:
    """A V1 fulfillment (marked as shipped outside the label flow) from ``GET /fulfillments``."""
    return received("fulfillment", "fulfillmentId", payload, _id_reader("fulfillmentId"), _fulfillment)


def parse_order(payload: object) -> OrderInfo:
    """What the matcher needs from a V1 order; :class:`RecordError` names what is unreadable.

    Only these fields are read: an order's other fields (customerId, items...) never make it
    unreadable."""
    if not isinstance(payload, dict):
        raise RecordError(f"the order is {shown(payload)}, not a JSON object")
    order_id = whole_number(payload.get("orderId"), "orderId")
    if order_id is None:
        raise RecordError("orderId is missing")
    options = payload.get("advancedOptions")
    advanced: dict[str, Any] = options if isinstance(options, dict) else {}
    return OrderInfo(
        order_id=order_id,
        order_number=text(payload.get("orderNumber"), "orderNumber"),
        order_key=text(payload.get("orderKey"), "orderKey"),
        # The order date is compared as the Pacific calendar date ShipStation shows.
        order_date=_date(payload.get("orderDate"), "orderDate"),
        ship_to_name=address_name(payload.get("shipTo"), "shipTo"),
        bill_to_name=address_name(payload.get("billTo"), "billTo"),
        parent_id=whole_number(advanced.get("parentId"), "advancedOptions.parentId"),
        # Shown in the ledger only: never a reason to call an order unreadable.
        status=status if isinstance(status := payload.get("orderStatus"), str) else None,
    )
