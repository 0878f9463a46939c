"""``/v2/environment/webhooks``: list, create, get, update (url, headers) and delete subscriptions.

Body of a subscription: ``event`` and ``url`` (required), ``headers`` (``[{key, value}]`` sent
back with every notification), and, in the current docs
(https://docs.shipstation.com/openapi/webhooks/create_webhook), ``name`` and an integer
``store_id``. Create answers 200 with the webhook; update and delete answer 204 without a body.

Events: the spec's ``webhook_event`` enum (batch, carrier_connected,
order_source_refresh_complete, rate, report_complete, sales_orders_imported, track) lacks the
ShipStation events its help centre lists for V2 webhooks (BATCH_PROCESSED_V2, TRACK_EVENT_V2,
SHIPMENT_CREATED_V2, LABEL_CREATED_V2, FULFILLMENT_SHIPPED_V2; the docs also write them in lower
case). Both sets are accepted, the V2 names in either case and stored in the help centre's
upper case; only LABEL_CREATED_V2 and FULFILLMENT_SHIPPED_V2 are ever delivered by the sandbox.

A second subscription to the same event (and store) is refused with 409
``webhook_event_type_conflict``: the spec lists 409 for create and that error code, and one
subscription per event type is the rule the code's name states.
"""

import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shipnav_dagster.sandbox.shipstation.v2.errors import V2Error, invalid_value, not_found, required
from shipnav_dagster.sandbox.shipstation.v2.ids import se_id
from shipnav_dagster.sandbox.shipstation.v2.query import json_object, path_se_id, world_of
from shipnav_dagster.sandbox.state import SandboxWorld

Record = dict[str, Any]

SPEC_EVENTS = (
    "batch",
    "carrier_connected",
    "order_source_refresh_complete",
    "rate",
    "report_complete",
    "sales_orders_imported",
    "track",
)
SHIPSTATION_V2_EVENTS = (
    "BATCH_PROCESSED_V2",
    "TRACK_EVENT_V2",
    "SHIPMENT_CREATED_V2",
    "LABEL_CREATED_V2",
    "FULFILLMENT_SHIPPED_V2",
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)


async def list_webhooks(request: Request) -> Response:
    world = world_of(request)
    with world.lock:
        hooks = world.shipstation.v2.webhooks
        return JSONResponse([_public(h) for h in sorted(hooks.values(), key=_creation_order)])


async def create_webhook(request: Request) -> Response:
    world = world_of(request)
    body = await json_object(request)
    event = _event(body.get("event"))
    url = _url(body.get("url"), "url")
    headers = _headers(body.get("headers"))
    name = _optional_text(body.get("name"), "name")
    store_id = _store_id(body.get("store_id"))
    with world.lock:
        v2 = world.shipstation.v2
        for existing in v2.webhooks.values():
            if _same_event(existing["event"], event) and existing.get("store_id") == store_id:
                raise V2Error(
                    409,
                    "business_rules",
                    "webhook_event_type_conflict",
                    f"A webhook for the event '{event}' already exists ({existing['webhook_id']}).",
                )
        hook_id = se_id(v2.next_id())
        hook: Record = {"webhook_id": hook_id, "url": url, "event": event, "headers": headers}
        if name is not None:
            hook["name"] = name
        if store_id is not None:
            hook["store_id"] = store_id
        v2.webhooks[hook_id] = hook
        return JSONResponse(_public(hook))


async def get_webhook(request: Request) -> Response:
    world = world_of(request)
    hook_id = path_se_id(request, "webhook_id")
    with world.lock:
        return JSONResponse(_public(_find(world, hook_id)))


async def update_webhook(request: Request) -> Response:
    """The spec's update body has ``url`` and ``headers``; ``name`` is taken too (current docs)."""
    world = world_of(request)
    hook_id = path_se_id(request, "webhook_id")
    body = await json_object(request)
    changes: Record = {}
    if "url" in body:
        changes["url"] = _url(body["url"], "url")
    if "headers" in body:
        changes["headers"] = _headers(body["headers"])
    if "name" in body:
        changes["name"] = _optional_text(body["name"], "name")
    with world.lock:
        _find(world, hook_id).update(changes)
    return Response(status_code=204)


async def delete_webhook(request: Request) -> Response:
    world = world_of(request)
    hook_id = path_se_id(request, "webhook_id")
    with world.lock:
        _find(world, hook_id)
        del world.shipstation.v2.webhooks[hook_id]
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------


def _public(hook: Record) -> Record:
    return {**hook, "headers": [dict(h) for h in hook["headers"]]}


def _creation_order(hook: Record) -> int:
    return int(hook["webhook_id"].rsplit("-", 1)[-1])


def _find(world: SandboxWorld, hook_id: str) -> Record:
    hook = world.shipstation.v2.webhooks.get(hook_id)
    if hook is None:
        raise not_found(f"webhook_id {hook_id} was not found.")
    return hook


def _same_event(a: str, b: str) -> bool:
    return a.upper() == b.upper()


def _event(value: object) -> str:
    if value is None or value == "":
        raise required("event is required.")
    if isinstance(value, str) and value in SPEC_EVENTS:
        return value
    if isinstance(value, str) and value.upper() in SHIPSTATION_V2_EVENTS:
        return value.upper()
    allowed = ", ".join((*SPEC_EVENTS, *SHIPSTATION_V2_EVENTS))
    raise invalid_value(f"event must be one of {allowed}; got {value!r}.")


def _url(value: object, name: str) -> str:
    if value is None or value == "":
        raise required(f"{name} is required.")
    if not isinstance(value, str):
        raise invalid_value(f"{name} must be a string.")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_value(f"{name} must be an absolute http(s) URL; got '{value}'.")
    return value.strip()


def _headers(value: object) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_value("headers must be an array of {key, value} objects.")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise invalid_value("each header needs a string key and a string value.")
        key, text = entry["key"], entry.get("value")
        if not _HEADER_NAME.fullmatch(key) or not isinstance(text, str) or "\n" in text or "\r" in text:
            raise invalid_value(f"header {key!r} is not a valid HTTP header.")
        out.append({"key": key, "value": text})
    return out


def _optional_text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise invalid_value(f"{name} must be a string.")


def _store_id(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_value("store_id must be an integer.")
    return value
