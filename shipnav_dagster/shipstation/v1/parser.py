"""Turn raw ShipStation payloads into the records the decision steps use. Pure.

Works on the raw JSON (as stored in the ledger) so a replay months later rebuilds exactly the
record that was seen, whatever the client models look like by then.
"""

from datetime import date, datetime
from typing import Any

from shipnav_dagster.core.model import OrderInfo, ShippedItem, ShipRecord
from shipnav_dagster.shipstation.v1.timeutil import parse_pacific


class RecordError(ValueError):
    """A payload lacks what shipnav needs; the message says which field."""


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: object) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _date(value: object) -> date | None:
    """ShipStation dates are Pacific calendar dates ("2024-09-17" or a midnight datetime)."""
    text = _text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _when(value: object, field: str, required: bool) -> datetime | None:
    text = _text(value)
    if not text:
        if required:
            raise RecordError(f"missing {field}")
        return None
    try:
        return parse_pacific(text)
    except ValueError as exc:
        raise RecordError(f"unreadable {field} {text!r}: {exc}") from None


def _created(payload: dict[str, Any]) -> datetime:
    created = _when(payload.get("createDate"), "createDate", True)
    assert created is not None  # required=True raised otherwise
    return created


def _name(address: object) -> str | None:
    return _text(address.get("name")) if isinstance(address, dict) else None


def _items(payload: dict[str, Any], key: str) -> tuple[ShippedItem, ...]:
    items = []
    for item in payload.get(key) or []:
        if not isinstance(item, dict) or item.get("adjustment"):
            continue
        sku = _text(item.get("sku"))
        try:
            qty = float(item.get("quantity") or 0)
        except (TypeError, ValueError):
            qty = 0.0
        if sku and qty > 0:
            items.append(ShippedItem(sku=sku, quantity=qty))
    return tuple(items)


def ship_record_from_shipment(payload: dict[str, Any]) -> ShipRecord:
    shipment_id = _int(payload.get("shipmentId"))
    if shipment_id is None:
        raise RecordError("shipment without shipmentId")
    return ShipRecord(
        record_key=f"shipment:{shipment_id}",
        source="shipment",
        source_id=shipment_id,
        order_id=_int(payload.get("orderId")),
        order_key=_text(payload.get("orderKey")),
        order_number=_text(payload.get("orderNumber")),
        tracking_number=_text(payload.get("trackingNumber")),
        carrier_code=_text(payload.get("carrierCode")),
        service_code=_text(payload.get("serviceCode")),
        ship_date=_date(payload.get("shipDate")),
        created_at=_created(payload),
        voided=bool(payload.get("voided")),
        void_date=_when(payload.get("voidDate"), "voidDate", False),
        is_return=bool(payload.get("isReturnLabel")),
        ship_to_name=_name(payload.get("shipTo")),
        items=_items(payload, "shipmentItems"),
    )


def ship_record_from_fulfillment(payload: dict[str, Any]) -> ShipRecord:
    fulfillment_id = _int(payload.get("fulfillmentId"))
    if fulfillment_id is None:
        raise RecordError("fulfillment without fulfillmentId")
    return ShipRecord(
        record_key=f"fulfillment:{fulfillment_id}",
        source="fulfillment",
        source_id=fulfillment_id,
        order_id=_int(payload.get("orderId")),
        order_number=_text(payload.get("orderNumber")),
        tracking_number=_text(payload.get("trackingNumber")),
        carrier_code=_text(payload.get("carrierCode")),
        service_code=_text(payload.get("fulfillmentServiceCode")),
        ship_date=_date(payload.get("shipDate")),
        created_at=_created(payload),
        voided=bool(payload.get("voided")),
        void_date=_when(payload.get("voidDate"), "voidDate", False),
        is_return=False,
        ship_to_name=_name(payload.get("shipTo")),
    )


def ship_record_from_payload(source: str, payload: dict[str, Any]) -> ShipRecord:
    if source == "shipment":
        return ship_record_from_shipment(payload)
    if source == "fulfillment":
        return ship_record_from_fulfillment(payload)
    raise RecordError(f"unknown record source {source!r}")


def order_info_from_order(payload: dict[str, Any]) -> OrderInfo:
    order_id = _int(payload.get("orderId"))
    if order_id is None:
        raise RecordError("order without orderId")
    options = payload.get("advancedOptions")
    advanced: dict[str, Any] = options if isinstance(options, dict) else {}
    return OrderInfo(
        order_id=order_id,
        order_number=_text(payload.get("orderNumber")),
        order_key=_text(payload.get("orderKey")),
        # The order date is compared as the Pacific calendar date ShipStation shows.
        order_date=_date(payload.get("orderDate")),
        ship_to_name=_name(payload.get("shipTo")),
        bill_to_name=_name(payload.get("billTo")),
        parent_id=_int(advanced.get("parentId")),
    )
