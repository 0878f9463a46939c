"""ShipStation API v2 emulator (Starlette): routes, the gate's V2 policy, operator endpoints.

It serves the V1 world's account the V2 way. Paths below ``/v2/`` as in the official spec
("ShipStation API v2" 2.0.0, Aug 2025) plus the fulfillment endpoints of the current docs
(https://docs.shipstation.com/list-fulfillments, https://docs.shipstation.com/create-fulfillments):

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

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import asdict

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
from shipnav_dagster.sandbox.shipstation.v2.delivery import deliver_webhooks
from shipnav_dagster.sandbox.shipstation.v2.errors import V2Error, error_response
from shipnav_dagster.sandbox.shipstation.v2.fulfillments import create_fulfillments, list_fulfillments
from shipnav_dagster.sandbox.shipstation.v2.labels import get_label, list_labels, void_label
from shipnav_dagster.sandbox.shipstation.v2.query import base_url, world_of
from shipnav_dagster.sandbox.shipstation.v2.shipments import (
    get_shipment,
    get_shipment_by_external_id,
    list_shipments,
)
from shipnav_dagster.sandbox.shipstation.v2.webhooks import (
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhooks,
    update_webhook,
)
from shipnav_dagster.sandbox.state import SandboxWorld, ShipStationV2State

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
    world = world_of(request)
    results = await run_in_threadpool(deliver_webhooks, world, base_url(request))
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
