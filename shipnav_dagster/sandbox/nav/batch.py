"""Business Central's JSON ``$batch``: many OData operations in one HTTP request.

``POST {service root}/$batch`` with ``Content-Type: application/json`` and a body
``{"requests": [{"id", "method", "url", "headers", "body"}, ...]}`` answers
``{"responses": [{"id", "status", "headers", "body"}, ...]}``, one response per operation in
order (https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-odata-batch).
Each operation carries its own headers (``If-Match``, ``Company``) and gets its own status and
body: a stale ETag is that operation's 409 ``Request_EntityChanged`` while the others succeed.
With ``Isolation: snapshot`` (BC 17.1 and later) the batch is one transaction: if any operation
fails, every change is rolled back, although the responses of the operations that ran still say
200 (the documented example shows exactly that). Business Central online allows at most 100
operations per batch; more fail the whole request with "The current batch message contains too
many parts. A maximum number of '100' query operations and change sets are allowed in a batch
message." (code ``Unknown``, reported from BC online, demiliani.com 2021-01-12; HTTP status not
documented, 400 here).

Not emulated: the multipart/mixed batch format (BC accepts it too) and ``dependsOn``. NAV 2018
has no documented $batch: there the segment is unknown (404 ``BadRequest_ResourceNotFound``).
"""

import json
from typing import Any
from urllib.parse import urljoin, urlsplit

from shipnav_dagster.sandbox.nav.dispatch import Journal, dispatch
from shipnav_dagster.sandbox.nav.errors import ODataFailure, Reply, json_reply, method_not_allowed
from shipnav_dagster.sandbox.nav.operation import Operation
from shipnav_dagster.sandbox.nav.query import Target
from shipnav_dagster.sandbox.state import SandboxWorld

INNER_JSON_TYPE = "application/json; odata.metadata=minimal"


def run_batch(world: SandboxWorld, op: Operation, target: Target) -> Reply:
    """Process a JSON $batch under the caller's ``world.lock`` (so it is atomic for other clients)."""
    if op.method.upper() != "POST":
        raise method_not_allowed(op.method)
    requests = _requests(op)
    limit = world.nav.max_batch_operations
    if len(requests) > limit:
        raise ODataFailure(
            400,
            "Unknown",
            f"The current batch message contains too many parts. A maximum number of '{limit}' query "
            "operations and change sets are allowed in a batch message",
        )
    snapshot = (op.header("isolation") or "").strip().lower() == "snapshot"
    journal = Journal() if snapshot else None
    responses: list[dict[str, Any]] = []
    failed = False
    for item in requests:
        inner = _inner(op, target, item)
        try:
            reply = dispatch(world, inner, journal=journal)
        except ODataFailure as failure:
            reply = failure.reply()
        failed = failed or reply.status >= 400
        world.nav.batch_log.add(inner.method, urlsplit(inner.raw_path).path, inner.query, reply.status)
        responses.append(_response(item.get("id"), reply))
    if journal is not None and failed:
        journal.rollback()
    return json_reply({"responses": responses})


def _invalid_body(detail: str) -> ODataFailure:
    return ODataFailure(400, "BadRequest", f"Invalid Request Body: {detail}")


def _requests(op: Operation) -> list[dict[str, Any]]:
    content_type = (op.header("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ODataFailure(
            400,
            "BadRequest",
            f"The sandbox emulates the JSON $batch format only (Content-Type: application/json), "
            f"not '{content_type or 'none'}'",
        )
    try:
        body = json.loads(op.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid_body(str(exc)) from exc
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list):
        raise _invalid_body('expected {"requests": [...]}')
    for item in requests:
        valid = (
            isinstance(item, dict)
            and isinstance(item.get("method"), str)
            and isinstance(item.get("url"), str)
        )
        if not valid or not isinstance(item.get("headers", {}), dict):
            raise _invalid_body("every request needs a method, a url and optional headers")
    return requests


def _inner(op: Operation, target: Target, item: dict[str, Any]) -> Operation:
    """The operation an item describes; its url is absolute or relative to the batch URL."""
    url = urlsplit(urljoin(target.request_url, item["url"]))
    headers = {str(k).lower(): str(v) for k, v in item.get("headers", {}).items()}
    body = item.get("body")
    raw = b"" if body is None else json.dumps(body).encode("utf-8")
    path = url.path.replace(" ", "%20")
    return Operation(item["method"].upper(), path, url.query, op.base_url, headers, raw)


def _response(ident: Any, reply: Reply) -> dict[str, Any]:
    item: dict[str, Any] = {"id": ident, "status": reply.status, "headers": {}}
    if reply.body is None:
        return item
    is_json = not isinstance(reply.body, str | bytes)
    item["headers"] = {
        "content-type": INNER_JSON_TYPE if is_json else reply.media_type,
        "odata-version": "4.0",
        **{name.lower(): value for name, value in reply.headers.items()},
    }
    item["body"] = reply.body if is_json else reply.content().decode("utf-8")
    return item
