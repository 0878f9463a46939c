"""``/v2/labels``: list, get by id, and ``PUT /v2/labels/{label_id}/void`` (V1 shipments underneath).

The list defaults to the most recently created first, 25 a page (spec ``list_labels``); labels
have no modified-since filter, and ``sort_by=modified_at`` orders on the void time when there is
one (labels carry no ``modified_at`` field).
"""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shipnav_dagster.sandbox import scenario
from shipnav_dagster.sandbox.shipstation.v2 import convert
from shipnav_dagster.sandbox.shipstation.v2.errors import not_found
from shipnav_dagster.sandbox.shipstation.v2.ids import carrier_id_for, label_batch_id, number_of
from shipnav_dagster.sandbox.shipstation.v2.paging import envelope, sort_by
from shipnav_dagster.sandbox.shipstation.v2.query import Query, base_url, descending, path_se_id, world_of
from shipnav_dagster.sandbox.shipstation.v2.selection import (
    Predicate,
    Record,
    between,
    created,
    id_is,
    nothing,
    se_id_of,
    select,
    text_is,
)
from shipnav_dagster.sandbox.state import ShipStationState

LABEL_STATUSES = ("processing", "completed", "error", "voided")
VOIDED_MESSAGE = "Request for refund submitted. This label has been voided."


async def list_labels(request: Request) -> Response:
    world = world_of(request)
    q = Query(request)
    status = q.choice("label_status", LABEL_STATUSES)
    sort_field = q.choice("sort_by", ("modified_at", "created_at")) or "created_at"
    newest_first = descending(q)
    predicates: list[Predicate | None] = [
        None if status is None else (lambda r: convert.label_status(r) == status),
        text_is(q.text("service_code"), lambda r: r.get("serviceCode")),
        id_is(q.se_id("carrier_id"), lambda r: carrier_id_for(r.get("carrierCode"))),
        text_is(q.text("tracking_number"), lambda r: r.get("trackingNumber")),
        id_is(q.se_id("batch_id"), label_batch_id),
        nothing(q.se_id("rate_id")),
        id_is(q.se_id("shipment_id"), se_id_of("orderId")),
        id_is(q.se_id("warehouse_id"), se_id_of("warehouseId")),
        *between(q.instant("created_at_start"), q.instant("created_at_end"), created),
    ]
    key = convert.label_modified if sort_field == "modified_at" else created
    base = base_url(request)
    with world.lock:
        state = world.shipstation
        page, size = q.paging(state.v2.max_page_size)
        rows = sort_by(select(state.shipments, predicates), key, lambda r: r["shipmentId"], newest_first)
        return JSONResponse(envelope(request, "labels", rows, page, size, lambda r: convert.label(r, base)))


def _label_record(state: ShipStationState, label_id: str) -> Record | None:
    number = number_of(label_id)
    return None if number is None else state.shipments.get(number)


async def get_label(request: Request) -> Response:
    world = world_of(request)
    label_id = path_se_id(request, "label_id")
    with world.lock:
        record = _label_record(world.shipstation, label_id)
        if record is None:
            # The spec gives this 404 an empty body (empty_response_body), not the error body.
            return Response(status_code=404, media_type="application/json")
        return JSONResponse(convert.label(record, base_url(request)))


async def void_label(request: Request) -> Response:
    """``{approved, message[, reason_code]}``; a label already voided is not approved (200)."""
    world = world_of(request)
    label_id = path_se_id(request, "label_id")
    with world.lock:
        record = _label_record(world.shipstation, label_id)
        if record is None:
            raise not_found(f"label_id {label_id} was not found.")
        if record.get("voided"):
            return JSONResponse(
                {
                    "approved": False,
                    "message": "This label has already been voided.",
                    "reason_code": "label_already_voided",
                }
            )
        # The same change as a V1 void: the shipment goes back to pending when nothing live is left.
        scenario.void_label(world, record["shipmentId"])
        return JSONResponse({"approved": True, "message": VOIDED_MESSAGE})
