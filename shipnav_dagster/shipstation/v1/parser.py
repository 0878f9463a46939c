"""The one parser of ShipStation V1 payloads: each label, fulfillment and order on its own. Pure.

Strict by field, tolerant by record: a field shipnav uses that is present but unreadable makes
that one record ``invalid`` (the problem names the field, the value and the rule), and the rest
of the page goes on; fields shipnav does not use are never looked at. The poll, the webhook
drain and every later replay read records through here (the ledger keeps the parsed record).
"""

import hashlib
import json
from datetime import date, datetime
from typing import Any

from shipnav_dagster.core.model import OrderInfo, ReceivedRecord, ShippedItem, ShipRecord, Source
from shipnav_dagster.shipstation.v1.timeutil import parse_pacific, parse_pacific_date

_TRUE = {True, "true", "True", "TRUE", "1"}  # True == 1 in a set
_FALSE = {False, "false", "False", "FALSE", "0", None, ""}  # False == 0 in a set
_SHOWN = 80  # characters of an unreadable value quoted in a problem


class RecordError(ValueError):
    """A payload lacks what shipnav needs or carries a value it cannot read; the message says
    which field, which value and what was expected."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _text(value: object, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise RecordError(f"{field} {_shown(value)} is not text")
    text = str(value).strip()
    return text or None


def _int(value: object, field: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} {_shown(value)} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise RecordError(f"{field} {_shown(value)} is not a whole number")


def _bool(value: object, field: str) -> bool:
    if isinstance(value, bool | int | str | type(None)) and value in _TRUE:
        return True
    if isinstance(value, bool | int | str | type(None)) and value in _FALSE:
        return False
    raise RecordError(f"{field} {_shown(value)} is not true or false")


def _date(value: object, field: str) -> date | None:
    """ShipStation dates are Pacific calendar dates ("2024-09-17" or a midnight datetime)."""
    if value in (None, ""):
        return None
    try:
        return parse_pacific_date(value)  # type: ignore[arg-type]  # a non-string raises TypeError
    except (TypeError, ValueError):
        raise RecordError(f"{field} {_shown(value)} is not a date") from None


def _when(value: object, field: str, *, required: bool = False) -> datetime | None:
    if value in (None, ""):
        if required:
            raise RecordError(f"{field} is missing")
        return None
    try:
        return parse_pacific(value)  # type: ignore[arg-type]  # a non-string raises TypeError
    except (TypeError, ValueError):
        raise RecordError(f"{field} {_shown(value)} is not a ShipStation timestamp") from None


def _name(address: object, field: str) -> str | None:
    if address is None:
        return None
    if not isinstance(address, dict):
        raise RecordError(f"{field} {_shown(address)} is not an address")
    return _text(address.get("name"), f"{field}.name")


def _items(payload: dict[str, Any], key: str) -> tuple[ShippedItem, ...]:
    raw = payload.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RecordError(f"{key} {_shown(raw)} is not a list")
    items = []
    for n, item in enumerate(raw):
        if item is None:
            continue  # ShipStation sends null list entries now and then; they carry nothing
        if not isinstance(item, dict):
            raise RecordError(f"{key}[{n}] {_shown(item)} is not an item")
        if _bool(item.get("adjustment"), f"{key}[{n}].adjustment"):
            continue
        sku = _text(item.get("sku"), f"{key}[{n}].sku")
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int | float | str | type(None)):
            raise RecordError(f"{key}[{n}].quantity {_shown(quantity)} is not a number")
        try:
            qty = float(quantity or 0)
        except ValueError:
            raise RecordError(f"{key}[{n}].quantity {_shown(quantity)} is not a number") from None
        if sku and qty > 0:
            items.append(ShippedItem(sku=sku, quantity=qty))
    return tuple(items)


def _invalid_key(source: Source, payload: dict[str, Any]) -> str:
    """A stable key for a payload whose id cannot be read: the same payload, the same key."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{source}:invalid-{digest[:16]}"


def _received(source: Source, id_field: str, payload: object, build: Any) -> ReceivedRecord:
    if not isinstance(payload, dict):
        body = {"value": payload}
        return ReceivedRecord(
            record_key=_invalid_key(source, body),
            source=source,
            payload=body,
            problem=f"the {source} is {_shown(payload)}, not a JSON object",
        )
    try:
        source_id = _int(payload.get(id_field), id_field)
    except RecordError as exc:
        return ReceivedRecord(
            record_key=_invalid_key(source, payload), source=source, payload=payload, problem=str(exc)
        )
    if source_id is None:
        return ReceivedRecord(
            record_key=_invalid_key(source, payload),
            source=source,
            payload=payload,
            problem=f"{id_field} is missing",
        )
    key = f"{source}:{source_id}"
    try:
        record = build(key, source_id, payload)
    except RecordError as exc:
        return ReceivedRecord(record_key=key, source=source, payload=payload, problem=str(exc))
    return ReceivedRecord(record_key=key, source=source, payload=payload, record=record)


def _shipment(key: str, source_id: int, payload: dict[str, Any]) -> ShipRecord:
    return ShipRecord(
        record_key=key,
        source="shipment",
        source_id=source_id,
        order_id=_int(payload.get("orderId"), "orderId"),
        order_key=_text(payload.get("orderKey"), "orderKey"),
        order_number=_text(payload.get("orderNumber"), "orderNumber"),
        tracking_number=_text(payload.get("trackingNumber"), "trackingNumber"),
        carrier_code=_text(payload.get("carrierCode"), "carrierCode"),
        service_code=_text(payload.get("serviceCode"), "serviceCode"),
        ship_date=_date(payload.get("shipDate"), "shipDate"),
        created_at=_when(payload.get("createDate"), "createDate", required=True),
        voided=_bool(payload.get("voided"), "voided"),
        void_date=_when(payload.get("voidDate"), "voidDate"),
        is_return=_bool(payload.get("isReturnLabel"), "isReturnLabel"),
        ship_to_name=_name(payload.get("shipTo"), "shipTo"),
        items=_items(payload, "shipmentItems"),
    )


def _fulfillment(key: str, source_id: int, payload: dict[str, Any]) -> ShipRecord:
    return ShipRecord(
        record_key=key,
        source="fulfillment",
        source_id=source_id,
        order_id=_int(payload.get("orderId"), "orderId"),
        order_number=_text(payload.get("orderNumber"), "orderNumber"),
        tracking_number=_text(payload.get("trackingNumber"), "trackingNumber"),
        carrier_code=_text(payload.get("carrierCode"), "carrierCode"),
        service_code=_text(payload.get("fulfillmentServiceCode"), "fulfillmentServiceCode"),
        ship_date=_date(payload.get("shipDate"), "shipDate"),
        created_at=_when(payload.get("createDate"), "createDate", required=True),
        voided=_bool(payload.get("voided"), "voided"),
        void_date=_when(payload.get("voidDate"), "voidDate"),
        is_return=False,
        ship_to_name=_name(payload.get("shipTo"), "shipTo"),
    )


def parse_shipment(payload: object) -> ReceivedRecord:
    """A V1 shipment (one purchased label) from ``GET /shipments`` or a SHIP_NOTIFY resource."""
    return _received("shipment", "shipmentId", payload, _shipment)


def parse_fulfillment(payload: object) -> ReceivedRecord:
    """A V1 fulfillment (marked as shipped outside the label flow) from ``GET /fulfillments``."""
    return _received("fulfillment", "fulfillmentId", payload, _fulfillment)


def parse_order(payload: object) -> OrderInfo:
    """What the matcher needs from a V1 order; :class:`RecordError` names what is unreadable.

    Only these fields are read: an order's other fields (customerId, items...) never make it
    unreadable."""
    if not isinstance(payload, dict):
        raise RecordError(f"the order is {_shown(payload)}, not a JSON object")
    order_id = _int(payload.get("orderId"), "orderId")
    if order_id is None:
        raise RecordError("orderId is missing")
    options = payload.get("advancedOptions")
    advanced: dict[str, Any] = options if isinstance(options, dict) else {}
    return OrderInfo(
        order_id=order_id,
        order_number=_text(payload.get("orderNumber"), "orderNumber"),
        order_key=_text(payload.get("orderKey"), "orderKey"),
        # The order date is compared as the Pacific calendar date ShipStation shows.
        order_date=_date(payload.get("orderDate"), "orderDate"),
        ship_to_name=_name(payload.get("shipTo"), "shipTo"),
        bill_to_name=_name(payload.get("billTo"), "billTo"),
        parent_id=_int(advanced.get("parentId"), "advancedOptions.parentId"),
    )
