"""``/v2/shipments``: list, get by id, get by ``external_shipment_id`` (V1 orders underneath)."""

import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shipnav_dagster.sandbox.shipstation.v2 import convert
from shipnav_dagster.sandbox.shipstation.v2.errors import not_found
from shipnav_dagster.sandbox.shipstation.v2.ids import label_batch_id, number_of
from shipnav_dagster.sandbox.shipstation.v2.paging import envelope, sort_by
from shipnav_dagster.sandbox.shipstation.v2.query import Query, descending, path_se_id, world_of
from shipnav_dagster.sandbox.shipstation.v2.selection import (
    Predicate,
    Record,
    between,
    contains,
    created,
    id_is,
    modified,
    nothing,
    se_id_of,
    select,
    text_is,
)
from shipnav_dagster.sandbox.shipstation.v2.times import pacific_instant
from shipnav_dagster.sandbox.state import ShipStationState

SHIPMENT_STATUSES = ("pending", "processing", "label_purchased", "cancelled")


def _orders_in_batch(state: ShipStationState, batch_id: str) -> set[int]:
    return {s["orderId"] for s in state.shipments.values() if label_batch_id(s) == batch_id}


def _item_keyword(wanted: str | None) -> Predicate | None:
    """item_keyword searches the items' SKU, description (name) and options (spec)."""
    if wanted is None:
        return None
    lowered = wanted.lower()

    def matches(order: Record) -> bool:
        for item in order.get("items") or []:
            texts = [item.get("sku"), item.get("name")]
            texts += [o.get("value") for o in item.get("options") or [] if isinstance(o, dict)]
            if any(isinstance(t, str) and lowered in t.lower() for t in texts):
                return True
        return False

    return matches


async def list_shipments(request: Request) -> Response:
    world = world_of(request)
    q = Query(request)
    status = q.choice("shipment_status", SHIPMENT_STATUSES)
    sort_field = q.choice("sort_by", ("modified_at", "created_at")) or "created_at"
    newest_first = descending(q)
    batch_id = q.se_id("batch_id")
    orders = world.shipstation.orders
    # Every declared parameter is read first, so a malformed one is refused whatever else is given.
    status_and_dates: list[Predicate | None] = [
        None if status is None else (lambda r: convert.shipment_status(r) == status),
        *between(q.instant("created_at_start"), q.instant("created_at_end"), created),
        *between(q.instant("modified_at_start"), q.instant("modified_at_end"), modified),
    ]
    others: list[Predicate | None] = [
        nothing(q.text("pickup_id")),
        nothing(q.text("sales_order_id")),
        text_is(q.text("shipment_number"), lambda r: convert.shipment_number(r, orders)),
        contains(q.text("ship_to_name"), lambda r: (r.get("shipTo") or {}).get("name")),
        _item_keyword(q.text("item_keyword")),
        *between(
            q.instant("payment_date_start"),
            q.instant("payment_date_end"),
            lambda r: pacific_instant(r.get("paymentDate")),
        ),
        id_is(q.se_id("store_id"), lambda r: se_id_of("storeId")(r.get("advancedOptions") or {})),
        text_is(q.text("external_shipment_id"), lambda r: r.get("orderKey")),
    ]
    key = modified if sort_field == "modified_at" else created
    with world.lock:
        state = world.shipstation
        page, size = q.paging(state.v2.max_page_size)
        if batch_id is not None:
            # Filtering by batch_id silently ignores the status and date filters
            # (https://docs.shipstation.com/list-shipments).
            in_batch = _orders_in_batch(state, batch_id)
            predicates = [lambda r: r["orderId"] in in_batch, *others]
        else:
            predicates = [*status_and_dates, *others]
        rows = sort_by(select(state.orders, predicates), key, lambda r: r["orderId"], newest_first)
        render = functools.partial(convert.shipment, orders=orders)
        return JSONResponse(envelope(request, "shipments", rows, page, size, render, pages_minimum=1))


async def get_shipment(request: Request) -> Response:
    world = world_of(request)
    shipment_id = path_se_id(request, "shipment_id")
    number = number_of(shipment_id)
    with world.lock:
        order = None if number is None else world.shipstation.orders.get(number)
        if order is None:
            raise not_found(f"shipment_id {shipment_id} was not found.")
        return JSONResponse(convert.shipment(order, world.shipstation.orders))


async def get_shipment_by_external_id(request: Request) -> Response:
    world = world_of(request)
    external = request.path_params["external_shipment_id"]
    with world.lock:
        found = [o for o in world.shipstation.orders.values() if o.get("orderKey") == external]
        if not found:
            raise not_found(f"No shipment has external_shipment_id '{external}'.")
        return JSONResponse(convert.shipment(found[0], world.shipstation.orders))
