"""Emulator of NAV 2018 / Business Central OData V4 page web services and an Entra token endpoint.

Built to the documented behaviour of the real servers, not to what shipnav's client does. The
modules: ``query`` (addresses, query options, GET), ``rules`` (PATCH validation, filter-literal
lengths), ``dispatch`` (one operation), ``batch`` (Business Central's JSON $batch), ``auth``
(Basic, bearer tokens, token endpoint), ``windows_auth`` (NTLM/Negotiate per connection),
``traffic`` (log, rate limit, faults), ``schema`` (fields, lengths, $metadata).

Every handler reads ``request.app.state.world`` (the server swaps worlds between tests) and holds
``world.lock`` while it touches state; only the injected latency is awaited outside the lock, so
concurrent requests really overlap.
"""

import dataclasses
import json
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipnav_dagster.sandbox.nav.auth import authorized, token_endpoint, unauthorized
from shipnav_dagster.sandbox.nav.batch import run_batch
from shipnav_dagster.sandbox.nav.dispatch import dispatch
from shipnav_dagster.sandbox.nav.errors import ODataFailure
from shipnav_dagster.sandbox.nav.operation import Operation
from shipnav_dagster.sandbox.nav.query import BATCH_SEGMENT, parse_target
from shipnav_dagster.sandbox.nav.traffic import TrafficMiddleware
from shipnav_dagster.sandbox.nav.windows_auth import USER_SCOPE_KEY, ConnectionTable, WindowsAuthMiddleware
from shipnav_dagster.sandbox.state import BC, WINDOWS, SandboxWorld


async def odata_endpoint(request: Request) -> Response:
    world: SandboxWorld = request.app.state.world
    op = Operation(
        method=request.method,
        raw_path=(request.scope.get("raw_path") or request.scope["path"].encode())
        .decode("latin-1")
        .split("?", 1)[0],
        query=request.scope.get("query_string", b"").decode("latin-1"),
        base_url=f"{request.url.scheme}://{request.headers.get('host', 'localhost')}",
        headers={name.lower(): value for name, value in request.headers.items()},
        body=await request.body(),
    )
    try:
        with world.lock:
            nav = world.nav
            if nav.credential_type == WINDOWS:
                if USER_SCOPE_KEY not in request.scope:  # the middleware lets none through without
                    raise unauthorized(op.base_url)
            elif not authorized(nav, op.header("authorization") or ""):
                raise unauthorized(op.base_url)
            target = parse_target(op)
            if nav.platform == BC and [s.name for s in target.segments] == [BATCH_SEGMENT]:
                return run_batch(world, op, target).response()
            return dispatch(world, op, target).response()
    except ODataFailure as failure:
        return failure.response()


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
        batch_by_method: dict[str, int] = {}
        for method, _path, _query, _status in nav.batch_log.entries:
            batch_by_method[method] = batch_by_method.get(method, 0) + 1
        stats = {
            "platform": nav.platform,
            "requests": len(nav.log.entries),
            "by_method": by_method,
            "by_status": by_status,
            "batch_operations": len(nav.batch_log.entries),
            "batch_operations_by_method": batch_by_method,
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
        world.nav.batch_log.clear()
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
    # Windows-auth state per connection; the server reports connections opening and closing to it.
    connections = ConnectionTable()
    middleware = [
        Middleware(TrafficMiddleware),
        Middleware(WindowsAuthMiddleware, connections=connections),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.world = world
    app.state.connections = connections
    return app
