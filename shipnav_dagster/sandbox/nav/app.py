"""Emulator of NAV 2018 / Business Central OData V4 page web services and an Entra token endpoint.

Built to the documented behaviour collected in reference/nav.md, not to what shipnav's client
does: weak ETags and `If-Match` rules (§1.6), server-driven paging (§1.5), the filter subset and
the "no OR across fields" limitation (§1.4), status-locked fields, table relations and string
lengths (§2), the error body shape and codes (§6), client-credentials tokens and Basic
(NavUserPassword) auth (§4). Faults (latency, 5xx, 429, dropped connections, concurrent edits,
token expiry) are switched on per world so tests and benchmarks can ask for them.

Every handler reads ``request.app.state.world`` (the server swaps worlds between tests) and holds
``world.lock`` while it touches state; only the injected latency is awaited outside the lock, so
concurrent requests really overlap.
"""

import asyncio
import base64
import binascii
import copy
import dataclasses
import json
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipnav_dagster.sandbox.nav import schema
from shipnav_dagster.sandbox.nav.odata_filter import (
    FilterError,
    Literal,
    check_filter,
    evaluate,
    parse_filter,
    parse_key_predicate,
    parse_orderby,
)
from shipnav_dagster.sandbox.nav.schema import (
    LINES_SEGMENT,
    POSTED_SHIPMENT,
    SALES_LINE,
    SALES_ORDER,
    EntityDef,
)
from shipnav_dagster.sandbox.state import SANDBOX_NAV_COMPANY, SANDBOX_NAV_TENANT, NavState, SandboxWorld

JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
ERROR_TYPE = "application/json; charset=utf-8"
ODATA_VERSION = {"OData-Version": "4.0"}
SUPPORTED_OPTIONS = {
    "$filter",
    "$select",
    "$top",
    "$skip",
    "$orderby",
    "$count",
    "$skiptoken",
    "$expand",
    "$schemaversion",
    "$format",
}
AGENT = "Shipping_Agent_Code"
SERVICE = "Shipping_Agent_Service_Code"
PRECONDITION_MESSAGE = (
    "Could not validate the client concurrency token required by the service. "
    "Please provide a valid token in the client request."
)


# --- errors ----------------------------------------------------------------------------------


class ODataFailure(Exception):
    """An OData error response: ``{"error":{"code":...,"message":"...  CorrelationId:  <guid>."}}``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return odata_error(self.status, self.code, self.message, self.headers)


def odata_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    text = message.rstrip(".")
    body = {"error": {"code": code, "message": f"{text}.  CorrelationId:  {uuid.uuid4()}."}}
    return Response(
        json.dumps(body),
        status_code=status,
        media_type=ERROR_TYPE,
        headers={**ODATA_VERSION, **(headers or {})},
    )


def _bad_syntax(detail: str = "") -> ODataFailure:
    return ODataFailure(400, "BadRequest_NotFound", "Bad Request - Error in query syntax" + detail)


def _not_found_resource(url: str) -> ODataFailure:
    return ODataFailure(
        404, "BadRequest_ResourceNotFound", f"No HTTP resource was found that matches the request URI '{url}'"
    )


# --- JSON ------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _native(number: Decimal) -> int | float:
    """Store numbers as plain JSON numbers, like the seed does, so arithmetic on records works."""
    return int(number) if number == number.to_integral_value() else float(number)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = json.dumps(body, default=_json_default, ensure_ascii=False).encode("utf-8")
    return Response(
        content, status_code=status, media_type=JSON_TYPE, headers={**ODATA_VERSION, **(headers or {})}
    )


# --- traffic: in-flight tracking, logging, faults --------------------------------------------


@dataclass
class _FaultPlan:
    latency: float = 0.0
    drop: bool = False
    response: Response | None = None


@dataclass
class _RateWindow:
    nav: NavState
    stamps: deque[float] = field(default_factory=deque)


class TrafficMiddleware:
    """Counts requests in flight, logs every request, and injects the world's NAV faults.

    Pure ASGI because a dropped connection has to send a response start and then close without
    the body, which no Starlette response object can do.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._windows: dict[int, _RateWindow] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        world: SandboxWorld = scope["app"].state.world
        nav = world.nav
        odata = "/odatav4" in scope["path"].lower()
        with world.lock:
            nav.in_flight += 1
            nav.max_in_flight = max(nav.max_in_flight, nav.in_flight)
            plan = self._plan(nav, scope["path"]) if odata else _FaultPlan()
        status = 0
        try:
            if plan.latency > 0:
                await asyncio.sleep(plan.latency)  # outside the lock: concurrent requests overlap
            if plan.response is not None:
                status = plan.response.status_code
                await plan.response(scope, receive, send)
            elif plan.drop:
                await self._run_then_drop(scope, receive, send)  # status 0: no response arrived
            else:
                status = await self._forward(scope, receive, send)
        finally:
            with world.lock:
                nav.in_flight -= 1
                query = unquote(scope.get("query_string", b"").decode("latin-1"))
                nav.log.add(scope["method"], scope["path"], query, status)

    def _plan(self, nav: NavState, path: str) -> _FaultPlan:
        faults = nav.faults
        faults.requests_seen += 1
        plan = _FaultPlan(latency=max(0.0, faults.latency_ms) / 1000.0)
        targeted = not faults.fail_paths or any(part in path for part in faults.fail_paths)
        retry_after = {"Retry-After": str(faults.retry_after_seconds)}
        if targeted and faults.take("drop_next"):
            plan.drop = True
        elif (targeted and faults.take("throttle_next")) or self._over_rate(nav):
            plan.response = _throttled(retry_after)
        elif targeted and faults.take("fail_next"):
            plan.response = _failure(faults.fail_status, retry_after)
        return plan

    def _over_rate(self, nav: NavState) -> bool:
        limit = nav.faults.rate_limit_per_minute
        if limit <= 0:
            return False
        window = self._windows.get(id(nav))
        if window is None or window.nav is not nav:
            window = self._windows[id(nav)] = _RateWindow(nav)
        now = time.monotonic()
        while window.stamps and now - window.stamps[0] >= 60.0:
            window.stamps.popleft()
        if len(window.stamps) >= limit:
            return True
        window.stamps.append(now)
        return False

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> int:
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)
        return status

    async def _run_then_drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the request take effect (a PATCH is applied), then lose the response mid-way."""
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        start = next(m for m in captured if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(max(len(body), 1)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        # Returning without the body makes uvicorn close the connection: the client sees a
        # truncated response, exactly like a connection reset by a proxy.


def _throttled(headers: Mapping[str, str]) -> Response:
    return odata_error(
        429, "TooManyRequests", "Too Many Requests - the request rate limit was reached; retry later", headers
    )


def _failure(status: int, retry_after: Mapping[str, str]) -> Response:
    if status in (502, 503, 504):
        # Retry-After is documented for 502 and 503 (include-http-status-error-codes.md).
        return odata_error(status, "Unavailable", "The service is temporarily unavailable", retry_after)
    return odata_error(status, "Unknown", "An unexpected error occurred on the server")


# --- authentication --------------------------------------------------------------------------


def _basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        raw = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode("utf-8")
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


def _authorized(nav: NavState, header: str) -> bool:
    scheme = header.split(" ", 1)[0].lower()
    if scheme == "bearer":
        token = header.split(" ", 1)[1].strip() if " " in header else ""
        expiry = nav.tokens.get(token)
        return nav.app_registered and expiry is not None and expiry > time.time()
    if scheme == "basic":
        creds = _basic_credentials(header)
        return creds is not None and secrets.compare_digest(
            f"{creds[0]}\0{creds[1]}".encode(), f"{nav.username}\0{nav.password}".encode()
        )
    return False


def _unauthorized(base_url: str) -> ODataFailure:
    challenge = f'Bearer authorization_uri="{base_url}/{SANDBOX_NAV_TENANT}/oauth2/authorize", Basic realm=""'
    return ODataFailure(
        401,
        "Authentication_InvalidCredentials",
        "The server has rejected the client credentials",
        {"WWW-Authenticate": challenge},
    )


def _aad_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} "
        f"Correlation ID: {uuid.uuid4()} Timestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
    return JSONResponse(body, status_code=status)


def _token_client(form: Mapping[str, str], header: str) -> tuple[str, str]:
    """client_secret_post or client_secret_basic, as Entra accepts both."""
    if header.lower().startswith("basic "):
        creds = _basic_credentials(header)
        if creds is not None:
            return unquote(creds[0]), unquote(creds[1])
    return form.get("client_id", ""), form.get("client_secret", "")


async def token_endpoint(request: Request) -> Response:
    """POST {base}/{tenant}/oauth2/v2.0/token: OAuth 2.0 client credentials, Entra style."""
    world: SandboxWorld = request.app.state.world
    nav = world.nav
    if request.path_params["tenant"] != SANDBOX_NAV_TENANT:
        tenant = request.path_params["tenant"]
        return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    client_id, client_secret = _token_client(form, request.headers.get("authorization", ""))
    for name in ("grant_type", "scope"):
        if not form.get(name):
            return _aad_error(
                400,
                "invalid_request",
                900144,
                f"The request body must contain the following parameter: '{name}'.",
            )
    if form["grant_type"] != "client_credentials":
        return _aad_error(
            400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
        )
    if not form["scope"].endswith("/.default"):
        return _aad_error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {form['scope']} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier.",
        )
    with world.lock:
        if client_id != nav.client_id:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not secrets.compare_digest(client_secret.encode(), nav.client_secret.encode()):
            return _aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        token = secrets.token_urlsafe(48)
        nav.tokens[token] = time.time() + nav.token_ttl_seconds
        ttl = nav.token_ttl_seconds
    return JSONResponse(
        {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


# --- URL parsing -----------------------------------------------------------------------------


@dataclass
class Segment:
    name: str
    keys: list[tuple[str | None, Literal]] | None  # None: no key predicate


@dataclass
class Target:
    root_url: str  # the service root as the client addressed it (absolute)
    request_url: str  # the absolute URL without the query string, as sent
    segments: list[Segment]
    text: str  # decoded resource path, for @odata.context


_SEGMENT = re.compile(r"([A-Za-z_$][A-Za-z0-9_]*)(?:\((.*)\))?", re.DOTALL)


def _parse_segment(raw: str) -> Segment:
    text = unquote(raw, encoding="utf-8", errors="strict")
    match = _SEGMENT.fullmatch(text)
    if match is None:
        raise _bad_syntax()
    keys = None
    if match.group(2) is not None:
        try:
            keys = parse_key_predicate(match.group(2))
        except FilterError as exc:
            raise _bad_syntax() from exc
    return Segment(match.group(1), keys)


def _company(segment: Segment | None, params: list[tuple[str, str]]) -> str:
    if segment is not None and segment.keys:
        literal = segment.keys[0][1]
        if len(segment.keys) == 1 and segment.keys[0][0] in (None, "Name") and literal.kind == "string":
            return str(literal.value)
        raise _bad_syntax()
    named = [value for key, value in params if key == "company"]
    if named:
        return named[0]
    raise ODataFailure(
        400,
        "Internal_CompanyNotFound",
        "Cannot process the request because the default company cannot be found. You can specify a "
        "default company in the service configuration file, or specify one for each tenant, or you "
        "can add a query string in the form of 'company=[name]'",
    )


def parse_target(scope: Scope, headers: Mapping[str, str], params: list[tuple[str, str]]) -> Target:
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    parts = raw_path.split("/")
    lowered = [p.lower() for p in parts]
    if "odatav4" not in lowered:
        raise _not_found_resource(raw_path)
    idx = lowered.index("odatav4")
    root_parts, rest = parts[: idx + 1], [p for p in parts[idx + 1 :] if p != ""]
    company_segment = None
    if rest and unquote(rest[0]).startswith("Company("):
        company_segment = _parse_segment(rest[0])
        root_parts.append(rest[0])
        rest = rest[1:]
    base = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
    segments = [_parse_segment(p) for p in rest]
    is_metadata = len(segments) == 1 and segments[0].name == "$metadata"
    if not is_metadata and _company(company_segment, params) != SANDBOX_NAV_COMPANY:
        name = _company(company_segment, params)
        raise ODataFailure(400, "Internal_CompanyNotFound", f"Cannot find the company '{name}'")
    return Target(
        root_url=base + "/".join(root_parts),
        request_url=base + raw_path,
        segments=segments,
        text="/".join(unquote(p) for p in rest),
    )


# --- resolving a path to records -------------------------------------------------------------


@dataclass
class Resolved:
    kind: str  # service | metadata | collection | entity | count
    entity: EntityDef | None = None
    records: list[dict[str, Any]] = field(default_factory=list)  # collection members
    record: dict[str, Any] | None = None  # the addressed entity
    order: dict[str, Any] | None = None  # the parent order of a line (or the order itself)
    context: str = ""  # @odata.context fragment


def _named_keys(segment: Segment, entity: EntityDef) -> dict[str, Literal]:
    keys = segment.keys or []
    if len(entity.keys) == 1 and len(keys) == 1 and keys[0][0] is None:
        return {entity.keys[0]: keys[0][1]}
    named = {name: lit for name, lit in keys if name is not None}
    if len(named) != len(keys) or set(named) != set(entity.keys):
        raise ODataFailure(
            400,
            "BadRequest_NotFound",
            f"Bad Request - Error in query syntax: the key of {entity.name} is ({', '.join(entity.keys)})",
        )
    return named


def _key_values(segment: Segment, entity: EntityDef) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, lit in _named_keys(segment, entity).items():
        expected = "int" if entity.prop(name).edm == "Edm.Int32" else "string"  # type: ignore[union-attr]
        if lit.kind != expected:
            raise _bad_syntax(f": the key value of {name} has the wrong type")
        values[name] = lit.value
    return values


def _missing_record(entity: EntityDef, keys: Mapping[str, Any]) -> ODataFailure:
    ident = ",".join(
        f"{entity.key_captions[k]}={v!r}" if isinstance(v, str) else f"{entity.key_captions[k]}={v}"
        for k, v in keys.items()
    )
    return ODataFailure(
        404,
        "Internal_RecordNotFound",
        f"The {entity.table} does not exist. Identification fields and values: {ident}",
    )


def _orders(nav: NavState) -> list[dict[str, Any]]:
    # Page 42's SourceTableView: Document Type = Order.
    return [r for r in nav.sales_orders.values() if r.get("Document_Type", "Order") == "Order"]


def _order(nav: NavState, segment: Segment) -> dict[str, Any]:
    keys = _key_values(segment, SALES_ORDER)
    record = nav.sales_orders.get(keys["No"])
    if keys["Document_Type"] != "Order" or record is None or record.get("Document_Type", "Order") != "Order":
        raise _missing_record(SALES_ORDER, keys)
    return record


def _line(nav: NavState, order: dict[str, Any], segment: Segment) -> dict[str, Any]:
    keys = _key_values(segment, SALES_LINE)
    if keys["Document_Type"] == "Order" and keys["Document_No"] == order["No"]:
        for line in nav.sales_lines.get(order["No"], []):
            if line.get("Line_No") == keys["Line_No"]:
                return line
    raise _missing_record(SALES_LINE, keys)


def _posted(nav: NavState, segment: Segment) -> dict[str, Any]:
    keys = _key_values(segment, POSTED_SHIPMENT)
    record = nav.posted_shipments.get(keys["No"])
    if record is None:
        raise _missing_record(POSTED_SHIPMENT, keys)
    return record


def resolve(nav: NavState, target: Target) -> Resolved:
    segs = target.segments
    if not segs:
        return Resolved("service")
    if len(segs) == 1 and segs[0].name == "$metadata" and segs[0].keys is None:
        return Resolved("metadata")
    head = segs[0]
    if head.name not in schema.SERVICES or head.name not in nav.published:
        raise _not_found_resource(target.request_url)
    entity = schema.SERVICES[head.name]
    count = segs[-1].name == "$count" and segs[-1].keys is None
    body = segs[:-1] if count else segs
    resolved = _resolve_body(nav, entity, body, target)
    if count:
        if resolved.kind != "collection":
            raise _not_found_resource(target.request_url)
        resolved.kind = "count"
    return resolved


def _resolve_body(nav: NavState, entity: EntityDef, segs: list[Segment], target: Target) -> Resolved:
    head = segs[0]
    if len(segs) == 1 and head.keys is None:
        records = _orders(nav) if entity is SALES_ORDER else list(nav.posted_shipments.values())
        return Resolved("collection", entity, records=records, context=entity.name)
    if head.keys is None or len(segs) > 2:
        raise _not_found_resource(target.request_url)
    if entity is POSTED_SHIPMENT:
        if len(segs) != 1:
            raise _not_found_resource(target.request_url)
        return Resolved("entity", entity, record=_posted(nav, head), context=f"{entity.name}/$entity")
    order = _order(nav, head)
    if len(segs) == 1:
        return Resolved("entity", entity, record=order, order=order, context=f"{entity.name}/$entity")
    tail = segs[1]
    if tail.name != LINES_SEGMENT:
        raise _not_found_resource(target.request_url)
    order_path = target.text.split("/", 1)[0]
    if tail.keys is None:
        lines = list(nav.sales_lines.get(order["No"], []))
        return Resolved(
            "collection", SALES_LINE, records=lines, order=order, context=f"{order_path}/{tail.name}"
        )
    line = _line(nav, order, tail)
    return Resolved(
        "entity", SALES_LINE, record=line, order=order, context=f"{order_path}/{tail.name}/$entity"
    )


# --- serialization ---------------------------------------------------------------------------


def view(entity: EntityDef, record: Mapping[str, Any]) -> dict[str, Any]:
    """The page's fields of a record, blanks filled the way NAV shows them."""
    result: dict[str, Any] = {}
    for prop in entity.props:
        value = record.get(prop.name)
        if value is None:
            value = schema.default_value(prop)
        elif isinstance(value, date):
            value = value.isoformat()
        result[prop.name] = value
    return result


def serialize(
    entity: EntityDef,
    record: Mapping[str, Any],
    select: list[str] | None,
    expand_lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    full = view(entity, record)
    body: dict[str, Any] = {"@odata.etag": NavState.etag(dict(record))}
    for name in select or [p.name for p in entity.props]:
        body[name] = full[name]
    if expand_lines is not None:
        body[LINES_SEGMENT] = [serialize(SALES_LINE, line, None) for line in expand_lines]
    return body


# --- query options ---------------------------------------------------------------------------


@dataclass
class QueryOptions:
    filter: Any = None
    select: list[str] | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    top: int | None = None
    skip: int = 0
    count: bool = False
    offset: int = 0  # from $skiptoken
    expand_lines: bool = False


def _non_negative(name: str, value: str) -> int:
    if not re.fullmatch(r"\d+", value):
        raise ODataFailure(400, "BadRequest_NotFound", f"Invalid value '{value}' for the {name} query option")
    return int(value)


def _select(value: str, entity: EntityDef) -> list[str] | None:
    names = [part.strip() for part in value.split(",")]
    if "*" in names:
        return None
    for name in names:
        if entity.prop(name) is None:
            raise ODataFailure(
                400,
                "BadRequest_NotFound",
                f"Could not find a property named '{name}' on type 'NAV.{entity.name}'",
            )
    return list(dict.fromkeys(names))


def _skiptoken(value: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value.encode()).decode())
        return int(decoded["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ODataFailure(400, "BadRequest_NotFound", "The skip token is not valid") from exc


def make_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def parse_options(params: list[tuple[str, str]], entity: EntityDef) -> QueryOptions:
    seen: set[str] = set()
    opts = QueryOptions()
    for name, value in params:
        if not name.startswith("$"):
            continue  # company=, tenant= and friends
        if name not in SUPPORTED_OPTIONS:
            raise ODataFailure(400, "BadRequest_NotFound", f"The query parameter '{name}' is not supported")
        if name in seen:
            raise ODataFailure(
                400, "BadRequest_NotFound", f"Query option '{name}' was specified more than once"
            )
        seen.add(name)
        _apply_option(opts, name, value, entity)
    return opts


def _apply_option(opts: QueryOptions, name: str, value: str, entity: EntityDef) -> None:
    try:
        if name == "$filter":
            opts.filter = parse_filter(value)
            check_filter(opts.filter, entity.field_types)
        elif name == "$orderby":
            opts.orderby = parse_orderby(value, entity.field_types)
    except FilterError as exc:
        raise ODataFailure(400, exc.code, exc.message) from exc
    if name == "$select":
        opts.select = _select(value, entity)
    elif name == "$top":
        opts.top = _non_negative(name, value)
    elif name == "$skip":
        opts.skip = _non_negative(name, value)
    elif name == "$count":
        if value not in ("true", "false"):
            raise ODataFailure(400, "BadRequest_NotFound", f"Invalid value '{value}' for $count")
        opts.count = value == "true"
    elif name == "$skiptoken":
        opts.offset = _skiptoken(value)
    elif name == "$expand":
        if entity is not SALES_ORDER or value.strip() != LINES_SEGMENT:
            raise ODataFailure(
                400, "BadRequest_NotFound", f"Could not find a navigation property named '{value}'"
            )
        opts.expand_lines = True


def _matching(
    entity: EntityDef, records: Iterable[dict[str, Any]], opts: QueryOptions
) -> list[dict[str, Any]]:
    fields = entity.field_types
    rows = [(r, view(entity, r)) for r in records]
    if opts.filter is not None:
        rows = [(r, v) for r, v in rows if evaluate(opts.filter, v, fields)]
    rows.sort(key=lambda rv: tuple(rv[1][k] for k in entity.keys))  # NAV returns key order
    for name, descending in reversed(opts.orderby):
        rows.sort(key=_view_field(name), reverse=descending)
    return [r for r, _v in rows]


def _view_field(name: str) -> Callable[[tuple[dict[str, Any], dict[str, Any]]], Any]:
    return lambda row: row[1][name]


def _page_size(nav: NavState, headers: Mapping[str, str]) -> tuple[int, bool]:
    """min(Prefer: odata.maxpagesize, server max); whether the preference was honoured."""
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", headers.get("prefer", ""))
    if match is None or int(match.group(1)) <= 0:
        return nav.max_page_size, False
    return min(int(match.group(1)), nav.max_page_size), True


# --- handlers --------------------------------------------------------------------------------


def service_document(target: Target, nav: NavState) -> Response:
    value = [
        {"name": name, "kind": "EntitySet", "url": name}
        for name in sorted(nav.published)
        if name in schema.SERVICES
    ]
    return _json({"@odata.context": f"{target.root_url}/$metadata", "value": value})


def metadata(nav: NavState) -> Response:
    xml = schema.metadata_xml(nav.published, nav.tracking_max_length)
    return Response(xml, media_type="application/xml; charset=utf-8", headers=ODATA_VERSION)


def get_collection(
    request: Request, world: SandboxWorld, target: Target, res: Resolved, params: list[tuple[str, str]]
) -> Response:
    entity = res.entity
    assert entity is not None
    opts = parse_options(params, entity)
    nav = world.nav
    matching = _matching(entity, res.records, opts)
    total = len(matching)
    matching = matching[opts.skip :]
    if opts.top is not None:
        matching = matching[: opts.top]
    if res.kind == "count":
        return Response(str(total), media_type="text/plain", headers=ODATA_VERSION)
    size, honoured = _page_size(nav, request.headers)
    page = matching[opts.offset : opts.offset + size]
    value = [serialize(entity, r, opts.select, _expansion(nav, r, opts)) for r in page]
    select_ctx = f"({','.join(opts.select)})" if opts.select else ""
    body: dict[str, Any] = {"@odata.context": f"{target.root_url}/$metadata#{res.context}{select_ctx}"}
    if opts.count:
        body["@odata.count"] = total
    body["value"] = value
    if opts.offset + size < len(matching):
        body["@odata.nextLink"] = _next_link(target, params, opts.offset + size)
    headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if honoured else {}
    return _json(body, headers=headers)


def _expansion(nav: NavState, record: dict[str, Any], opts: QueryOptions) -> list[dict[str, Any]] | None:
    return list(nav.sales_lines.get(record["No"], [])) if opts.expand_lines else None


def _next_link(target: Target, params: list[tuple[str, str]], offset: int) -> str:
    kept = [(k, v) for k, v in params if k != "$skiptoken"] + [("$skiptoken", make_skiptoken(offset))]
    return f"{target.request_url}?{urlencode(kept, quote_via=quote, safe='$')}"


def get_entity(world: SandboxWorld, target: Target, res: Resolved, params: list[tuple[str, str]]) -> Response:
    entity, record = res.entity, res.record
    assert entity is not None and record is not None
    opts = parse_options(params, entity)
    if opts.filter is not None or opts.top is not None or opts.orderby:
        raise ODataFailure(
            400, "BadRequest_NotFound", "Query options $filter, $top and $orderby need a collection"
        )
    body = {"@odata.context": f"{target.root_url}/$metadata#{res.context}"}
    body.update(serialize(entity, record, opts.select, _expansion(world.nav, record, opts)))
    return _json(body, headers={"ETag": NavState.etag(record)})


# --- PATCH -----------------------------------------------------------------------------------


_ETAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*')


def check_if_match(header: str | None, record: Mapping[str, Any]) -> None:
    """No If-Match -> 400 BadRequest_InvalidToken; stale -> 409 Request_EntityChanged (§1.6)."""
    if header is None or not header.strip():
        raise ODataFailure(400, "BadRequest_InvalidToken", PRECONDITION_MESSAGE)
    if header.strip() == "*":
        return  # documented: If-Match: * overwrites whatever is there
    tags = []
    for part in header.split(","):
        match = _ETAG.fullmatch(part)
        if match is None:
            raise ODataFailure(400, "BadRequest_InvalidToken", PRECONDITION_MESSAGE)
        tags.append(match.group(1))
    current = _ETAG.fullmatch(NavState.etag(dict(record)))
    assert current is not None
    if current.group(1) not in tags:
        raise ODataFailure(409, "Request_EntityChanged", "Another user has already changed the record")


def _read_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ODataFailure(400, "BadRequest", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ODataFailure(400, "BadRequest", "The request body must be a JSON object")
    return {k: v for k, v in body.items() if not k.startswith("@") and "@odata." not in k}


def _convert(prop: schema.Prop, value: Any, entity: EntityDef) -> Any:
    """JSON value -> stored value, or the 400 the OData layer gives for a wrong type."""
    wrong = ODataFailure(
        400,
        "BadRequest",
        f"Cannot convert the value of property '{prop.name}' of type 'NAV.{entity.name}' to '{prop.edm}'",
    )
    if prop.edm == "Edm.String":
        if not isinstance(value, str):
            raise wrong
        return value.upper() if prop.code else value
    if prop.edm == "Edm.Date":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise wrong
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError as exc:
            raise wrong from exc
    if prop.edm in ("Edm.Decimal", "Edm.Int32"):
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise wrong
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise wrong from exc
        if prop.edm == "Edm.Int32":
            if number != number.to_integral_value():
                raise wrong
            return int(number)
        return _native(number)
    if prop.edm == "Edm.Boolean":
        if not isinstance(value, bool):
            raise wrong
        return value
    raise wrong


def _status_open(order: Mapping[str, Any], prop: schema.Prop) -> None:
    status = order.get("Status", "Open") or "Open"
    if status != "Open":
        raise ODataFailure(
            400,
            "Application_FieldValidationException",
            f"Status must be equal to 'Open'  in Sales Header: Document Type=Order, No.={order['No']}. "
            f"Current value is '{status}'",
        )


def _length(prop: schema.Prop, value: str, nav: NavState) -> None:
    limit = schema.max_length(prop, nav.tracking_max_length)
    if limit is not None and len(value) > limit:
        raise ODataFailure(
            400,
            "Application_StringExceededLength",
            f"The length of the string is {len(value)}, but it must be less than or equal to {limit} "
            f"characters. Value: {value}",
        )


def _relations(entity: EntityDef, row: Mapping[str, Any], changed: set[str], nav: NavState) -> None:
    """Table relations: Shipping Agent (291) and Shipping Agent Services (5790)."""
    agent = row.get(AGENT) or ""
    if AGENT in changed and agent and agent not in nav.shipping_agents:
        raise _relation_error(entity, "Shipping Agent Code", agent, "Shipping Agent")
    service = row.get(SERVICE) or ""
    if SERVICE in changed and service and service not in nav.shipping_agents.get(agent, set()):
        raise _relation_error(entity, "Shipping Agent Service Code", service, "Shipping Agent Services")


def _relation_error(entity: EntityDef, caption: str, value: str, related: str) -> ODataFailure:
    return ODataFailure(
        400,
        "Internal_InvalidTableRelation",
        f"The field {caption} of table {entity.table} contains a value ({value}) that cannot be found in "
        f"the related table ({related})",
    )


def _qty_to_ship(row: Mapping[str, Any], line_key: str) -> None:
    qty = Decimal(str(row.get("Qty_to_Ship") or 0))
    outstanding = Decimal(str(row.get("Quantity") or 0)) - Decimal(str(row.get("Quantity_Shipped") or 0))
    if qty < 0:
        raise ODataFailure(
            400,
            "Application_FieldValidationException",
            f"Qty. to Ship must be positive in Sales Line: {line_key}",
        )
    if qty > outstanding:
        raise ODataFailure(
            400,
            "Application_DialogException",
            f"You cannot ship more than {_json_default(outstanding)} units",
        )


def apply_patch(
    nav: NavState,
    entity: EntityDef,
    record: dict[str, Any],
    order: dict[str, Any] | None,
    body: dict[str, Any],
) -> dict[str, Any]:
    """Validate a PATCH in page-control order on a copy; return the new record (nothing saved yet)."""
    unknown = [name for name in body if entity.prop(name) is None]
    if unknown:
        raise ODataFailure(
            400,
            "BadRequest",
            f"The property '{unknown[0]}' does not exist on type 'NAV.{entity.name}'. Make sure to only use "
            "property names that are defined by the type",
        )
    row = copy.deepcopy(record)
    changed: set[str] = set()
    for prop in entity.props:
        if prop.name not in body:
            continue
        value = _convert(prop, body[prop.name], entity)
        current = view(entity, record)[prop.name]
        if not prop.editable:
            if _same(value, current):
                continue  # echoing an unchanged read-only value is harmless
            raise ODataFailure(
                400,
                "BadRequest_InvalidOperation",
                f"Control '{prop.name}' is read-only on page {entity.name}",
            )
        if isinstance(value, str):
            _length(prop, value, nav)
        if prop.status_locked and order is not None:
            _status_open(order, prop)
        if prop.name == AGENT and entity is not POSTED_SHIPMENT and value != current and SERVICE not in body:
            row[SERVICE] = ""  # Shipping Agent Code OnValidate clears the service
        row[prop.name] = value
        changed.add(prop.name)
    _relations(entity, row, changed, nav)
    if entity is SALES_LINE:
        _line_rules(row, changed, body)
    return row


def _line_rules(row: dict[str, Any], changed: set[str], body: Mapping[str, Any]) -> None:
    key = f"Document Type=Order, Document No.={row.get('Document_No')}, Line No.={row.get('Line_No')}"
    if "Quantity" in changed:
        shipped = Decimal(str(row.get("Quantity_Shipped") or 0))
        if Decimal(str(row["Quantity"])) < shipped:
            raise ODataFailure(
                400,
                "Application_DialogException",
                f"You cannot reduce Quantity below the quantity already shipped ({_json_default(shipped)})",
            )
        if "Qty_to_Ship" not in body:
            row["Qty_to_Ship"] = _native(Decimal(str(row["Quantity"])) - shipped)  # InitQtyToShip
    if "Qty_to_Ship" in changed or "Quantity" in changed:
        _qty_to_ship(row, key)


def _same(a: Any, b: Any) -> bool:
    try:
        return Decimal(str(a)) == Decimal(str(b)) if not isinstance(a, str | bool) else a == b
    except InvalidOperation:
        return False


def _push_to_lines(nav: NavState, order_no: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Header -> lines (UpdateSalesLinesByFieldNo): the lines get new ETags too (§1.6)."""
    fields = [f for f in ("Shipment_Date", AGENT, SERVICE) if before.get(f) != after.get(f)]
    if not fields:
        return
    for line in nav.sales_lines.get(order_no, []):
        shipped = Decimal(str(line.get("Quantity_Shipped") or 0))
        if not line.get("Type") or shipped >= Decimal(str(line.get("Quantity") or 0)):
            continue
        for name in fields:
            line[name] = after.get(name, "")
        nav.stamp(line)


def patch_entity(
    world: SandboxWorld, target: Target, res: Resolved, request: Request, raw: bytes
) -> Response:
    entity, record = res.entity, res.record
    assert entity is not None and record is not None
    nav = world.nav
    if nav.faults.take("concurrent_edit_next"):
        nav.stamp(record)  # "another user" saved the record a moment ago
    check_if_match(request.headers.get("if-match"), record)
    body = _read_body(raw)
    order = res.order if entity is not POSTED_SHIPMENT else None
    new = apply_patch(nav, entity, record, order, body)
    before = dict(record)
    record.clear()
    record.update(new)
    if body:
        nav.stamp(record)
    if entity is SALES_ORDER:
        _push_to_lines(nav, record["No"], before, record)
    result = {"@odata.context": f"{target.root_url}/$metadata#{res.context}"}
    result.update(serialize(entity, record, None))
    return _json(result, headers={"ETag": NavState.etag(record)})


# --- the OData endpoint ----------------------------------------------------------------------


async def odata_endpoint(request: Request) -> Response:
    world: SandboxWorld = request.app.state.world
    raw = await request.body()
    base_url = f"{request.url.scheme}://{request.headers.get('host', 'localhost')}"
    try:
        return _handle(request, world, raw, base_url)
    except ODataFailure as failure:
        return failure.response()


def _handle(request: Request, world: SandboxWorld, raw: bytes, base_url: str) -> Response:
    params = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    params = [(k, v) for k, v in params]
    method = request.method
    with world.lock:
        nav = world.nav
        if not _authorized(nav, request.headers.get("authorization", "")):
            raise _unauthorized(base_url)
        target = parse_target(request.scope, request.headers, params)
        res = resolve(nav, target)
        if res.kind == "metadata" and method == "GET":
            return metadata(nav)
        if res.kind == "service" and method == "GET":
            return service_document(target, nav)
        if res.kind in ("collection", "count") and method == "GET":
            return get_collection(request, world, target, res, params)
        if res.kind == "entity" and method == "GET":
            return get_entity(world, target, res, params)
        if res.kind == "entity" and method in ("PATCH", "MERGE"):
            return patch_entity(world, target, res, request, raw)
    raise ODataFailure(
        405, "BadRequest_MethodNotAllowed", f"The request method '{method}' is not allowed for this resource"
    )


# --- admin endpoints (a sandbox running as a separate process) -------------------------------


def _faults_dict(world: SandboxWorld) -> dict[str, Any]:
    return dataclasses.asdict(world.nav.faults)


async def admin_faults(request: Request) -> Response:
    """GET: the NAV faults. POST {"field": value, ...}: set them (unknown fields -> 400)."""
    world: SandboxWorld = request.app.state.world
    if request.method == "POST":
        try:
            changes = json.loads((await request.body()) or b"{}")
        except ValueError:
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        names = {f.name for f in dataclasses.fields(world.nav.faults)}
        if not isinstance(changes, dict) or not set(changes) <= names:
            return JSONResponse({"error": f"unknown fault fields; known: {sorted(names)}"}, status_code=400)
        with world.lock:
            for name, value in changes.items():
                setattr(world.nav.faults, name, tuple(value) if name == "fail_paths" else value)
    with world.lock:
        return JSONResponse(_faults_dict(world))


async def admin_stats(request: Request) -> Response:
    world: SandboxWorld = request.app.state.world
    with world.lock:
        nav = world.nav
        by_method: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for method, _path, _query, status in nav.log.entries:
            by_method[method] = by_method.get(method, 0) + 1
            by_status[str(status)] = by_status.get(str(status), 0) + 1
        stats = {
            "requests": len(nav.log.entries),
            "by_method": by_method,
            "by_status": by_status,
            "token_requests": nav.log.count("POST", "/oauth2/"),
            "tokens_issued": len(nav.tokens),
            "in_flight": nav.in_flight,
            "max_in_flight": nav.max_in_flight,
            "sales_orders": len(nav.sales_orders),
            "posted_shipments": len(nav.posted_shipments),
            "faults": _faults_dict(world),
        }
    return JSONResponse(stats)


async def admin_expire_tokens(request: Request) -> Response:
    world: SandboxWorld = request.app.state.world
    with world.lock:
        world.nav.expire_tokens()
        expired = len(world.nav.tokens)
    return JSONResponse({"expired": expired})


async def admin_reset_stats(request: Request) -> Response:
    world: SandboxWorld = request.app.state.world
    with world.lock:
        world.nav.log.clear()
        world.nav.max_in_flight = world.nav.in_flight
    return JSONResponse({"ok": True})


ODATA_METHODS = ["GET", "POST", "PATCH", "MERGE", "PUT", "DELETE"]


def create_app(world: SandboxWorld) -> Starlette:
    routes = [
        Route("/_sandbox/faults", admin_faults, methods=["GET", "POST"]),
        Route("/_sandbox/stats", admin_stats, methods=["GET"]),
        Route("/_sandbox/expire-tokens", admin_expire_tokens, methods=["POST"]),
        Route("/_sandbox/reset-stats", admin_reset_stats, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/token", token_endpoint, methods=["POST"]),
        Route("/{rest:path}", odata_endpoint, methods=ODATA_METHODS),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(TrafficMiddleware)])
    app.state.world = world
    return app
