"""Traffic of the NAV emulator: requests in flight, the request log, rate limit and injected faults.

Faults (latency, 5xx, 429, dropped connections) are switched on per world so tests and
benchmarks can ask for them. A ``$batch`` is one HTTP request here: it counts once against the
rate limit and appears once in ``NavState.log`` (its operations go to ``NavState.batch_log``).
"""

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipnav_dagster.sandbox.nav.errors import odata_error
from shipnav_dagster.sandbox.state import NavState, SandboxWorld


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
        # Microsoft's table of HTTP status codes for Business Central web services: the service
        # adds a retry-after header to 502 and 503 answers.
        return odata_error(status, "Unavailable", "The service is temporarily unavailable", retry_after)
    return odata_error(status, "Unknown", "An unexpected error occurred on the server")
