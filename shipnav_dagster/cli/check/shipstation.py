"""``shipnav check`` for ShipStation V1: credentials, rate limit, stores, one small /shipments read.

The configured generation decides which check runs (``check_shipstation``); V2's is in
``shipstation_v2.py``.
"""

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from urllib.parse import urlsplit

from shipnav_dagster.cli.check.report import (
    ATTEMPTS,
    BACKOFF_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MAX_WAIT_SECONDS,
    STORES_LISTED,
    CheckResult,
    _one_line,
    fail,
    ok,
    safe_url,
    warn,
)
from shipnav_dagster.cli.check.settings import _missing
from shipnav_dagster.settings import DEFAULT_SHIPSTATION_URL, DEFAULT_SHIPSTATION_V2_URL, Settings
from shipnav_dagster.shipstation.errors import (
    ShipStationAuthError,
    ShipStationError,
    ShipStationRateLimited,
    ShipStationRequestError,
    ShipStationTransportError,
)
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.shipstation.v1.stores import Store

SS = "ShipStation"
V1_HOSTS = frozenset({"ssapi.shipstation.com"})
V2_HOSTS = frozenset({"api.shipstation.com"})


def check_shipstation(
    settings: Settings, *, sleep: Callable[[float], None] = time.sleep, now: datetime | None = None
) -> list[CheckResult]:
    """Credentials and rate limit (GET /stores), the stores, and one small GET /shipments."""
    missing = settings.missing_for_shipstation()
    if missing:
        return [_missing(settings, SS, missing, f" (SHIPSTATION_API_VERSION={settings.shipstation_version})")]
    mismatch = generation_mismatch(settings)
    if mismatch is not None:
        return [mismatch]
    if settings.shipstation_version == "v2":
        from shipnav_dagster.cli.check.shipstation_v2 import check_shipstation_v2

        return check_shipstation_v2(settings, sleep=sleep)
    url = safe_url(settings.shipstation_url)
    client = ShipStationClient(
        settings.shipstation_url,
        settings.shipstation_api_key.get_secret_value(),  # type: ignore[union-attr]
        settings.shipstation_api_secret.get_secret_value(),  # type: ignore[union-attr]
        timeout=min(float(settings.shipnav_http_timeout_seconds), MAX_TIMEOUT_SECONDS),
        max_attempts=ATTEMPTS,
        page_size=1,
        sleep=sleep,
        backoff_initial=BACKOFF_SECONDS,
        backoff_max=BACKOFF_SECONDS * 4,
        max_rate_wait=MAX_WAIT_SECONDS,
    )
    with client:
        try:
            stores = client.list_stores(show_inactive=True)
        except ShipStationError as exc:
            return [shipstation_failure(exc, url)]
        results = [
            ok(SS, f"credentials accepted by {url} (GET /stores)"),
            rate_limit_result(client.stats.limit, client.stats.remaining, client.stats.reset),
            stores_result(stores),
        ]
        end = now or datetime.now(UTC)
        try:
            # page_size=1 and one item taken: exactly one request, whatever the account holds.
            labels = list(islice(client.iter_shipments_created(end - timedelta(days=1), end), 1))
        except ShipStationError as exc:
            results.append(shipstation_failure(exc, url))
        else:
            seen = "at least one label" if labels else "no labels"
            results.append(ok(SS, f"GET /shipments readable ({seen} created in the last 24 hours)"))
    return results


def generation_mismatch(settings: Settings) -> CheckResult | None:
    """SHIPSTATION_API_URL on the other generation's public host: say so before any request."""
    host = (urlsplit(settings.shipstation_url).hostname or "").lower()
    version = settings.shipstation_version
    other = {"v1": V2_HOSTS, "v2": V1_HOSTS}[version]
    if host not in other:
        return None
    right = DEFAULT_SHIPSTATION_URL if version == "v1" else DEFAULT_SHIPSTATION_V2_URL
    return fail(
        SS,
        f"SHIPSTATION_API_URL is the ShipStation API {'V2' if version == 'v1' else 'V1'} host while "
        f"SHIPSTATION_API_VERSION is {version}",
        f"set SHIPSTATION_API_URL to {right} (or unset it), or set SHIPSTATION_API_VERSION to the "
        "generation of your API key",
    )


def shipstation_failure(exc: ShipStationError, url: str) -> CheckResult:
    """A V1 request refused or unanswered, as one line with what to do."""
    return failure(
        exc,
        url,
        rejected=lambda where: fail(
            SS,
            f"ShipStation rejected SHIPSTATION_API_KEY / SHIPSTATION_API_SECRET ({exc.status}, {where})",
            "use the V1 API key and secret from ShipStation Settings > Account > API Settings; "
            "a V2 API key does not work with V1: for one, set SHIPSTATION_API_VERSION=v2",
        ),
        api_root="the V1 API root, e.g. https://ssapi.shipstation.com",
    )


def failure(
    exc: ShipStationError, url: str, *, rejected: Callable[[str], CheckResult], api_root: str
) -> CheckResult:
    """What both generations' checks say when ShipStation refuses or cannot be reached; only the
    refused-credentials line (``rejected``, given where) and the API root differ."""
    where = " ".join(p for p in (exc.method, exc.path) if p)
    if isinstance(exc, ShipStationAuthError):
        return rejected(where)
    if isinstance(exc, ShipStationTransportError):
        return fail(
            SS,
            f"ShipStation unreachable at {url} ({_one_line(exc.message)})",
            "check SHIPSTATION_API_URL and the network or proxy between here and ShipStation",
        )
    if isinstance(exc, ShipStationRateLimited):
        wait = f"; retry after {exc.reset_seconds:g} s" if exc.reset_seconds is not None else ""
        return fail(
            SS,
            f"ShipStation rate limit exhausted (429, {where}){wait}",
            "another client uses the same API key; run the check again in a minute",
        )
    if isinstance(exc, ShipStationRequestError) and exc.status == 404:
        return fail(SS, f"{url} answered 404 for {where}", f"SHIPSTATION_API_URL must be {api_root}")
    return fail(SS, f"{_one_line(str(exc))} at {url}")


def rate_limit_result(limit: int | None, remaining: int | None, reset: int | None) -> CheckResult:
    if remaining is None or limit is None:
        return warn(
            SS,
            "no X-Rate-Limit headers in the answer",
            "is SHIPSTATION_API_URL the V1 API (https://ssapi.shipstation.com)?",
        )
    if limit <= 0:
        return ok(SS, "rate limit: none reported (X-Rate-Limit-Limit 0)")
    resets = f", window resets in {reset} s" if reset is not None else ""
    text = f"rate limit: {remaining} of {limit} requests left{resets}"
    if remaining <= max(1, limit // 5):
        # The sync paces itself, but a nearly spent budget means someone else uses this key.
        return warn(SS, text, "another client uses this API key heavily; syncs will be slowed down")
    return ok(SS, text)


def stores_result(stores: Sequence[Store]) -> CheckResult:
    if not stores:
        return warn(SS, "no stores in this account", "connect a store in ShipStation, or check the API key")

    def describe(store: Store) -> str:
        state = {True: "active", False: "inactive", None: "status unknown"}[store.active]
        return f"{store.store_name or '(no name)'} (id {store.store_id}, {state})"

    shown = ", ".join(describe(s) for s in stores[:STORES_LISTED])
    more = f", and {len(stores) - STORES_LISTED} more" if len(stores) > STORES_LISTED else ""
    noun = "store" if len(stores) == 1 else "stores"
    return ok(SS, f"{len(stores)} {noun}: {shown}{more}")
