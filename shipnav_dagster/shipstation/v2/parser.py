"""The one parser of ShipStation API V2 payloads: labels, fulfillments and shipments. Pure.

It produces what the V1 parser produces (``ReceivedRecord`` / ``OrderInfo``), so matching,
planning and writing never know which generation a record came from. Strict by field, tolerant
by record, with the V1 parser's field readers (``shipstation.records``).

Where the generations differ (https://docs.shipstation.com/orders/understanding-orders-shipments):

* a V2 *label* is a V1 shipment: ``label_id se-N`` is the record ``shipment:N`` (``ids.py``);
  its ``shipment_id`` is the order, ``external_shipment_id`` the V1 ``orderKey``. A label carries
  no ``shipment_number``: the order context (``parse_shipment``) supplies it.
* a multi-package label (``packages[]``, each with its ``tracking_number``) is one record: the
  label's ``tracking_number`` (else the first package's) is its tracking number, and every
  package's number is kept in ``package_tracking_numbers`` (and in the raw payload).
* a V2 *shipment* is a V1 order. It has no order date: its ``created_at`` (when the order reached
  ShipStation) stands in, as its Pacific calendar date. Split shipments share one
  ``shipment_number`` (the spec calls it non-unique) and carry no parent id.
* ``ship_date`` is a date sent as a midnight instant: read by ``timeutil.calendar_date``.
"""

from datetime import date, datetime
from typing import Any

from shipnav_dagster.core.model import OrderInfo, ReceivedRecord, ShipRecord
from shipnav_dagster.shipstation.records import (
    RecordError,
    address_name,
    boolean,
    read_with,
    received,
    shown,
    text,
)
from shipnav_dagster.shipstation.v1.timeutil import pacific_date
from shipnav_dagster.shipstation.v2.ids import se_id, se_number
from shipnav_dagster.shipstation.v2.timeutil import calendar_date, parse_instant

__all__ = ["RecordError", "parse_fulfillment", "parse_label", "parse_shipment"]


def _date(value: object, field: str) -> date | None:
    return read_with(calendar_date, value, field, "is not a date")


def _when(value: object, field: str, *, required: bool = False) -> datetime | None:
    rule = "is not an ISO-8601 date-time"
    return read_with(parse_instant, value, field, rule, required=required)


def _order(payload: dict[str, Any]) -> tuple[int | None, str | None]:
    """The order (V2 shipment) a label or fulfillment belongs to: its number and its V2 spelling."""
    number = se_number(payload.get("shipment_id"), "shipment_id")
    return number, (se_id(number) if number is not None else None)


def _packages(payload: dict[str, Any]) -> tuple[str, ...]:
    """Every package's tracking number, in the order the label lists its packages."""
    raw = payload.get("packages")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RecordError(f"packages {shown(raw)} is not a list")
    numbers: list[str] = []
    for n, package in enumerate(raw):
        if package is None:
            continue
        if not isinstance(package, dict):
            raise RecordError(f"packages[{n}] {shown(package)} is not a package")
        number = text(package.get("tracking_number"), f"packages[{n}].tracking_number")
        if number and number not in numbers:
            numbers.append(number)
    return tuple(numbers)


def _label(key: str, source_id: int, payload: dict[str, Any]) -> ShipRecord:
    order_id, order_ref = _order(payload)
    packages = _packages(payload)
    tracking = text(payload.get("tracking_number"), "tracking_number") or (packages[0] if packages else None)
    if tracking and packages and tracking in packages:
        packages = (tracking, *(p for p in packages if p != tracking))
    return ShipRecord(
        record_key=key,
        source="shipment",
        source_id=source_id,
        api="v2",
        order_id=order_id,
        order_ref=order_ref,
        order_key=text(payload.get("external_shipment_id"), "external_shipment_id"),
        order_number=text(payload.get("shipment_number"), "shipment_number"),
        tracking_number=tracking,
        package_tracking_numbers=packages if len(packages) > 1 else (),
        carrier_code=text(payload.get("carrier_code"), "carrier_code"),
        service_code=text(payload.get("service_code"), "service_code"),
        ship_date=_date(payload.get("ship_date"), "ship_date"),
        created_at=_when(payload.get("created_at"), "created_at", required=True),
        voided=boolean(payload.get("voided"), "voided"),
        void_date=_when(payload.get("voided_at"), "voided_at"),
        is_return=boolean(payload.get("is_return_label"), "is_return_label"),
        ship_to_name=address_name(payload.get("ship_to"), "ship_to"),
    )


_CARRIER_NAME = "fulfillment_carrier_friendly_name"


def _fulfillment(key: str, source_id: int, payload: dict[str, Any]) -> ShipRecord:
    order_id, order_ref = _order(payload)
    return ShipRecord(
        record_key=key,
        source="fulfillment",
        source_id=source_id,
        api="v2",
        order_id=order_id,
        order_ref=order_ref,
        order_number=text(payload.get("shipment_number"), "shipment_number"),
        tracking_number=text(payload.get("tracking_number"), "tracking_number"),
        # Free text as the seller typed it ("FedEx"), as V1's carrierCode of a fulfillment.
        carrier_code=text(payload.get(_CARRIER_NAME), _CARRIER_NAME),
        service_code=text(payload.get("fulfillment_service_code"), "fulfillment_service_code"),
        ship_date=_date(payload.get("ship_date"), "ship_date"),
        created_at=_when(payload.get("created_at"), "created_at", required=True),
        voided=boolean(payload.get("voided"), "voided"),
        void_date=_when(payload.get("voided_at"), "voided_at"),
        is_return=False,
        ship_to_name=address_name(payload.get("ship_to"), "ship_to"),
    )


def _id_reader(field: str) -> Any:
    return lambda payload: se_number(payload.get(field), field)


def parse_label(payload: object) -> ReceivedRecord:
    """A V2 label (``GET /v2/labels``, a LABEL_CREATED_V2 resource) as the record ``shipment:N``."""
    return received("shipment", "label_id", payload, _id_reader("label_id"), _label)


def parse_fulfillment(payload: object) -> ReceivedRecord:
    """A V2 fulfillment (``GET /v2/fulfillments``, a FULFILLMENT_SHIPPED_V2 resource)."""
    return received("fulfillment", "fulfillment_id", payload, _id_reader("fulfillment_id"), _fulfillment)


def parse_shipment(payload: object) -> OrderInfo:
    """What the matcher needs from a V2 shipment (the V1 order); RecordError names what is not
    readable. Only these fields are read."""
    if not isinstance(payload, dict):
        raise RecordError(f"the shipment is {shown(payload)}, not a JSON object")
    order_id = se_number(payload.get("shipment_id"), "shipment_id")
    if order_id is None:
        raise RecordError("shipment_id is missing")
    created = _when(payload.get("created_at"), "created_at")
    status = payload.get("shipment_status")
    return OrderInfo(
        order_id=order_id,
        order_number=text(payload.get("shipment_number"), "shipment_number"),
        order_key=text(payload.get("external_shipment_id"), "external_shipment_id"),
        # The matcher compares the Pacific calendar date ShipStation shows.
        order_date=pacific_date(created) if created else None,
        ship_to_name=address_name(payload.get("ship_to"), "ship_to"),
        status=status if isinstance(status, str) else None,
    )
