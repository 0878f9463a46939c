"""ShipStation API v2 emulator (Starlette): the V1 world's account served the V2 way.

Paths below ``/v2/`` as in the official spec ("ShipStation API v2" 2.0.0, Aug 2025) plus the
fulfillment endpoints of the current docs (https://docs.shipstation.com/list-fulfillments,
https://docs.shipstation.com/create-fulfillments):

* ``GET /v2/labels``, ``GET /v2/labels/{label_id}``, ``PUT /v2/labels/{label_id}/void``
* ``GET /v2/shipments``, ``GET /v2/shipments/{shipment_id}``,
  ``GET /v2/shipments/external_shipment_id/{external_shipment_id}``
* ``GET /v2/fulfillments``, ``POST /v2/fulfillments``
* ``GET|POST /v2/environment/webhooks``, ``GET|PUT|DELETE /v2/environment/webhooks/{webhook_id}``

Auth is the ``API-Key`` header (spec security scheme ``api_keys``); a wrong or missing key, or V1
Basic credentials, get 401. 200 requests per minute per key (https://docs.shipstation.com/rate-
limits), then 429 with ``Retry-After`` seconds. Errors use the V2 error body. Writes go through
the same ``scenario`` helpers as V1, so both APIs change the world the same way.

Operator endpoints (no auth, not rate limited, not logged): ``/_sandbox/faults``, ``/config``
(``rate_limit_per_minute``, ``rate_window_seconds``, ``max_page_size``), ``/reset``, ``/stats``,
and ``POST /_sandbox/webhooks/deliver`` (sends the queued webhook notifications).
"""

import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipnav_dagster.sandbox import scenario
from shipnav_dagster.sandbox.shipstation.common import (
    ADMIN_PREFIX,
    AdminSpec,
    Gate,
    GatePolicy,
    RateStatus,
    admin_routes,
    as_float,
    as_int,
    as_optional_int,
    gateway_response,
    quiet_deliberate_drops,
)
from shipnav_dagster.sandbox.shipstation.v2 import convert
from shipnav_dagster.sandbox.shipstation.v2.delivery import deliver_webhooks
from shipnav_dagster.sandbox.shipstation.v2.errors import (
    V2Error,
    error_response,
    invalid_value,
    not_found,
    required,
)
from shipnav_dagster.sandbox.shipstation.v2.ids import (
    carrier_id_for,
    is_se_id,
    label_batch_id,
    number_of,
    se_id,
)
from shipnav_dagster.sandbox.shipstation.v2.paging import envelope, sort_by
from shipnav_dagster.sandbox.shipstation.v2.query import Query, parse_instant
from shipnav_dagster.sandbox.shipstation.v2.webhooks import (
    create_webhook,
    delete_webhook,
    get_webhook,
    json_object,
    list_webhooks,
    update_webhook,
)
from shipnav_dagster.sandbox.state import PACIFIC, SandboxWorld, ShipStationState, ShipStationV2State

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

LABEL_STATUSES = ("processing", "completed", "error", "voided")
SHIPMENT_STATUSES = ("pending", "processing", "label_purchased", "cancelled")
SORT_DIRS = ("asc", "desc")
VOIDED_MESSAGE = "Request for refund submitted. This label has been voided."
# Carriers connected to the sandbox account (POST /v2/fulfillments refuses others), and the name
# a fulfillment shows for each (fulfillment_carrier_friendly_name).
CARRIER_NAMES = {
    "ups": "UPS",
    "fedex": "FedEx",
    "usps": "USPS",
    "stamps_com": "USPS",
    "dhl_express": "DHL Express",
    "ontrac": "OnTrac",
}


def _world(request: Request) -> SandboxWorld:
    return request.app.state.world


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _descending(query: Query) -> bool:
    # sort_dir defaults to desc (the spec's sort_dir_query_param default).
    return (query.choice("sort_dir", SORT_DIRS) or "desc") == "desc"


def _path_id(request: Request, name: str) -> str:
    value = request.path_params[name]
    if not is_se_id(value):
        raise invalid_value(f"{name} must be an id like se-123456; got '{value}'.")
    return value


def _id_is(wanted: str | None, read: Callable[[Record], str | None]) -> Predicate | None:
    return None if wanted is None else (lambda r: read(r) == wanted)


def _text_is(wanted: str | None, read: Callable[[Record], object]) -> Predicate | None:
    if wanted is None:
        return None
    lowered = wanted.lower()
    return lambda r: str(read(r) or "").lower() == lowered


def _contains(wanted: str | None, read: Callable[[Record], object]) -> Predicate | None:
    if wanted is None:
        return None
    lowered = wanted.lower()
    return lambda r: lowered in str(read(r) or "").lower()


def _between(
    start: datetime | None, end: datetime | None, read: Callable[[Record], datetime | None]
) -> list[Predicate]:
    """Inclusive bounds ("on or after" / "on or before"); a record without the value never matches."""
    out: list[Predicate] = []
    if start is not None:
        out.append(lambda r: (v := read(r)) is not None and v >= start)
    if end is not None:
        out.append(lambda r: (v := read(r)) is not None and v <= end)
    return out


def _nothing(given: str | None) -> Predicate | None:
    """A filter on something the sandbox never has (rates, pickups, sales orders): no match."""
    return None if given is None else (lambda _r: False)


def _select(records: Mapping[int, Record], predicates: list[Predicate | None]) -> list[Record]:
    active = [p for p in predicates if p is not None]
    return [r for r in records.values() if r is not None and all(p(r) for p in active)]


def _sid(field: str) -> Callable[[Record], str | None]:
    def read(record: Record) -> str | None:
        value = record.get(field)
        return se_id(value) if isinstance(value, int) else None

    return read


def _store_of(record: Record) -> int | None:
    return (record.get("advancedOptions") or {}).get("storeId")


# ---------------------------------------------------------------------------------------------
# Labels (V1 shipments)


async def list_labels(request: Request) -> Response:
    world = _world(request)
    q = Query(request)
    status = q.choice("label_status", LABEL_STATUSES)
    sort_field = q.choice("sort_by", ("modified_at", "created_at")) or "created_at"
    descending = _descending(q)
    predicates: list[Predicate | None] = [
        None if status is None else (lambda r: convert.label_status(r) == status),
        _text_is(q.text("service_code"), lambda r: r.get("serviceCode")),
        _id_is(q.se_id("carrier_id"), lambda r: carrier_id_for(r.get("carrierCode"))),
        _text_is(q.text("tracking_number"), lambda r: r.get("trackingNumber")),
        _id_is(q.se_id("batch_id"), label_batch_id),
        _nothing(q.se_id("rate_id")),
        _id_is(q.se_id("shipment_id"), _sid("orderId")),
        _id_is(q.se_id("warehouse_id"), _sid("warehouseId")),
        *_between(
            q.instant("created_at_start"),
            q.instant("created_at_end"),
            lambda r: convert.pacific_instant(r.get("createDate")),
        ),
    ]
    key = convert.label_modified if sort_field == "modified_at" else _created
    base = _base_url(request)
    with world.lock:
        state = world.shipstation
        page, size = q.paging(state.v2.max_page_size)
        rows = sort_by(_select(state.shipments, predicates), key, lambda r: r["shipmentId"], descending)
        return JSONResponse(envelope(request, "labels", rows, page, size, lambda r: convert.label(r, base)))


def _created(record: Record) -> datetime | None:
    return convert.pacific_instant(record.get("createDate"))


def _modified(record: Record) -> datetime | None:
    return convert.pacific_instant(record.get("modifyDate"))


def _label_record(state: ShipStationState, label_id: str) -> Record | None:
    number = number_of(label_id)
    return None if number is None else state.shipments.get(number)


async def get_label(request: Request) -> Response:
    world = _world(request)
    label_id = _path_id(request, "label_id")
    with world.lock:
        record = _label_record(world.shipstation, label_id)
        if record is None:
            # The spec gives this 404 an empty body (empty_response_body), not the error body.
            return Response(status_code=404, media_type="application/json")
        return JSONResponse(convert.label(record, _base_url(request)))


async def void_label(request: Request) -> Response:
    """``PUT /v2/labels/{label_id}/void``: ``{approved, message[, reason_code]}``."""
    world = _world(request)
    label_id = _path_id(request, "label_id")
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
        # As in ShipStation, the shipment goes back to pending when nothing live is left.
        scenario.void_label(world, record["shipmentId"])
        return JSONResponse({"approved": True, "message": VOIDED_MESSAGE})


# ---------------------------------------------------------------------------------------------
# Shipments (V1 orders)


def _shipment_batches(state: ShipStationState, batch_id: str) -> set[int]:
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
    world = _world(request)
    q = Query(request)
    status = q.choice("shipment_status", SHIPMENT_STATUSES)
    sort_field = q.choice("sort_by", ("modified_at", "created_at")) or "created_at"
    descending = _descending(q)
    batch_id = q.se_id("batch_id")
    orders = world.shipstation.orders
    # Read every declared parameter first, so a malformed one is refused whatever else is given.
    dated = [
        None if status is None else (lambda r: convert.shipment_status(r) == status),
        *_between(q.instant("created_at_start"), q.instant("created_at_end"), _created),
        *_between(
            q.instant("modified_at_start"),
            q.instant("modified_at_end"),
            _modified,
        ),
    ]
    others: list[Predicate | None] = [
        _nothing(q.text("pickup_id")),
        _nothing(q.text("sales_order_id")),
        _text_is(q.text("shipment_number"), lambda r: convert.shipment_number(r, orders)),
        _contains(q.text("ship_to_name"), lambda r: (r.get("shipTo") or {}).get("name")),
        _item_keyword(q.text("item_keyword")),
        *_between(
            q.instant("payment_date_start"),
            q.instant("payment_date_end"),
            lambda r: convert.pacific_instant(r.get("paymentDate")),
        ),
        _id_is(q.se_id("store_id"), lambda r: _sid("storeId")(r.get("advancedOptions") or {})),
        _text_is(q.text("external_shipment_id"), lambda r: r.get("orderKey")),
    ]
    key = _modified if sort_field == "modified_at" else _created
    with world.lock:
        state = world.shipstation
        page, size = q.paging(state.v2.max_page_size)
        if batch_id is not None:
            # Filtering by batch_id silently ignores the status and date filters
            # (https://docs.shipstation.com/list-shipments).
            in_batch = _shipment_batches(state, batch_id)
            predicates = [lambda r: r["orderId"] in in_batch, *others]
        else:
            predicates = [*dated, *others]
        rows = sort_by(_select(state.orders, predicates), key, lambda r: r["orderId"], descending)
        render = functools.partial(convert.shipment, orders=orders)
        body = envelope(request, "shipments", rows, page, size, render, pages_minimum=1)
        return JSONResponse(body)


async def get_shipment(request: Request) -> Response:
    world = _world(request)
    shipment_id = _path_id(request, "shipment_id")
    number = number_of(shipment_id)
    with world.lock:
        order = None if number is None else world.shipstation.orders.get(number)
        if order is None:
            raise not_found(f"shipment_id {shipment_id} was not found.")
        return JSONResponse(convert.shipment(order, world.shipstation.orders))


async def get_shipment_by_external_id(request: Request) -> Response:
    world = _world(request)
    external = request.path_params["external_shipment_id"]
    with world.lock:
        found = [o for o in world.shipstation.orders.values() if o.get("orderKey") == external]
        if not found:
            raise not_found(f"No shipment has external_shipment_id '{external}'.")
        return JSONResponse(convert.shipment(found[0], world.shipstation.orders))


# ---------------------------------------------------------------------------------------------
# Fulfillments


async def list_fulfillments(request: Request) -> Response:
    """Filters of docs.shipstation.com/list-fulfillments: note ``create_date_*``, not ``created_at_*``."""
    world = _world(request)
    q = Query(request)
    sort_field = q.choice("sort_by", ("created_at", "modified_at", "shipped_at")) or "created_at"
    descending = _descending(q)
    with world.lock:
        state = world.shipstation
        page, size = q.paging(state.v2.max_page_size)

        def store_of(record: Record) -> str | None:
            store = _store_of(state.orders.get(record.get("orderId"), {}))  # type: ignore[arg-type]
            return se_id(store) if isinstance(store, int) else None

        predicates: list[Predicate | None] = [
            _text_is(q.text("ship_to_name"), lambda r: (r.get("shipTo") or {}).get("name")),
            _text_is(q.text("ship_to_country_code"), lambda r: (r.get("shipTo") or {}).get("country")),
            _text_is(q.text("shipment_number"), lambda r: convert.fulfillment_number(r, state.orders)),
            _text_is(q.text("shipment_id"), _sid("orderId")),
            _text_is(q.text("fulfillment_id"), _sid("fulfillmentId")),
            _nothing(q.text("batch_id")),
            _text_is(q.text("order_source_id"), store_of),
            _text_is(q.text("fulfillment_provider_code"), convert.fulfillment_provider_code),
            _text_is(q.text("tracking_number"), lambda r: r.get("trackingNumber")),
            *_between(
                q.instant("ship_date_start"),
                q.instant("ship_date_end"),
                lambda r: convert.pacific_midnight(r.get("shipDate")),
            ),
            *_between(q.instant("create_date_start"), q.instant("create_date_end"), _created),
        ]
        keys: dict[str, Callable[[Record], datetime | None]] = {
            "created_at": _created,
            "modified_at": convert.fulfillment_modified,
            "shipped_at": lambda r: convert.pacific_midnight(r.get("shipDate")),
        }
        selected = _select(state.fulfillments, predicates)
        rows = sort_by(selected, keys[sort_field], lambda r: r["fulfillmentId"], descending)
        render = functools.partial(convert.fulfillment, orders=state.orders)
        return JSONResponse(envelope(request, "fulfillments", rows, page, size, render))


async def create_fulfillments(request: Request) -> Response:
    """Mark shipments shipped with tracking; partial success, 200 with ``has_errors``.

    https://docs.shipstation.com/create-fulfillments: each item needs an existing ``shipment_id``
    not yet fulfilled, a ``tracking_number`` and a ``carrier_code`` of a connected carrier;
    ``ship_date`` defaults to today. A malformed request is refused as a whole (400); an item
    that cannot be fulfilled gets its ``error_message`` while the others go through.
    """
    world = _world(request)
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


# ---------------------------------------------------------------------------------------------
# The gate and the operator endpoints


def authenticate(v2: ShipStationV2State, headers: Mapping[str, str]) -> str | None:
    """The rate-limit bucket of a valid ``API-Key`` header (header names are case-insensitive)."""
    key = headers.get("api-key", "")
    if not key or not hmac.compare_digest(key.encode(), v2.api_key.encode()):
        return None
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _unauthorized(headers: Mapping[str, str]) -> Response:
    if not headers.get("api-key") and headers.get("authorization", "").lower().startswith("basic "):
        message = (
            "This is the ShipStation API v2: it authenticates with an API-Key header. "
            "V1 Basic credentials (key and secret) are not accepted here."
        )
    elif not headers.get("api-key"):
        message = "The API-Key header is missing."
    else:
        message = "The API key is invalid."
    return error_response(401, "security", "unauthorized", message)


def _too_many_requests() -> Response:
    return error_response(
        429, "system", "rate_limit_exceeded", "You have exceeded the rate limit. Wait Retry-After seconds."
    )


def _failure(status: int) -> Response:
    gateway = gateway_response(status)
    if gateway is not None:
        return gateway
    if status >= 500:
        # The spec's ServerError response has an empty body.
        return Response(status_code=status, media_type="application/json")
    return error_response(status, "system", "unspecified", "The request could not be processed.")


def _rate_headers(rate: RateStatus) -> dict[str, str]:
    # V2 documents only Retry-After (seconds), on 429s.
    return {} if rate.allowed else {"Retry-After": str(rate.reset)}


def _surface(world: SandboxWorld) -> ShipStationV2State:
    return world.shipstation.v2


GATE_POLICY = GatePolicy(
    surface=_surface,
    authenticate=authenticate,  # type: ignore[arg-type]
    unauthorized=_unauthorized,
    too_many_requests=_too_many_requests,
    failure=_failure,
    rate_headers=_rate_headers,
    drop_body=b'{"labels": [{"label_id',
)


def _record_counts(world: SandboxWorld) -> dict[str, int]:
    state = world.shipstation
    return {
        "shipments": len(state.orders),
        "labels": len(state.shipments),
        "fulfillments": len(state.fulfillments),
        "webhooks": len(state.v2.webhooks),
        "pending_notifications": len(state.v2.outbox),
    }


ADMIN = AdminSpec(
    surface=_surface,
    config_fields={
        "rate_limit_per_minute": as_int,
        "rate_window_seconds": as_float,
        "max_page_size": as_optional_int,
    },
    records=_record_counts,
)


async def admin_deliver(request: Request) -> Response:
    """Send the queued webhook notifications now; answers what was sent and how it went."""
    world = _world(request)
    results = await run_in_threadpool(deliver_webhooks, world, _base_url(request))
    return JSONResponse({"deliveries": [asdict(r) for r in results]})


async def _v2_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, V2Error)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "validation", "invalid_identifier", f"No resource at {request.url.path}.")
    if exc.status_code == 405:
        response = error_response(
            405, "validation", "unspecified", f"{request.method} is not allowed on {request.url.path}."
        )
        response.headers.update(exc.headers or {})
        return response
    return error_response(exc.status_code, "system", "unspecified", str(exc.detail))


def create_app(world: SandboxWorld) -> Starlette:
    """The ShipStation V2 emulator serving ``world`` (swap ``app.state.world`` to change it)."""
    quiet_deliberate_drops()
    routes = [
        Route("/v2/labels", list_labels, methods=["GET"]),
        Route("/v2/labels/{label_id}", get_label, methods=["GET"]),
        Route("/v2/labels/{label_id}/void", void_label, methods=["PUT"]),
        Route("/v2/shipments", list_shipments, methods=["GET"]),
        Route(
            "/v2/shipments/external_shipment_id/{external_shipment_id}",
            get_shipment_by_external_id,
            methods=["GET"],
        ),
        Route("/v2/shipments/{shipment_id}", get_shipment, methods=["GET"]),
        Route("/v2/fulfillments", list_fulfillments, methods=["GET"]),
        Route("/v2/fulfillments", create_fulfillments, methods=["POST"]),
        Route("/v2/environment/webhooks", list_webhooks, methods=["GET"]),
        Route("/v2/environment/webhooks", create_webhook, methods=["POST"]),
        Route("/v2/environment/webhooks/{webhook_id}", get_webhook, methods=["GET"]),
        Route("/v2/environment/webhooks/{webhook_id}", update_webhook, methods=["PUT"]),
        Route("/v2/environment/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
        *admin_routes(ADMIN),
        Route(f"{ADMIN_PREFIX}webhooks/deliver", admin_deliver, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Gate, policy=GATE_POLICY)],
        exception_handlers={V2Error: _v2_error, HTTPException: _http_error},
    )
    app.state.world = world
    return app
