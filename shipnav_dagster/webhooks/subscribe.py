"""``shipnav webhooks subscribe``: register the receiver with ShipStation.

V1: SHIP_NOTIFY (new labels) and ORDER_NOTIFY (new orders) through ``POST /webhooks/subscribe``.
V2: LABEL_CREATED_V2 and FULFILLMENT_SHIPPED_V2 through ``POST /v2/environment/webhooks``, each
with the custom header ``X-Shipnav-Webhook-Secret`` that ShipStation sends back with every
notification and the receiver checks (SHIPNAV_WEBHOOK_HEADER_SECRET, else SHIPNAV_WEBHOOK_TOKEN).
A webhook that already points at the same URL for the same event and store is reused (on V2 its
header is brought up to date), so running the command twice does not make ShipStation deliver
everything twice; a V2 webhook of the same event pointing elsewhere is left alone and reported
(V2 allows one per event). The target URL carries the secret token, so it is never printed, only
its redacted form; the header's value is never printed either.
"""

import sys
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from shipnav_dagster.settings import Settings, SettingsError
from shipnav_dagster.shipstation.errors import ShipStationError
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.shipstation.v2.client import ShipStationV2Client
from shipnav_dagster.webhooks.app import SECRET_HEADER, WEBHOOK_PREFIX

SUBSCRIBED_EVENTS = ("SHIP_NOTIFY", "ORDER_NOTIFY")
V2_EVENTS = ("LABEL_CREATED_V2", "FULFILLMENT_SHIPPED_V2")
FRIENDLY_NAMES = {
    "SHIP_NOTIFY": "shipnav: on orders shipped",
    "ORDER_NOTIFY": "shipnav: on new orders",
    "LABEL_CREATED_V2": "shipnav: on labels created",
    "FULFILLMENT_SHIPPED_V2": "shipnav: on orders marked shipped",
}
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class TargetUrlError(ValueError):
    """The target URL cannot be given to ShipStation."""


@dataclass(frozen=True)
class Subscription:
    event: str
    webhook_id: int | str | None  # V1 a number, V2 "se-…"; None if ShipStation gave no id
    created: bool  # False: an identical webhook already existed
    updated: bool = False  # V2: it existed, and its secret header was set anew


@dataclass
class SubscribeResult:
    subscriptions: list[Subscription] = field(default_factory=list)
    reminders: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # V2 events another webhook already takes


def check_target_url(target_url: str, token: str | None) -> list[str]:
    """Refuse what ShipStation must not be given; reminders for what is merely suspicious.

    https only, because the path token is the receiver's only protection and plain http shows
    it to everything on the way; http is allowed for localhost, for testing.
    """
    parts = urlsplit(target_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise TargetUrlError("the target URL must be an absolute https:// URL")
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise TargetUrlError(
            "the target URL must use https (the secret token in its path would travel in clear "
            "text); plain http is accepted only for localhost"
        )
    if parts.username or parts.password:
        raise TargetUrlError("the target URL must not contain a user name or password")
    expected_path = WEBHOOK_PREFIX + (token or "")
    reminders = []
    if not token:
        reminders.append(
            "SHIPNAV_WEBHOOK_TOKEN is not set here: the receiver answers 404 to every notification "
            "until it is set to the token in the target URL's path"
        )
    elif not parts.path.rstrip("/").endswith(expected_path):
        reminders.append(
            f"the target URL's path does not end in {WEBHOOK_PREFIX}<SHIPNAV_WEBHOOK_TOKEN>; the "
            "receiver answers 404 to anything else (include the token in the path)"
        )
    return reminders


def redact_target_url(target_url: str, token: str | None) -> str:
    """The target URL as it may be printed: token and anything after the prefix replaced."""
    parts = urlsplit(target_url.strip())
    path = parts.path
    if WEBHOOK_PREFIX in path:
        path = path[: path.index(WEBHOOK_PREFIX) + len(WEBHOOK_PREFIX)] + "***"
    elif token and token in path:
        path = path.replace(token, "***")
    return parts._replace(path=path, query="***" if parts.query else "", fragment="").geturl()


def _client(settings: Settings) -> ShipStationClient:
    s = settings.require(shipstation=True, nav=False)
    return ShipStationClient(
        s.shipstation_url,
        s.value("shipstation_api_key"),
        s.value("shipstation_api_secret"),
        timeout=s.shipnav_http_timeout_seconds,
    )


def _v2_client(settings: Settings) -> ShipStationV2Client:
    s = settings.require(shipstation=True, nav=False)
    return ShipStationV2Client(
        s.shipstation_url, s.value("shipstation_api_key"), timeout=s.shipnav_http_timeout_seconds
    )


def header_secret(settings: Settings) -> str | None:
    """The value of the V2 subscription's secret header: its own setting, else the path token."""
    for value in (settings.shipnav_webhook_header_secret, settings.shipnav_webhook_token):
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
    return None


def _existing_hook_id(
    hooks: list[dict[str, object]], target_url: str, event: str, store_id: int | None
) -> int | None:
    for hook in hooks:
        if (
            hook.get("Url") == target_url
            and hook.get("HookType") == event
            and hook.get("StoreID") == store_id
            and hook.get("Active", True)
        ):
            hook_id = hook.get("WebHookID")
            return hook_id if isinstance(hook_id, int) else None
    return None


def subscribe(
    settings: Settings,
    target_url: str,
    store_id: int | None = None,
    *,
    client: ShipStationClient | None = None,
) -> SubscribeResult:
    """Subscribe the configured generation's events to ``target_url``; TargetUrlError before any
    request."""
    token = settings.shipnav_webhook_token.get_secret_value() if settings.shipnav_webhook_token else None
    target_url = target_url.strip()
    result = SubscribeResult(reminders=check_target_url(target_url, token))
    if settings.shipstation_version == "v2":
        secret = header_secret(settings)
        if not secret:
            raise TargetUrlError(
                "set SHIPNAV_WEBHOOK_TOKEN (or SHIPNAV_WEBHOOK_HEADER_SECRET) first: V2 webhooks send "
                f"it back in the {SECRET_HEADER} header, and the receiver refuses notifications without it"
            )
        v2 = _v2_client(settings)
        try:
            _subscribe_v2(v2, target_url, secret, store_id, result)
        finally:
            v2.close()
        return result
    own = client is None
    client = client or _client(settings)
    try:
        hooks = client.list_webhooks()
        for event in SUBSCRIBED_EVENTS:
            existing = _existing_hook_id(hooks, target_url, event, store_id)
            if existing is not None:
                result.subscriptions.append(Subscription(event, existing, created=False))
                continue
            answer = client.subscribe_webhook(target_url, event, store_id, FRIENDLY_NAMES[event])
            hook_id = answer if isinstance(answer, int) else None
            result.subscriptions.append(Subscription(event, hook_id, created=True))
    finally:
        if own:
            client.close()
    return result


def _subscribe_v2(
    client: ShipStationV2Client, target_url: str, secret: str, store_id: int | None, result: SubscribeResult
) -> None:
    hooks = client.list_webhooks()
    headers = [{"key": SECRET_HEADER, "value": secret}]
    for event in V2_EVENTS:
        same_event = [
            h for h in hooks if str(h.get("event", "")).upper() == event and h.get("store_id") == store_id
        ]
        mine = next((h for h in same_event if h.get("url") == target_url), None)
        if mine is not None:
            hook_id = mine.get("webhook_id")
            sent = {str(h.get("key", "")).lower(): h.get("value") for h in mine.get("headers") or []}
            stale = sent.get(SECRET_HEADER.lower()) != secret
            if stale and isinstance(hook_id, str):
                client.update_webhook(hook_id, target_url, headers)
            result.subscriptions.append(Subscription(event, hook_id, created=False, updated=stale))
        elif same_event:
            other = same_event[0].get("webhook_id")
            result.conflicts.append(
                f"{event}: ShipStation already has webhook {other} for this event pointing elsewhere "
                "(V2 allows one per event); shipnav left it alone: delete it in ShipStation, or point "
                "it at the receiver, and run this again"
            )
        else:
            made = client.create_webhook(target_url, event, headers, FRIENDLY_NAMES[event], store_id)
            result.subscriptions.append(Subscription(event, made.get("webhook_id"), created=True))


def run_subscribe(
    settings: Settings,
    target_url: str,
    store_id: int | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The CLI command: subscribe, print one line per webhook, return the exit code."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    token = settings.shipnav_webhook_token.get_secret_value() if settings.shipnav_webhook_token else None
    try:
        result = subscribe(settings, target_url, store_id)
    except TargetUrlError as exc:
        print(f"shipnav webhooks subscribe: {exc}", file=err)
        return 2
    except SettingsError as exc:
        print(f"shipnav webhooks subscribe: {exc}", file=err)
        return 2
    except ShipStationError as exc:
        message = str(exc).replace(token, "***") if token else str(exc)
        print(f"shipnav webhooks subscribe: ShipStation refused: {message}", file=err)
        return 1
    shown = redact_target_url(target_url, token)
    store = f" (store {store_id})" if store_id is not None else ""
    header = f" with the {SECRET_HEADER} header" if settings.shipstation_version == "v2" else ""
    for sub in result.subscriptions:
        verb = "subscribed" if sub.created else "already subscribed"
        if sub.updated:
            verb += f", {SECRET_HEADER} header updated"
        ident = sub.webhook_id if sub.webhook_id is not None else "(no id returned)"
        print(f"{sub.event}: {verb}, webhook id {ident} -> {shown}{store}{header}", file=out)
    for reminder in result.reminders:
        print(f"reminder: {reminder}", file=err)
    for conflict in result.conflicts:
        print(f"shipnav webhooks subscribe: {conflict}", file=err)
    return 1 if result.conflicts else 0
