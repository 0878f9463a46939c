"""The ShipStation webhook receiver (``shipnav webhooks serve``).

Notifications of both API generations are thin: ``{"resource_url", "resource_type"}``, the URL is
all they carry. V1 webhooks are unsigned, so anyone who learns the receiver's address can send
one. So the receiver

* hides behind a secret path token, compared in constant time, and answers 404 otherwise;
* takes the configured generation's events only: V1 SHIP_NOTIFY / ORDER_NOTIFY, or V2
  LABEL_CREATED_V2 / FULFILLMENT_SHIPPED_V2, at the same path;
* on V2, also requires the shared-secret header its subscription sends back
  (``X-Shipnav-Webhook-Secret``, compared in constant time; ``shipnav webhooks subscribe`` sets
  it), and, when ``SHIPNAV_WEBHOOK_PUBLIC_KEY`` is set, ShipStation's RSA signature
  (``signature.py``);
* accepts only URLs on the configured ShipStation API host (or its ``ssapiN`` shards) and only
  the collections these events point at, because the run later fetches them *with the API
  credentials* (``resource_url_problem`` is the check, and the run repeats it);
* never fetches anything itself: it validates, stores once, and answers within milliseconds;
* keeps the inbox bounded (``bounds.py``): 503 with ``Retry-After`` while it is full, and
  processed notifications pruned after the retention;
* never logs the token (uvicorn's access log is replaced by one that redacts the path).
"""

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipnav_dagster.ledger.inbox import store_notification
from shipnav_dagster.webhooks.bounds import (
    DEFAULT_MAX_PENDING,
    DEFAULT_RETENTION,
    RETRY_AFTER_SECONDS,
    InboxBounds,
)
from shipnav_dagster.webhooks.policy import MAX_RESOURCE_URL_LENGTH, resource_types, resource_url_problem
from shipnav_dagster.webhooks.signature import PublicKeyError, SignatureError, SignatureVerifier

if TYPE_CHECKING:
    from shipnav_dagster.ledger.repository import Ledger
    from shipnav_dagster.settings import Settings

log = logging.getLogger("shipnav_dagster.webhooks")

WEBHOOK_PREFIX = "/webhooks/shipstation/"
# The custom header a V2 subscription sends back with every notification (V2 webhooks take
# headers[] {key, value}: https://docs.shipstation.com/openapi/webhooks/create_webhook).
SECRET_HEADER = "X-Shipnav-Webhook-Secret"
MAX_BODY_BYTES = 64 * 1024
BODY_READ_TIMEOUT_SECONDS = 10.0  # a client trickling its body must not hold a worker forever


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    *,
    token: str | None,
    api_url: str,
    ledger: "Ledger",
    body_read_timeout: float = BODY_READ_TIMEOUT_SECONDS,
    max_pending: int = DEFAULT_MAX_PENDING,
    retention: timedelta = DEFAULT_RETENTION,
    generation: str = "v1",
    header_secret: str | None = None,
    verifier: SignatureVerifier | None = None,
) -> Starlette:
    """The receiver. Creates the ledger tables now, so the first notification cannot fail on them,
    and prunes processed notifications older than ``retention``.

    With no ``token`` every notification is answered 404: an open receiver would let anyone
    queue work. On V2 (``generation="v2"``) the ``SECRET_HEADER`` must carry ``header_secret``
    (the token when None), and with a ``verifier`` ShipStation's signature must hold.
    """
    ledger.create_all()
    bounds = InboxBounds(ledger, max_pending=max_pending, retention=retention)
    bounds.maybe_prune()
    _install_redaction()
    expected = token.encode() if token else None
    types = resource_types(generation)
    shared = (header_secret or token or "").encode() if generation == "v2" else None

    async def receive(request: Request) -> Response:
        given = str(request.path_params.get("token", "")).encode()
        # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
        if expected is None or not hmac.compare_digest(given, expected):
            return _error(404, "not found")
        if shared is not None and not hmac.compare_digest(
            request.headers.get(SECRET_HEADER, "").encode(), shared
        ):
            return _error(401, f"the {SECRET_HEADER} header is missing or wrong")
        try:
            body = await asyncio.wait_for(_read_body(request), timeout=body_read_timeout)
            if verifier is not None:
                verifier.verify(request.headers, body)
            resource_type, resource_url = _parse_notification(
                body, api_url, _client(request), generation, types
            )
        except SignatureError as refused:
            log.warning("refused a notification from %s: %s", _client(request), refused.message)
            return _error(refused.status, refused.message)
        except _Rejected as rejected:
            return _error(rejected.status, rejected.message)
        except TimeoutError:
            return _error(408, "request body not received in time")
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            full = await run_in_threadpool(bounds.is_full)
            new = False
            if not full:
                new = await run_in_threadpool(store_notification, ledger, resource_type, resource_url)
        except Exception:
            # 5xx so that a sender that retries does; the URL was valid, only storing failed.
            log.exception("could not store a %s notification in the ledger", resource_type)
            return _error(503, "could not store the notification")
        if full:
            return JSONResponse(
                {"error": "too many notifications wait to be processed; send this one again later"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if new:
            log.info("queued %s notification", resource_type)
            await run_in_threadpool(bounds.maybe_prune)
        return JSONResponse({"status": "queued" if new else "duplicate"}, status_code=200)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Exception) -> Response:
        # Same answer for every unknown path and every wrong token: nothing to tell them apart.
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        response = _error(status, "method not allowed" if status == 405 else "not found")
        if status == 405 and isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)  # Allow: POST
        return response

    app = Starlette(
        routes=[
            Route(WEBHOOK_PREFIX + "{token}", receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
    app.add_middleware(_RedactedAccessLog)
    return app


async def _read_body(request: Request) -> bytes:
    """The body, refusing (413) as soon as it would exceed MAX_BODY_BYTES.

    Content-Length is checked first so an honest oversize request is refused without reading;
    the bytes are counted while streaming so a missing or lying header cannot make us buffer more.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _Rejected(400, "invalid Content-Length")
        if int(declared) > MAX_BODY_BYTES:
            raise _Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_notification(
    body: bytes, api_url: str, client: str, generation: str, types: frozenset[str]
) -> tuple[str, str]:
    """(resource_type, resource_url) of a valid notification; _Rejected(400) otherwise."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays fit in 64 KB
        raise _Rejected(400, "body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _Rejected(400, "body must be a JSON object with resource_url and resource_type")
    resource_type = payload.get("resource_type")
    resource_url = payload.get("resource_url")
    # isinstance first: a list or object is unhashable and would make the set lookup raise.
    if not isinstance(resource_type, str) or resource_type not in types:
        raise _Rejected(400, "resource_type must be one of " + ", ".join(sorted(types)))
    if not isinstance(resource_url, str) or not resource_url:
        raise _Rejected(400, "resource_url must be a non-empty string")
    if len(resource_url) > MAX_RESOURCE_URL_LENGTH:
        raise _Rejected(400, f"resource_url longer than {MAX_RESOURCE_URL_LENGTH} characters")
    problem = resource_url_problem(resource_url, api_url, generation, resource_type)
    if problem is not None:
        # Unsigned webhooks: a foreign URL is someone probing; say so, never fetch it. %r and
        # truncation keep an attacker's string from forging log lines.
        log.warning(
            "rejected %s notification from %s: resource_url %r %s",
            resource_type,
            client,
            resource_url[:200],
            problem,
        )
        what = "/v2/labels or /v2/fulfillments" if generation == "v2" else "/shipments or /orders"
        raise _Rejected(400, f"resource_url is not a ShipStation API URL for {what}")
    return resource_type, resource_url


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown client"


def redact_path(path: str) -> str:
    """The request path with the webhook token replaced, for logs."""
    if path.startswith(WEBHOOK_PREFIX):
        return WEBHOOK_PREFIX + "***"
    return path


_TOKEN_IN_TEXT = re.compile(re.escape(WEBHOOK_PREFIX) + r"[^\s\"'?#]*")


class RedactTokenFilter(logging.Filter):
    """Rewrites any webhook path in a log record to its redacted form.

    uvicorn's access log is switched off, but an operator's own logging config (or a capture
    handler) can switch it back on; this keeps the token out of the log even then.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and WEBHOOK_PREFIX in record.msg:
            record.msg = _TOKEN_IN_TEXT.sub(WEBHOOK_PREFIX + "***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_TEXT.sub(WEBHOOK_PREFIX + "***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def _install_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokenFilter) for f in logger.filters):
            logger.addFilter(RedactTokenFilter())


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _RedactedAccessLog:
    """uvicorn's access log would print the token (it is in the path); this one redacts it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The load balancer polls /healthz every few seconds; that is noise, not traffic.
        if scope["type"] != "http" or scope.get("path") == "/healthz":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            client = scope.get("client")
            log.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                scope.get("method", "-"),
                redact_path(str(scope.get("path", ""))),
                status,
                (time.perf_counter() - started) * 1000,
            )


def app_from_settings(settings: "Settings", ledger: "Ledger | None" = None) -> Starlette:
    from shipnav_dagster.ledger.repository import Ledger

    token = settings.shipnav_webhook_token.get_secret_value() if settings.shipnav_webhook_token else None
    if not token:
        log.warning("SHIPNAV_WEBHOOK_TOKEN is not set: every notification will be answered 404")
    elif len(token) < 16:
        log.warning("SHIPNAV_WEBHOOK_TOKEN is shorter than 16 characters and may be guessed")
    header = settings.shipnav_webhook_header_secret
    key = settings.shipnav_webhook_public_key
    try:
        verifier = SignatureVerifier.from_setting(key) if key else None
    except PublicKeyError as exc:
        from shipnav_dagster.settings import SettingsError

        raise SettingsError(str(exc)) from None
    return create_app(
        token=token,
        api_url=settings.shipstation_url,
        ledger=ledger or Ledger(settings.database_url),
        max_pending=settings.shipnav_webhook_max_pending,
        retention=timedelta(days=settings.shipnav_webhook_retention_days),
        generation=settings.shipstation_version,
        header_secret=header.get_secret_value() if header else None,
        verifier=verifier,
    )
