"""``/v2/fulfillments``: list and create (orders marked shipped outside ShipStation's labels).

Not in the Aug 2025 spec; from https://docs.shipstation.com/list-fulfillments and
https://docs.shipstation.com/create-fulfillments. The list filters on ``create_date_start`` /
``create_date_end`` (not ``created_at_*``, which, unknown here, is ignored). Creating goes through
the same ``scenario.mark_shipped`` as V1's ``/orders/markasshipped``.
"""

import functools
from collections.abc import Callable
from datetime import date, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shipnav_dagster.sandbox import scenario
from shipnav_dagster.sandbox.shipstation.v2 import convert
from shipnav_dagster.sandbox.shipstation.v2.errors import invalid_value, required
from shipnav_dagster.sandbox.shipstation.v2.ids import is_se_id, number_of, se_id
from shipnav_dagster.sandbox.shipstation.v2.paging import envelope, sort_by
from shipnav_dagster.sandbox.shipstation.v2.query import (
    Query,
    descending,
    json_object,
    parse_instant,
    world_of,
)
from shipnav_dagster.sandbox.shipstation.v2.selection import (
    Predicate,
    Record,
    between,
    created,
    nothing,
    se_id_of,
    select,
    store_of,
    text_is,
)
from shipnav_dagster.sandbox.shipstation.v2.times import pacific_midnight
from shipnav_dagster.sandbox.state import PACIFIC, SandboxWorld

# Carriers connected to the sandbox account (creating refuses others), and the name a
# fulfillment shows for each (fulfillment_carrier_friendly_name).
CARRIER_NAMES = {
    "ups": "UPS",
    "fedex": "FedEx",
    "usps": "USPS",
    "stamps_com": "USPS",
    "dhl_express": "DHL Express",
    "ontrac": "OnTrac",
}


async def list_fulfillments(request: Request) -> Response:
    """Filters of docs.shipstation.com/list-fulfillments: note ``create_date_*``, not ``created_at_*``."""
    world = world_of(request)
    q = Query(request)
    sort_field = q.choice("sort_by", ("created_at", "modified_at", "shipped_at")) or "created_at"
    newest_first = descending(q)
    with world.lock:
        state = world.shipstation
        page, size = q.paging(state.v2.max_page_size)

        def store_id_of(record: Record) -> str | None:
            store = store_of(state.orders.get(record.get("orderId"), {}))  # type: ignore[arg-type]
            return se_id(store) if isinstance(store, int) else None

        predicates: list[Predicate | None] = [
            text_is(q.text("ship_to_name"), lambda r: (r.get("shipTo") or {}).get("name")),
            text_is(q.text("ship_to_country_code"), lambda r: (r.get("shipTo") or {}).get("country")),
            text_is(q.text("shipment_number"), lambda r: convert.fulfillment_number(r, state.orders)),
            text_is(q.text("shipment_id"), se_id_of("orderId")),
            text_is(q.text("fulfillment_id"), se_id_of("fulfillmentId")),
            nothing(q.text("batch_id")),
            text_is(q.text("order_source_id"), store_id_of),
            text_is(q.text("fulfillment_provider_code"), convert.fulfillment_provider_code),
            text_is(q.text("tracking_number"), lambda r: r.get("trackingNumber")),
            *between(
                q.instant("ship_date_start"),
                q.instant("ship_date_end"),
                lambda r: pacific_midnight(r.get("shipDate")),
            ),
            *between(q.instant("create_date_start"), q.instant("create_date_end"), created),
        ]
        keys: dict[str, Callable[[Record], datetime | None]] = {
            "created_at": created,
            "modified_at": convert.fulfillment_modified,
            "shipped_at": lambda r: pacific_midnight(r.get("shipDate")),
        }
        selected = select(state.fulfillments, predicates)
        rows = sort_by(selected, keys[sort_field], lambda r: r["fulfillmentId"], newest_first)
        render = functools.partial(convert.fulfillment, orders=state.orders)
        return JSONResponse(envelope(request, "fulfillments", rows, page, size, render))


async def create_fulfillments(request: Request) -> Response:
    """Mark shipments shipped with tracking; partial success, 200 with ``has_errors``.

    https://docs.shipstation.com/create-fulfillments: each item needs an existing ``shipment_id``
    not yet fulfilled, a ``tracking_number`` and a ``carrier_code`` of a connected carrier;
    ``ship_date`` defaults to today. A malformed request is refused as a whole (400); an item
    that cannot be fulfilled gets its ``error_message`` while the others go through.
    """
    world = world_of(request)
    body = await json_object(request)
    items = body.get("fulfillments")
    if not isinstance(items, list) or not items:
        raise required("fulfillments is required: a non-empty array.")
    wanted = [_fulfillment_request(n, item) for n, item in enumerate(items)]
    results = []
    with world.lock:
        for item in wanted:
            results.append(_fulfil(world, item))
    has_errors = any(r["error_message"] is not None for r in results)
    return JSONResponse({"has_errors": has_errors, "fulfillments": results})


def _fulfillment_request(n: int, item: object) -> Record:
    if not isinstance(item, dict):
        raise invalid_value(f"fulfillments[{n}] must be an object.")
    for name in ("shipment_id", "tracking_number", "carrier_code"):
        value = item.get(name)
        if value is None or value == "":
            raise required(f"fulfillments[{n}].{name} is required.")
        if not isinstance(value, str):
            raise invalid_value(f"fulfillments[{n}].{name} must be a string.")
    for name in ("notify_customer", "notify_order_source"):
        if item.get(name) is not None and not isinstance(item.get(name), bool):
            raise invalid_value(f"fulfillments[{n}].{name} must be true or false.")
    ship_date = item.get("ship_date")
    if ship_date is not None and not isinstance(ship_date, str):
        raise invalid_value(f"fulfillments[{n}].ship_date must be a date-time string.")
    return {**item, "ship_day": _ship_day(ship_date, f"fulfillments[{n}].ship_date")}


def _ship_day(value: str | None, name: str) -> date | None:
    """The calendar day shipped: a bare date as given, an instant's day in the account's zone."""
    if not value:
        return None
    if len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise invalid_value(f"{name} must be a date or date-time; got '{value}'.") from None
    return parse_instant(value, name).astimezone(PACIFIC).date()


def _fulfil(world: SandboxWorld, item: Record) -> Record:
    shipment_id = item["shipment_id"]
    number = number_of(shipment_id) if is_se_id(shipment_id) else None
    order = None if number is None else world.shipstation.orders.get(number)
    result: Record = {"shipment_id": shipment_id, "shipment_number": None, "error_message": None}
    if order is None:
        result["error_message"] = f"Shipment {shipment_id} was not found."
        return result
    result["shipment_number"] = convert.shipment_number(order, world.shipstation.orders)
    carrier = item["carrier_code"].lower()
    if order.get("orderStatus") == "cancelled":
        result["error_message"] = "A cancelled shipment cannot be fulfilled."
    elif order.get("orderStatus") == "shipped":
        result["error_message"] = "This shipment has already been fulfilled."
    elif carrier not in CARRIER_NAMES:
        result["error_message"] = f"carrier_code '{item['carrier_code']}' is not a connected carrier."
    else:
        made = scenario.mark_shipped(
            world,
            order["orderId"],
            carrier=CARRIER_NAMES[carrier],
            tracking_number=item["tracking_number"],
            ship_date=item["ship_day"],
        )
        made["marketplaceNotified"] = bool(item.get("notify_order_source", False))
    return result
