"""``shipnav webhooks subscribe``: register the receiver with ShipStation.

Subscribes SHIP_NOTIFY (new labels) and ORDER_NOTIFY (new orders) through ``POST
/webhooks/subscribe``. A webhook that already points at the same URL for the same event and
store is reused, so running the command twice does not make ShipStation deliver everything twice.
The target URL carries the secret token, so it is never printed, only its redacted form.
"""

import sys
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from shipnav_dagster.settings import Settings, SettingsError
from shipnav_dagster.shipstation.errors import ShipStationError
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.webhooks.app import WEBHOOK_PREFIX

SUBSCRIBED_EVENTS = ("SHIP_NOTIFY", "ORDER_NOTIFY")
FRIENDLY_NAMES = {"SHIP_NOTIFY": "shipnav: on orders shipped", "ORDER_NOTIFY": "shipnav: on new orders"}
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class TargetUrlError(ValueError):
    """The target URL cannot be given to ShipStation."""


@dataclass(frozen=True)
class Subscription:
    event: str
    webhook_id: int | None  # None only if ShipStation answered without an id
    created: bool  # False: an identical webhook already existed


@dataclass
class SubscribeResult:
    subscriptions: list[Subscription] = field(default_factory=list)
    reminders: list[str] = field(default_factory=list)


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
    assert s.shipstation_api_key is not None and s.shipstation_api_secret is not None
    return ShipStationClient(
        s.shipstation_api_url,
        s.shipstation_api_key.get_secret_value(),
        s.shipstation_api_secret.get_secret_value(),
        timeout=s.shipnav_http_timeout_seconds,
    )


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
    """Subscribe SHIP_NOTIFY and ORDER_NOTIFY to ``target_url``; TargetUrlError before any request."""
    token = settings.shipnav_webhook_token.get_secret_value() if settings.shipnav_webhook_token else None
    target_url = target_url.strip()
    result = SubscribeResult(reminders=check_target_url(target_url, token))
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
    for sub in result.subscriptions:
        verb = "subscribed" if sub.created else "already subscribed"
        ident = sub.webhook_id if sub.webhook_id is not None else "(no id returned)"
        print(f"{sub.event}: {verb}, webhook id {ident} -> {shown}{store}", file=out)
    for reminder in result.reminders:
        print(f"reminder: {reminder}", file=err)
    return 0
