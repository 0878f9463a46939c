"""``shipnav check`` for ShipStation API V2: the key, each endpoint a sync reads, the budget.

One small request per endpoint (``page_size=1``): ``/v2/labels`` (new and voided labels),
``/v2/shipments`` (the order context), ``/v2/fulfillments`` (orders marked shipped) and
``/v2/environment/webhooks`` (only ``shipnav webhooks subscribe`` needs it, so a refusal there is
a warning). V2 reports no rate-limit budget until it is spent (a 429 with ``Retry-After``), so the
check says what it used and whether it was refused.
"""

import time
from collections.abc import Callable

from shipnav_dagster.cli.check.report import (
    ATTEMPTS,
    BACKOFF_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MAX_WAIT_SECONDS,
    CheckResult,
    _one_line,
    fail,
    ok,
    safe_url,
    warn,
)
from shipnav_dagster.cli.check.shipstation import SS, failure
from shipnav_dagster.settings import DEFAULT_SHIPSTATION_V2_URL, Settings
from shipnav_dagster.shipstation.errors import ShipStationError
from shipnav_dagster.shipstation.v2.client import ShipStationV2Client

# (path, query, what shipnav reads there)
READS: tuple[tuple[str, dict[str, str], str], ...] = (
    ("/v2/labels", {"label_status": "voided"}, "voided labels"),
    ("/v2/shipments", {}, "shipments (the order context)"),
    ("/v2/fulfillments", {}, "fulfillments (orders marked shipped)"),
)
WEBHOOKS = "/v2/environment/webhooks"


def check_shipstation_v2(
    settings: Settings, *, sleep: Callable[[float], None] = time.sleep
) -> list[CheckResult]:
    url = safe_url(settings.shipstation_url)
    client = ShipStationV2Client(
        settings.shipstation_url,
        settings.value("shipstation_api_key"),
        timeout=min(float(settings.shipnav_http_timeout_seconds), MAX_TIMEOUT_SECONDS),
        max_attempts=ATTEMPTS,
        sleep=sleep,
        backoff_initial=BACKOFF_SECONDS,
        backoff_max=BACKOFF_SECONDS * 4,
        max_rate_wait=MAX_WAIT_SECONDS,
    )
    with client:
        try:
            first = client.probe("/v2/labels")
        except ShipStationError as exc:
            return [v2_failure(exc, url, settings)]
        total = first.get("total") if isinstance(first, dict) else None
        seen = f"{total} labels in the account" if isinstance(total, int) else "labels readable"
        results = [ok(SS, f"API key accepted by {url} (ShipStation API V2, GET /v2/labels: {seen})")]
        for path, query, what in READS:
            try:
                client.probe(path, query)
            except ShipStationError as exc:
                results.append(v2_failure(exc, url, settings))
            else:
                results.append(ok(SS, f"GET {path} readable: {what}"))
        try:
            client.list_webhooks()
        except ShipStationError as exc:
            results.append(
                warn(
                    SS,
                    f"GET {WEBHOOKS} refused ({_one_line(str(exc), 160)})",
                    "only `shipnav webhooks subscribe` needs it; polling works without",
                )
            )
        else:
            results.append(ok(SS, f"GET {WEBHOOKS} readable (for shipnav webhooks subscribe)"))
        results.append(budget_result(client))
    return results


def budget_result(client: ShipStationV2Client) -> CheckResult:
    used, limit = client.stats.total_requests, client.budget.limit
    text = (
        f"rate limit: {limit} requests per minute assumed (ShipStation V2 reports the budget only "
        f"when it is spent); this check used {used}"
    )
    if client.stats.throttled:
        return warn(
            SS,
            f"{text}, and ShipStation answered 429 {client.stats.throttled} time(s)",
            "another client uses this API key heavily; syncs will wait Retry-After and be slowed down",
        )
    return ok(SS, f"{text}, none refused")


def v2_failure(exc: ShipStationError, url: str, settings: Settings) -> CheckResult:
    """A V2 request refused or unanswered, as one line with what to do."""
    secret = settings.shipstation_api_secret
    hint = (
        "SHIPSTATION_API_SECRET is set, so this may be a V1 key + secret pair: V1 keys do not work "
        "with V2; set SHIPSTATION_API_VERSION=v1 for them"
        if secret is not None and secret.get_secret_value()
        else "a V1 key does not work with V2: for a V1 key + secret pair set SHIPSTATION_API_VERSION=v1 "
        "and SHIPSTATION_API_SECRET"
    )
    return failure(
        exc,
        url,
        rejected=lambda where: fail(
            SS,
            f"ShipStation rejected SHIPSTATION_API_KEY as a V2 API key ({exc.status}, {where})",
            f"use a V2 API key from ShipStation Settings > Account > API Settings; {hint}",
        ),
        api_root=f"the V2 API root without /v2, e.g. {DEFAULT_SHIPSTATION_V2_URL}",
    )
