"""What the ShipStation V1 and V2 emulators share: the request gate and the operator endpoints.

The gate sits in front of every API route of one app and applies, in order: injected latency,
authentication, the per-key rate limit (a fixed window per credential), injected faults (dropped
connection, failure status, throttling) and the request log. What differs between the API
generations (how a key is read, the error bodies, the rate-limit headers) comes in a
``GatePolicy``; the counters live on the API's own state object (an ``ApiSurface``).

Operator endpoints live under ``/_sandbox/`` (no auth, not rate limited, not logged):
``POST /_sandbox/faults``, ``POST /_sandbox/config``, ``POST /_sandbox/reset``,
``GET /_sandbox/stats``.
"""

import asyncio
import contextvars
import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipnav_dagster.sandbox.state import Faults, RequestLog, SandboxWorld

ADMIN_PREFIX = "/_sandbox/"

# Gateways in front of ShipStation answer 502/503/504 with an HTML page, not JSON.
GATEWAY_HTML = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1>"
    "</center><hr><center>cloudflare</center></body></html>"
)
GATEWAY_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


class ApiSurface(Protocol):
    """The per-API counters and switches the gate and the admin endpoints work on."""

    faults: Faults
    log: RequestLog
    rate_windows: dict[str, list[float]]
    rate_limit_per_minute: int
    rate_window_seconds: float
    in_flight: int
    max_in_flight: int


# ---------------------------------------------------------------------------------------------
# Rate limit and faults


def effective_limit(surface: ApiSurface) -> int:
    """The per-window budget; a fault-injected budget (if set) overrides the account's."""
    return surface.faults.rate_limit_per_minute or surface.rate_limit_per_minute


@dataclass
class RateStatus:
    limit: int
    remaining: int
    reset: int  # whole seconds until the window resets
    allowed: bool


def consume_rate(surface: ApiSurface, bucket: str | None, now: float) -> RateStatus:
    """Count one request in the credential's fixed window (call with the world lock held)."""
    limit = effective_limit(surface)
    window = max(surface.rate_window_seconds, 0.001)
    if limit <= 0:
        return RateStatus(limit=0, remaining=0, reset=0, allowed=True)
    if bucket is None:  # unauthenticated: report the budget without spending it
        return RateStatus(limit=limit, remaining=limit, reset=math.ceil(window), allowed=True)
    slot = surface.rate_windows.get(bucket)
    if slot is None or now - slot[0] >= window:
        slot = [now, 0.0]
        surface.rate_windows[bucket] = slot
    allowed = slot[1] < limit
    if allowed:
        slot[1] += 1
    # Whole seconds, rounded up so that waiting it out always reaches the new window.
    reset = max(0, math.ceil(slot[0] + window - now))
    return RateStatus(limit=limit, remaining=max(0, limit - int(slot[1])), reset=reset, allowed=allowed)


@dataclass
class FaultPlan:
    drop: bool = False
    fail_status: int | None = None
    throttle_seconds: int | None = None


def take_faults(faults: Faults, path: str) -> FaultPlan:
    """Consume at most one fault for this request (call with the world lock held)."""
    if faults.take("drop_next"):
        return FaultPlan(drop=True)
    path_matches = not faults.fail_paths or any(p in path for p in faults.fail_paths)
    if path_matches and faults.take("fail_next"):
        return FaultPlan(fail_status=faults.fail_status)
    if faults.take("throttle_next"):
        return FaultPlan(throttle_seconds=faults.retry_after_seconds)
    return FaultPlan()


def gateway_response(status: int) -> Response | None:
    """The HTML page a gateway answers with for 502/503/504, else None."""
    reason = GATEWAY_REASONS.get(status)
    if reason is None:
        return None
    return HTMLResponse(GATEWAY_HTML.format(status=status, reason=reason), status)


# ---------------------------------------------------------------------------------------------
# The gate


@dataclass(frozen=True)
class GatePolicy:
    """What one API generation does differently at the gate."""

    surface: Callable[[SandboxWorld], ApiSurface]
    # The rate-limit bucket of valid credentials in the request headers (lower-case names), or
    # None when they are wrong or missing.
    authenticate: Callable[[ApiSurface, Mapping[str, str]], str | None]
    unauthorized: Callable[[Mapping[str, str]], Response]
    too_many_requests: Callable[[], Response]
    failure: Callable[[int], Response]
    # Headers added to every response the gate lets through or answers itself.
    rate_headers: Callable[[RateStatus], dict[str, str]]
    # The start of the body sent before a dropped connection is cut off.
    drop_body: bytes


# Set when a response is deliberately cut off, so the server's "returned without completing
# response" error (expected here) is not logged as a failure.
_DROPPED: contextvars.ContextVar[bool] = contextvars.ContextVar("shipstation_sandbox_dropped", default=False)


class _DeliberateDropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _DROPPED.get()


def quiet_deliberate_drops() -> None:
    """Keep uvicorn from logging the connections the gate drops on purpose."""
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DeliberateDropFilter) for f in server_log.filters):
        server_log.addFilter(_DeliberateDropFilter())


class Gate:
    """Pure ASGI middleware (so that it can also cut a response off mid-body)."""

    def __init__(self, app: ASGIApp, policy: GatePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        world: SandboxWorld = scope["app"].state.world
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        status_box: list[int] = [0]

        with world.lock:
            surface = self.policy.surface(world)
            latency = surface.faults.latency_ms
            surface.in_flight += 1
            surface.max_in_flight = max(surface.max_in_flight, surface.in_flight)
        try:
            if latency > 0:
                await asyncio.sleep(latency / 1000)  # outside the lock so concurrent requests overlap
            await self._serve(world, scope, receive, send, status_box)
        finally:
            with world.lock:
                surface.in_flight -= 1
                surface.faults.requests_seen += 1
                # A dropped connection is logged with status 0: no response was completed.
                surface.log.add(method, path, query, status_box[0])

    async def _serve(
        self, world: SandboxWorld, scope: Scope, receive: Receive, send: Send, status_box: list[int]
    ) -> None:
        policy = self.policy
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        with world.lock:
            surface = policy.surface(world)
            bucket = policy.authenticate(surface, headers)
            rate = consume_rate(surface, bucket, time.monotonic())
            plan = (
                FaultPlan()
                if bucket is None or not rate.allowed
                else take_faults(surface.faults, scope["path"])
            )

        extra = policy.rate_headers(rate)
        if bucket is None:
            response = policy.unauthorized(headers)
        elif not rate.allowed:
            response = policy.too_many_requests()
        elif plan.drop:
            await _drop_connection(add_headers(send, extra, status_box), policy.drop_body)
            status_box[0] = 0  # logged as 0: the client never got a complete response
            return
        elif plan.fail_status is not None:
            response = policy.failure(plan.fail_status)
        elif plan.throttle_seconds is not None:
            response = policy.too_many_requests()
            throttle = RateStatus(rate.limit, 0, plan.throttle_seconds, False)
            extra = {**policy.rate_headers(throttle), "Retry-After": str(plan.throttle_seconds)}
        else:
            await self.app(scope, receive, add_headers(send, extra, status_box))
            return
        await response(scope, receive, add_headers(send, extra, status_box))


def add_headers(send: Send, extra: dict[str, str], status_box: list[int]) -> Send:
    """Wrap ``send`` so the response start carries ``extra`` (unless set) and its status is kept."""
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            status_box[0] = int(message["status"])
            present = {name for name, _ in message.get("headers", [])}
            message["headers"] = list(message.get("headers", [])) + [
                pair for pair in encoded if pair[0] not in present
            ]
        await send(message)

    return wrapped


async def _drop_connection(send: Send, body_start: bytes) -> None:
    """Promise a body, send part of it, and stop: the server then closes the socket, and the
    client sees the connection die mid-response (httpx: RemoteProtocolError)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": body_start, "more_body": True})
    _DROPPED.set(True)


# ---------------------------------------------------------------------------------------------
# Operator endpoints


class AdminError(Exception):
    """A bad operator request: answered 400 with ``{"message": ...}``."""


def as_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdminError(f"{name} must be a number")
    return int(value)


def as_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdminError(f"{name} must be a number")
    return float(value)


def as_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise AdminError(f"{name} must be true or false")
    return value


def as_optional_int(name: str, value: object) -> int | None:
    return None if value is None else as_int(name, value)


Coercer = Callable[[str, object], Any]


@dataclass(frozen=True)
class AdminSpec:
    """How the operator endpoints reach one API's state."""

    surface: Callable[[SandboxWorld], ApiSurface]
    # Settable attributes of the surface and how a JSON value becomes one.
    config_fields: Mapping[str, Coercer]
    # Record counts reported by /_sandbox/stats.
    records: Callable[[SandboxWorld], dict[str, int]]


def admin_routes(spec: AdminSpec) -> list[Route]:
    """``/_sandbox/faults``, ``/config``, ``/reset`` and ``/stats`` for one API."""

    def world_of(request: Request) -> SandboxWorld:
        return request.app.state.world

    async def faults(request: Request) -> Response:
        """Set Faults fields, e.g. ``{"fail_next": 2, "fail_paths": ["/shipments"]}``."""
        world = world_of(request)
        body = await _json_object(request)
        known = {f.name for f in dataclasses.fields(Faults)} - {"requests_seen"}
        with world.lock:
            current = spec.surface(world).faults
            for name, value in body.items():
                if name not in known:
                    raise AdminError(f"unknown fault {name!r}; known: {sorted(known)}")
                setattr(current, name, _coerce_fault(name, value, getattr(current, name)))
            return JSONResponse(faults_dict(current))

    async def config(request: Request) -> Response:
        world = world_of(request)
        body = await _json_object(request)
        with world.lock:
            surface = spec.surface(world)
            for name, value in body.items():
                coerce = spec.config_fields.get(name)
                if coerce is None:
                    raise AdminError(f"unknown setting {name!r}; known: {sorted(spec.config_fields)}")
                setattr(surface, name, coerce(name, value))
            surface.rate_windows.clear()
            return JSONResponse({name: getattr(surface, name) for name in spec.config_fields})

    async def reset(request: Request) -> Response:
        """Clear faults, rate-limit windows and the request log (data is kept)."""
        world = world_of(request)
        with world.lock:
            surface = spec.surface(world)
            surface.faults = Faults()
            surface.rate_windows.clear()
            surface.log.clear()
            surface.max_in_flight = surface.in_flight
        return JSONResponse({"reset": True})

    async def stats(request: Request) -> Response:
        world = world_of(request)
        with world.lock:
            surface = spec.surface(world)
            entries = list(surface.log.entries)
            by_endpoint = Counter(f"{m} {p}" for m, p, _q, _s in entries)
            by_status = Counter(str(s) for _m, _p, _q, s in entries)
            return JSONResponse(
                {
                    "requests": len(entries),
                    "by_endpoint": dict(sorted(by_endpoint.items())),
                    "by_status": dict(sorted(by_status.items())),
                    "records": spec.records(world),
                    "rate_limit": {
                        "limit": effective_limit(surface),
                        "window_seconds": surface.rate_window_seconds,
                    },
                    "faults": faults_dict(surface.faults),
                    "in_flight": surface.in_flight,
                    "max_in_flight": surface.max_in_flight,
                }
            )

    return [
        Route(f"{ADMIN_PREFIX}faults", _answering_admin_errors(faults), methods=["POST"]),
        Route(f"{ADMIN_PREFIX}config", _answering_admin_errors(config), methods=["POST"]),
        Route(f"{ADMIN_PREFIX}reset", reset, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}stats", stats, methods=["GET"]),
    ]


Endpoint = Callable[[Request], Any]


def _answering_admin_errors(handler: Endpoint) -> Endpoint:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except AdminError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)

    return wrapped


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise AdminError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise AdminError("The request body must be a JSON object.")
    return body


def _coerce_fault(name: str, value: object, current: object) -> object:
    if isinstance(current, tuple):
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise AdminError(f"{name} must be a string or a list of strings")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdminError(f"{name} must be a number")
    return float(value) if isinstance(current, float) else int(value)


def faults_dict(faults: Faults) -> dict[str, Any]:
    values = dataclasses.asdict(faults)
    values["fail_paths"] = list(faults.fail_paths)
    return values
