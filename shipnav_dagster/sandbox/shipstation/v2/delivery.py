"""Sending the queued V2 webhook notifications, to this machine only.

The sandbox delivers when asked (``deliver_webhooks`` here, ``SandboxServers.deliver_v2_webhooks``,
or ``POST /_sandbox/webhooks/deliver`` on the V2 server), so tests decide when a notification
arrives. Each goes out once, as a JSON POST carrying the subscription's custom headers; a
subscription deleted meanwhile gets nothing. Real deliveries are also RSA-signed
(``x-shipengine-rsa-sha256-*`` headers); the sandbox does not sign.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from shipnav_dagster.sandbox.state import SandboxWorld

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
NOT_LOOPBACK = "not delivered: the sandbox only calls loopback URLs"


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    url: str
    body: dict[str, str]
    status: int | None  # the receiver's HTTP status, None when nothing was answered
    error: str | None = None


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS


def deliver_webhooks(world: SandboxWorld, api_base_url: str, *, timeout: float = 5.0) -> list[Delivery]:
    """POST every queued notification to its subscription's URL; the queue is emptied.

    ``api_base_url`` is the V2 server's base (without ``/v2``); each ``resource_url`` is built on
    it so the receiver can follow it back to this sandbox. Call without holding ``world.lock``:
    a receiver may well call the sandbox while it handles the notification.
    """
    base = api_base_url.rstrip("/")
    with world.lock:
        v2 = world.shipstation.v2
        pending = list(v2.outbox)
        v2.outbox.clear()
        hooks = v2.webhooks
        work = [(note, dict(hooks[note.webhook_id])) for note in pending if note.webhook_id in hooks]
    results: list[Delivery] = []
    with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
        for note, hook in work:
            body = {"resource_url": f"{base}{note.resource_path}", "resource_type": note.resource_type}
            results.append(_post(client, hook, body))
    return results


def _post(client: httpx.Client, hook: dict[str, Any], body: dict[str, str]) -> Delivery:
    url = hook["url"]
    if not is_loopback(url):
        return Delivery(hook["webhook_id"], url, body, None, NOT_LOOPBACK)
    headers = {h["key"]: h["value"] for h in hook.get("headers") or []}
    try:
        answer = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return Delivery(hook["webhook_id"], url, body, None, f"{type(exc).__name__}: {exc}")
    return Delivery(hook["webhook_id"], url, body, answer.status_code)
