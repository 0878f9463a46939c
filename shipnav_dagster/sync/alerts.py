"""Telling a person that a run failed: one small JSON POST to the operator's webhook URL."""

import json

import httpx

TIMEOUT_SECONDS = 10


def announce_failure(url: str, *, job: str, run_id: str, first_line: str) -> str | None:
    """POST ``{"text", "job", "run_id"}`` (Slack- and Teams-style incoming webhooks read ``text``);
    None when it was delivered, else what went wrong (never the URL, which may hold a token)."""
    notice = {"text": f"shipnav: {job} run {run_id} failed: {first_line}", "job": job, "run_id": run_id}
    try:
        response = httpx.post(
            url,
            content=json.dumps(notice),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if response.is_success else f"HTTP {response.status_code}"
