"""Business Central's JSON ``$batch``: up to 100 PATCHes of different orders in one request.

``POST {service root}/$batch`` with ``{"requests": [{"id", "method", "url", "headers", "body"}]}``
answers ``{"responses": [{"id", "status", "headers", "body"}]}``. Each operation carries its own
``If-Match`` and gets its own status, so a stale ETag is that operation's 409 and the others
land; no ``Isolation: snapshot`` header is sent, so one refusal rolls nothing else back
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-odata-batch).
Business Central online takes at most 100 operations per batch
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/administration/operational-limits-online).
NAV 2013-2018 has no documented ``$batch``: the segment is unknown there.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.errors import NavError, error_from_response

MAX_OPERATIONS = 100
BATCH_PATH = "$batch"


class BatchUnsupported(Exception):
    """The server has no JSON $batch (NAV 2013-2018): send single requests."""


@dataclass(frozen=True)
class Patch:
    path: str  # below the service root
    etag: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class PatchResult:
    entity: dict[str, Any] | None  # the entity NAV answered with (its new ETag), when it took it
    error: NavError | None  # NAV's answer to this one operation, classified like a single request


def patch_all(nav: NavClient, patches: Sequence[Patch]) -> list[PatchResult]:
    """One ``$batch`` request for ``patches`` (at most MAX_OPERATIONS); results in their order."""
    if not 0 < len(patches) <= MAX_OPERATIONS:
        raise ValueError(f"a $batch takes 1 to {MAX_OPERATIONS} operations, not {len(patches)}")
    requests = []
    for n, patch in enumerate(patches):
        nav.patch_body_problem(patch.etag, patch.changes)
        requests.append(
            {
                "id": str(n),
                "method": "PATCH",
                "url": nav.url(patch.path),
                "headers": {"If-Match": patch.etag, "Content-Type": "application/json"},
                "body": patch.changes,
            }
        )
    try:
        answer = nav.post_json(BATCH_PATH, {"requests": requests})
    except NavError as exc:
        if exc.status in (400, 404, 405, 501) and exc.code not in ("Unknown",):
            raise BatchUnsupported(f"{exc.code}: {exc.message}") from exc
        raise
    by_id = {str(r.get("id")): r for r in answer.get("responses") or [] if isinstance(r, dict)}
    return [_result(nav, patch, by_id.get(str(n))) for n, patch in enumerate(patches)]


def _result(nav: NavClient, patch: Patch, response: dict[str, Any] | None) -> PatchResult:
    if response is None:
        return PatchResult(
            None, NavError(0, "BatchResponseMissing", "NAV answered the $batch without this operation")
        )
    status = int(response.get("status") or 0)
    body = response.get("body")
    if 200 <= status < 300:
        return PatchResult(body if isinstance(body, dict) else None, None)
    # The operation's own answer, classified exactly as the same answer to a single PATCH.
    fake = httpx.Response(
        status,
        json=body if isinstance(body, dict) else {},
        headers={k: str(v) for k, v in (response.get("headers") or {}).items()},
        request=httpx.Request("PATCH", nav.url(patch.path)),
    )
    return PatchResult(None, error_from_response(fake))
