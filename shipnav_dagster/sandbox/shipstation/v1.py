"""ShipStation V1 emulator (Starlette), built from the public V1 documentation.

It serves the records in ``world.shipstation`` exactly as stored (the JSON the real API returns:
naive Pacific timestamps with 7 fractional digits) and reproduces the documented behaviour a
client must cope with: Basic auth with key/secret, Pacific wall-clock filters with inclusive
bounds, ``page/pages`` envelopes (optionally with the documented ``"pages": 0`` quirk), pageSize
clamped to 500, query parameters bound case-insensitively with unknown ones ignored,
``X-Rate-Limit-*`` headers and 429s per credential pair, ASP.NET Web API 500 bodies, and
injectable faults (latency, failures, throttling, dropped connections).

Every handler reads the world from ``request.app.state.world`` because the test server swaps
worlds between tests; every read or write of the world happens under ``world.lock``.

Operator/bench endpoints live under ``/_sandbox/`` (no auth, not rate limited, not logged):
``POST /_sandbox/faults``, ``POST /_sandbox/config``, ``POST /_sandbox/reset``,
``GET /_sandbox/stats``.
"""

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipnav_dagster.sandbox import scenario
from shipnav_dagster.sandbox.shipstation.common import (
    AdminSpec,
    Gate,
    GatePolicy,
    RateStatus,
    admin_routes,
    as_bool,
    as_float,
    as_int,
    gateway_response,
    quiet_deliberate_drops,
)
from shipnav_dagster.sandbox.state import (
    PACIFIC,
    SandboxWorld,
    ShipStationState,
)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
SELLER_ID = 100_000  # the one emulated ShipStation account
WEBHOOK_EVENTS = (
    "ORDER_NOTIFY",
    "ITEM_ORDER_NOTIFY",
    "SHIP_NOTIFY",
    "ITEM_SHIP_NOTIFY",
    "FULFILLMENT_SHIPPED",
    "FULFILLMENT_REJECTED",
)
ORDER_STATUSES = (
    "awaiting_payment",
    "awaiting_shipment",
    "pending_fulfillment",
    "shipped",
    "on_hold",
    "cancelled",
)
ASPNET_500_BODY = {
    "Message": "An error has occurred.",
    "ExceptionMessage": "Object reference not set to an instance of an object.",
    "ExceptionType": "System.NullReferenceException",
    "StackTrace": None,
}
Record = dict[str, Any]
Predicate = Callable[[Record], bool]


class BadRequest(Exception):
    """A malformed query parameter value or body field: answered 400 with a JSON message."""


# ---------------------------------------------------------------------------------------------
# Query parameters, bound as ASP.NET Web API binds them: names case-insensitively, an empty value
# means "not given" (it binds to null), and a parameter the action does not declare is ignored
# (model binding only looks up the names it needs). Clients rely on that: the Singer taps send
# ``void=False`` to /shipments, which is no documented filter.


class Params:
    def __init__(self, request: Request, allowed: Iterable[str]) -> None:
        canonical = {name.lower(): name for name in allowed}
        self.values: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            name = canonical.get(key.lower())
            if name is not None and value.strip() != "":
                self.values[name] = value.strip()

    def text(self, name: str) -> str | None:
        return self.values.get(name)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"The value '{value}' is not valid for {name}.") from None

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise BadRequest(f"The value '{value}' is not valid for {name}.")

    def wallclock(self, name: str) -> datetime | None:
        value = self.values.get(name)
        return None if value is None else parse_filter_datetime(value, name)

    def day(self, name: str) -> date | None:
        value = self.values.get(name)
        return None if value is None else parse_filter_date(value, name)

    def choice(self, name: str, choices: dict[str, str]) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        chosen = choices.get(value.lower())
        if chosen is None:
            raise BadRequest(
                f"The value '{value}' is not valid for {name}; expected one of {sorted(choices.values())}."
            )
        return chosen


_FILTER_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)


def parse_filter_datetime(value: str, name: str = "value") -> datetime:
    """A filter datetime as naive Pacific wall-clock.

    Documented form: ``yyyy-mm-dd hh:mm:ss`` Pacific; ``T``, fractions and a bare date are also
    accepted. A value with an explicit offset is converted to Pacific wall-clock, as .NET's
    DateTime binding does on a server whose local zone is Pacific (undocumented; SkuVault's
    ShipStation client sends ``createDateStart=2020-01-01T10:00:00-00:00`` and relies on it).
    """
    match = _FILTER_DATETIME.match(value)
    if match is None:
        raise BadRequest(
            f"The value '{value}' is not valid for {name}; expected yyyy-mm-dd hh:mm:ss (Pacific time)."
        )
    try:
        parsed = _naive_from_match(match)
    except ValueError:
        raise BadRequest(f"The value '{value}' is not a valid date/time for {name}.") from None
    offset = match.group(6)
    if offset:
        parsed = _offset_to_pacific(parsed, offset)
    return parsed


def parse_filter_date(value: str, name: str = "value") -> date:
    return parse_filter_datetime(value, name).date()


def _naive_from_match(match: re.Match[str]) -> datetime:
    day = date.fromisoformat(match.group(1))
    fraction = (match.group(5) or "0")[:6].ljust(6, "0")
    return datetime(
        day.year,
        day.month,
        day.day,
        int(match.group(2) or 0),
        int(match.group(3) or 0),
        int(match.group(4) or 0),
        int(fraction),
    )


def _offset_to_pacific(naive: datetime, offset: str) -> datetime:
    if offset == "Z":
        zone: Any = UTC
    else:
        digits = offset[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:])
        zone = timezone((-1 if offset[0] == "-" else 1) * timedelta(minutes=minutes))
    return naive.replace(tzinfo=zone).astimezone(PACIFIC).replace(tzinfo=None)


def record_datetime(value: object) -> datetime | None:
    """A stored (naive Pacific) timestamp as a naive datetime, for comparisons and sorting."""
    if not isinstance(value, str) or not value:
        return None
    match = _FILTER_DATETIME.match(value)
    return _naive_from_match(match) if match else None


def record_date(value: object) -> date | None:
    stamp = record_datetime(value)
    return stamp.date() if stamp else None


# ---------------------------------------------------------------------------------------------
# Filters, sorting and the envelope, shared by the three list endpoints.


def field_value(record: Record, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class Filter:
    """One query parameter and how it selects records."""

    param: str
    path: str
    kind: str  # eq | contains | prefix | int | since | until | day_since | day_until

    def predicate(self, params: Params) -> Predicate | None:
        if self.kind in ("since", "until"):
            return self._time_predicate(params.wallclock(self.param), record_datetime)
        if self.kind in ("day_since", "day_until"):
            return self._time_predicate(params.day(self.param), record_date)
        if self.kind == "int":
            number = params.integer(self.param)
            return None if number is None else lambda r: field_value(r, self.path) == number
        text = params.text(self.param)
        return None if text is None else self._text_predicate(text.lower())

    def _time_predicate(self, bound: Any, convert: Callable[[object], Any]) -> Predicate | None:
        if bound is None:
            return None
        lower = self.kind in ("since", "day_since")

        # Inclusive on both ends ("on or after" / "on or before"); records without the value
        # (e.g. voidDate of a live label) never match a range on it.
        def matches(record: Record) -> bool:
            value = convert(field_value(record, self.path))
            return value is not None and (value >= bound if lower else value <= bound)

        return matches

    def _text_predicate(self, wanted: str) -> Predicate:
        def matches(record: Record) -> bool:
            paths = self.path.split("|")
            values = [str(v).lower() for v in (field_value(record, p) for p in paths) if v is not None]
            if self.kind == "contains":
                return any(wanted in v for v in values)
            if self.kind == "prefix":
                return any(v.startswith(wanted) for v in values)
            return wanted in values

        return matches


def date_range(param_base: str, path: str, day_only: bool = False) -> list[Filter]:
    since, until = ("day_since", "day_until") if day_only else ("since", "until")
    return [Filter(f"{param_base}Start", path, since), Filter(f"{param_base}End", path, until)]


@dataclass(frozen=True)
class ListSpec:
    collection: str
    id_field: str
    filters: tuple[Filter, ...]
    sort_fields: dict[str, str]  # lower-case sortBy value -> record field
    default_sort: str
    extra_params: tuple[str, ...] = ()

    def allowed_params(self) -> list[str]:
        base = ["sortBy", "sortDir", "page", "pageSize", *self.extra_params]
        return base + [f.param for f in self.filters]


SHIPMENTS = ListSpec(
    collection="shipments",
    id_field="shipmentId",
    filters=(
        Filter("recipientName", "shipTo.name", "contains"),
        Filter("recipientCountryCode", "shipTo.country", "eq"),
        Filter("orderNumber", "orderNumber", "eq"),
        Filter("orderId", "orderId", "int"),
        Filter("carrierCode", "carrierCode", "eq"),
        Filter("serviceCode", "serviceCode", "eq"),
        Filter("trackingNumber", "trackingNumber", "eq"),
        Filter("storeId", "advancedOptions.storeId", "int"),
        # Seen in SHIP_NOTIFY resource_urls (shipments?batchId=...); not in the list docs.
        Filter("batchId", "batchNumber", "eq"),
        *date_range("createDate", "createDate"),
        *date_range("shipDate", "shipDate", day_only=True),
        *date_range("voidDate", "voidDate"),
    ),
    sort_fields={"shipdate": "shipDate", "createdate": "createDate"},
    default_sort="createDate",
    extra_params=("includeShipmentItems",),
)
ORDERS = ListSpec(
    collection="orders",
    id_field="orderId",
    filters=(
        Filter("customerName", "billTo.name|shipTo.name|customerUsername", "contains"),
        Filter("orderNumber", "orderNumber", "prefix"),
        Filter("storeId", "advancedOptions.storeId", "int"),
        *date_range("createDate", "createDate"),
        *date_range("modifyDate", "modifyDate"),
        *date_range("orderDate", "orderDate"),
        *date_range("paymentDate", "paymentDate"),
    ),
    sort_fields={"orderdate": "orderDate", "modifydate": "modifyDate", "createdate": "createDate"},
    default_sort="orderId",
    # orderStatus and itemKeyword need their own logic; importBatch appears in ORDER_NOTIFY
    # resource_urls and is accepted without effect (the sandbox has no import batches).
    extra_params=("orderStatus", "itemKeyword", "importBatch"),
)
FULFILLMENTS = ListSpec(
    collection="fulfillments",
    id_field="fulfillmentId",
    filters=(
        Filter("fulfillmentId", "fulfillmentId", "int"),
        Filter("orderId", "orderId", "int"),
        Filter("orderNumber", "orderNumber", "eq"),
        Filter("trackingNumber", "trackingNumber", "eq"),
        Filter("recipientName", "shipTo.name", "contains"),
        *date_range("createDate", "createDate"),
        *date_range("shipDate", "shipDate", day_only=True),
    ),
    sort_fields={"shipdate": "shipDate", "createdate": "createDate"},
    default_sort="createDate",
)


def sort_records(records: list[Record], field: str, id_field: str, descending: bool) -> list[Record]:
    def key(record: Record) -> tuple[Any, ...]:
        value = record.get(field)
        if field == id_field:
            return (value if isinstance(value, int) else -1,)
        stamp = record_datetime(value)
        # Records without the value sort first; the id breaks ties so pages are stable.
        return (stamp is not None, stamp or datetime.min, record.get(id_field) or 0)

    return sorted(records, key=key, reverse=descending)


def page_slice(params: Params) -> tuple[int, int]:
    page = params.integer("page")
    page = 1 if page is None else page
    if page < 1:
        raise BadRequest("page must be 1 or greater.")
    size = params.integer("pageSize")
    # Documented maximum 500; larger values are clamped rather than rejected.
    size = DEFAULT_PAGE_SIZE if size is None else min(max(size, 1), MAX_PAGE_SIZE)
    return page, size


def envelope(state: ShipStationState, spec: ListSpec, records: list[Record], page: int, size: int) -> Record:
    total = len(records)
    start = (page - 1) * size
    pages = math.ceil(total / size) if total else 0
    return {
        spec.collection: records[start : start + size],
        "total": total,
        "page": page,
        "pages": 0 if state.report_zero_pages else pages,
    }


def list_records(state: ShipStationState, spec: ListSpec, params: Params, extra: list[Predicate]) -> Record:
    predicates = [p for p in (f.predicate(params) for f in spec.filters) if p is not None] + extra
    sort_by = params.choice("sortBy", spec.sort_fields) or spec.default_sort
    direction = params.choice("sortDir", {"asc": "ASC", "desc": "DESC"}) or "ASC"
    page, size = page_slice(params)
    source: dict[int, Record] = getattr(state, spec.collection)
    selected = [r for r in source.values() if r is not None and all(p(r) for p in predicates)]
    ordered = sort_records(selected, sort_by, spec.id_field, direction == "DESC")
    return envelope(state, spec, ordered, page, size)


# ---------------------------------------------------------------------------------------------
# Handlers. Each takes the world's lock for the whole read or mutation.


def _world(request: Request) -> SandboxWorld:
    return request.app.state.world


def _message(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


async def list_shipments(request: Request) -> Response:
    world = _world(request)
    params = Params(request, SHIPMENTS.allowed_params())
    with_items = params.boolean("includeShipmentItems", default=False)
    with world.lock:
        body = list_records(world.shipstation, SHIPMENTS, params, [])
        if not with_items:
            body["shipments"] = [{**r, "shipmentItems": None} for r in body["shipments"]]
        return JSONResponse(body)


async def list_orders(request: Request) -> Response:
    world = _world(request)
    params = Params(request, ORDERS.allowed_params())
    extra: list[Predicate] = []
    status = params.choice("orderStatus", {s: s for s in ORDER_STATUSES})
    if status is not None:
        extra.append(lambda r: r.get("orderStatus") == status)
    keyword = params.text("itemKeyword")
    if keyword is not None:
        extra.append(_item_keyword(keyword.lower()))
    with world.lock:
        return JSONResponse(list_records(world.shipstation, ORDERS, params, extra))


def _item_keyword(wanted: str) -> Predicate:
    """itemKeyword searches the items' SKU, description (name) and options."""

    def matches(order: Record) -> bool:
        for item in order.get("items") or []:
            if not isinstance(item, dict):
                continue
            texts = [item.get("sku"), item.get("name")]
            texts += [o.get("value") for o in item.get("options") or [] if isinstance(o, dict)]
            if any(isinstance(t, str) and wanted in t.lower() for t in texts):
                return True
        return False

    return matches


async def get_order(request: Request) -> Response:
    world = _world(request)
    Params(request, ())
    order_id = _path_int(request, "order_id")
    with world.lock:
        order = world.shipstation.orders.get(order_id)
        if order is None:
            return _message(404, f"Order {order_id} not found.")
        return JSONResponse(order)


async def list_fulfillments(request: Request) -> Response:
    world = _world(request)
    params = Params(request, FULFILLMENTS.allowed_params())
    with world.lock:
        return JSONResponse(list_records(world.shipstation, FULFILLMENTS, params, []))


async def list_stores(request: Request) -> Response:
    """GET /stores returns a bare array; inactive stores only with showInactive=true."""
    world = _world(request)
    params = Params(request, ("showInactive", "marketplaceId"))
    show_inactive = params.boolean("showInactive", default=False)
    marketplace = params.integer("marketplaceId")
    with world.lock:
        stores = [
            s
            for s in world.shipstation.stores.values()
            if (show_inactive or s.get("active", True))
            and (marketplace is None or s.get("marketplaceId") == marketplace)
        ]
        return JSONResponse(sorted(stores, key=lambda s: s.get("storeId") or 0))


async def subscribe_webhook(request: Request) -> Response:
    world = _world(request)
    body = await _json_body(request)
    target_url = body.get("target_url")
    event = body.get("event")
    store_id = body.get("store_id")
    if not isinstance(target_url, str) or not target_url.strip():
        raise BadRequest("target_url is required.")
    if event not in WEBHOOK_EVENTS:
        raise BadRequest(f"event must be one of {', '.join(WEBHOOK_EVENTS)}.")
    if store_id is not None and not isinstance(store_id, int):
        raise BadRequest("store_id must be an integer.")
    name = body.get("friendly_name")
    with world.lock:
        hook_id = world.shipstation.next_id()
        world.shipstation.webhooks[hook_id] = {
            "IsLabelAPIHook": False,
            "WebHookID": hook_id,
            "SellerID": SELLER_ID,
            "StoreID": store_id,
            "HookType": event,
            "MessageFormat": "Json",
            "Url": target_url,
            "Name": name if isinstance(name, str) else None,
            "BulkCopyBatchID": None,
            "BulkCopyRecordID": None,
            "Active": True,
            "WebhookLogs": [],
            "Seller": None,
            "Store": None,
        }
    return JSONResponse({"id": hook_id}, status_code=201)


async def list_webhooks(request: Request) -> Response:
    world = _world(request)
    Params(request, ())
    with world.lock:
        hooks = [world.shipstation.webhooks[k] for k in sorted(world.shipstation.webhooks)]
        return JSONResponse({"webhooks": hooks})


async def delete_webhook(request: Request) -> Response:
    world = _world(request)
    hook_id = _path_int(request, "webhook_id")
    with world.lock:
        if world.shipstation.webhooks.pop(hook_id, None) is None:
            return _message(404, f"Webhook {hook_id} not found.")
    return Response(status_code=200)


async def mark_as_shipped(request: Request) -> Response:
    """Emulates the UI/API "Mark as Shipped": order -> shipped, plus a fulfillment record.

    No /shipments record is created (documented: such orders are external shipments).
    """
    world = _world(request)
    body = await _json_body(request)
    order_id = body.get("orderId")
    carrier = body.get("carrierCode")
    if not isinstance(order_id, int):
        raise BadRequest("orderId is required and must be an integer.")
    if not isinstance(carrier, str) or not carrier.strip():
        raise BadRequest("carrierCode is required.")
    ship_day = _body_date(body.get("shipDate"))
    tracking = body.get("trackingNumber")
    with world.lock:
        order = world.shipstation.orders.get(order_id)
        if order is None:
            return _message(404, f"Order {order_id} not found.")
        if order.get("orderStatus") == "cancelled":
            raise BadRequest("Cancelled orders cannot be marked as shipped.")
        # The record shape lives in one place: the scenario helper the seed uses too.
        fulfillment = scenario.mark_shipped(
            world,
            order_id,
            carrier=carrier,
            tracking_number=tracking if isinstance(tracking, str) else None,  # type: ignore[arg-type]
            ship_date=ship_day,
        )
        fulfillment["marketplaceNotified"] = bool(body.get("notifySalesChannel", False))
        return JSONResponse({"orderId": order_id, "orderNumber": order.get("orderNumber")})


async def void_label(request: Request) -> Response:
    world = _world(request)
    body = await _json_body(request)
    shipment_id = body.get("shipmentId")
    if not isinstance(shipment_id, int):
        raise BadRequest("shipmentId is required and must be an integer.")
    with world.lock:
        shipment = world.shipstation.shipments.get(shipment_id)
        if shipment is None:
            return _message(404, f"Shipment {shipment_id} not found.")
        if shipment.get("voided"):
            return JSONResponse({"approved": False, "message": "Label has already been voided."})
        # As in ShipStation, the order goes back to awaiting_shipment when nothing live is left.
        scenario.void_label(world, shipment_id)
        return JSONResponse({"approved": True, "message": "Label voided successfully"})


def _path_int(request: Request, name: str) -> int:
    value = request.path_params[name]
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"The value '{value}' is not valid for {name}.") from None


async def _json_body(request: Request) -> Record:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _body_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("shipDate must be a date string (yyyy-mm-dd).")
    return parse_filter_date(value, "shipDate")


# ---------------------------------------------------------------------------------------------
# The gate (auth, rate limit, faults, log) and the operator endpoints, as V1 answers them.


def credential_bucket(state: ShipStationState, headers: Mapping[str, str]) -> str | None:
    """The rate-limit bucket of valid Basic credentials, or None when they are wrong/missing."""
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, sep, secret = decoded.partition(":")
    expected_key, expected_secret = state.api_key, state.api_secret
    ok_key = hmac.compare_digest(key.encode(), expected_key.encode())
    ok_secret = hmac.compare_digest(secret.encode(), expected_secret.encode())
    if not (sep and ok_key and ok_secret):
        return None
    return hashlib.sha256(f"{key}:{secret}".encode()).hexdigest()[:16]


def rate_headers(rate: RateStatus) -> dict[str, str]:
    """V1 reports its budget on every response (``X-Rate-Limit-Reset`` in seconds)."""
    if not rate.limit and rate.allowed:
        return {}
    return {
        "X-Rate-Limit-Limit": str(rate.limit),
        "X-Rate-Limit-Remaining": str(rate.remaining),
        "X-Rate-Limit-Reset": str(rate.reset),
    }


def failure_response(status: int) -> Response:
    gateway = gateway_response(status)
    if gateway is not None:
        return gateway
    if status >= 500:
        return JSONResponse(ASPNET_500_BODY, status_code=status)
    return _message(status, "The request could not be processed.")


def _unauthorized(headers: Mapping[str, str]) -> Response:
    response = _message(401, "Authorization has been denied for this request.")
    response.headers["WWW-Authenticate"] = 'Basic realm="ShipStation"'
    return response


def _surface(world: SandboxWorld) -> ShipStationState:
    return world.shipstation


GATE_POLICY = GatePolicy(
    surface=_surface,
    authenticate=credential_bucket,  # type: ignore[arg-type]
    unauthorized=_unauthorized,
    too_many_requests=lambda: _message(429, "Too Many Requests"),
    failure=failure_response,
    rate_headers=rate_headers,
    drop_body=b'{"shipments": [{"shipmentId',
)


def _record_counts(world: SandboxWorld) -> dict[str, int]:
    state = world.shipstation
    return {
        "orders": len(state.orders),
        "shipments": len(state.shipments),
        "fulfillments": len(state.fulfillments),
        "stores": len(state.stores),
        "webhooks": len(state.webhooks),
    }


ADMIN = AdminSpec(
    surface=_surface,
    config_fields={
        "rate_limit_per_minute": as_int,
        "rate_window_seconds": as_float,
        # Reproduce the documented envelope quirk "pages": 0 with a non-zero total.
        "report_zero_pages": as_bool,
    },
    records=_record_counts,
)


# ---------------------------------------------------------------------------------------------


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _message(400, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: "No HTTP resource was found that matches the request URI.",
        405: f"The requested resource does not support http method '{request.method}'.",
    }
    response = _message(exc.status_code, messages.get(exc.status_code, str(exc.detail)))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def create_app(world: SandboxWorld) -> Starlette:
    """The ShipStation V1 emulator serving ``world`` (swap ``app.state.world`` to change it)."""
    quiet_deliberate_drops()
    routes = [
        Route("/shipments", list_shipments, methods=["GET"]),
        Route("/shipments/voidlabel", void_label, methods=["POST"]),
        Route("/orders", list_orders, methods=["GET"]),
        Route("/orders/markasshipped", mark_as_shipped, methods=["POST"]),
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/fulfillments", list_fulfillments, methods=["GET"]),
        Route("/stores", list_stores, methods=["GET"]),
        Route("/webhooks", list_webhooks, methods=["GET"]),
        Route("/webhooks/subscribe", subscribe_webhook, methods=["POST"]),
        Route("/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
        *admin_routes(ADMIN),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Gate, policy=GATE_POLICY)],
        exception_handlers={BadRequest: _bad_request, HTTPException: _http_error},
    )
    app.state.world = world
    return app
