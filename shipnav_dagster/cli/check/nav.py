"""``shipnav check`` for NAV: the token (or Basic login), $metadata, both services with the fields
shipnav reads and writes, the lines containment and the tracking length."""

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipnav_dagster.cli.check.platform import learned_platform, platform_result
from shipnav_dagster.cli.check.report import (
    ATTEMPTS,
    BACKOFF_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MAX_WAIT_SECONDS,
    POSTED_SHIPMENT_PAGE,
    SALES_ORDER_PAGE,
    CheckResult,
    Level,
    _one_line,
    fail,
    ok,
    safe_url,
    warn,
)
from shipnav_dagster.cli.check.settings import _missing
from shipnav_dagster.nav.auth import OAuth2ClientCredentials
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import LINE_SELECT, POSTED_SELECT, SALES_ORDER_SELECT, TRACKING_FIELD
from shipnav_dagster.nav.errors import NavAuthError, NavError, NavNotFoundError, NavUnavailableError
from shipnav_dagster.nav.metadata import EntityType, ServiceSchema, parse_metadata
from shipnav_dagster.settings import Settings


@dataclass(frozen=True)
class Service:
    name: str  # as configured
    setting: str  # the variable that names it
    page: int
    caption: str
    fields: Sequence[str]  # what shipnav selects and patches


def not_published(service: Service) -> CheckResult:
    return fail(
        "NAV",
        f"{service.name} is not published",
        f"add page {service.page} on the Web Services page with Service Name {service.name}, "
        f"or set {service.setting}",
    )


def fields_result(service: Service, present: Iterable[str] | None, source: str) -> CheckResult:
    """Whether the service exposes every field shipnav uses (``present`` None: unknown)."""
    if present is None:
        return warn(
            "NAV",
            f"{service.name} ({service.setting}) is published and readable but holds no records, "
            "so its fields could not be verified",
            f"make sure it is page {service.page} ({service.caption}) with {', '.join(service.fields)}",
        )
    missing = [f for f in service.fields if f not in set(present)]
    if missing:
        return fail(
            "NAV",
            f"{service.name} ({service.setting}) lacks {', '.join(missing)} ({source})",
            f"publish page {service.page} ({service.caption}) itself, with these controls visible",
        )
    return ok(
        "NAV",
        f"{service.name} ({service.setting}) is published and readable with the "
        f"{len(service.fields)} fields shipnav reads and writes ({source})",
    )


def tracking_length_result(nav_length: int | None, configured: int) -> CheckResult:
    if nav_length is None:
        return ok(
            "NAV",
            f"NAV does not state the length of {TRACKING_FIELD} in $metadata; "
            f"using NAV_TRACKING_MAX_LENGTH={configured}",
        )
    if nav_length != configured:
        return warn(
            "NAV",
            f"{TRACKING_FIELD}: NAV says {nav_length}, NAV_TRACKING_MAX_LENGTH is {configured}",
            f"set it to {nav_length}",
        )
    return ok("NAV", f"tracking numbers up to {nav_length} characters ({TRACKING_FIELD} in $metadata)")


def lines_result(
    segment: str, navigation: Mapping[str, str] | None, required: bool, line_type: EntityType | None
) -> CheckResult:
    """The containment of the order's lines; only needed when line quantities are written."""
    level = Level.FAIL if required else Level.WARN
    why = "" if required else " (only needed with SHIPNAV_WRITE_LINE_QUANTITIES=true)"
    if navigation is None:
        return warn("NAV", f"{segment} (NAV_SALES_LINES_SEGMENT) could not be verified (no order to read)")
    if segment not in navigation:
        offered = f"; SalesOrder offers {', '.join(sorted(navigation))}" if navigation else ""
        return CheckResult(
            "NAV",
            level,
            f"{segment} (NAV_SALES_LINES_SEGMENT) is not a containment of the sales order{why}{offered}",
            f"publish page {SALES_ORDER_PAGE} with its lines part (page 46), or set NAV_SALES_LINES_SEGMENT",
        )
    if line_type is not None:
        missing = [f for f in LINE_SELECT if f not in line_type.properties]
        if missing:
            return CheckResult("NAV", level, f"{segment} lacks {', '.join(missing)}{why}")
    return ok("NAV", f"{segment} (NAV_SALES_LINES_SEGMENT) present")


# --------------------------------------------------------------------------------------------
# NAV: the I/O
# --------------------------------------------------------------------------------------------

_AADSTS = re.compile(r"AADSTS\d+")
# Entra error codes -> the setting that is wrong.
_TOKEN_SETTING = {
    "invalid_client": "NAV_CLIENT_SECRET",
    "unauthorized_client": "NAV_CLIENT_ID",
    "invalid_scope": "NAV_SCOPE",
    "invalid_tenant": "NAV_TOKEN_URL",
}
_TOKEN_FIX = {
    "NAV_CLIENT_SECRET": "use the secret's Value (not its ID) from the app registration, or create "
    "a new client secret if it expired",
    "NAV_CLIENT_ID": "use the Application (client) ID of the app registration in the tenant of NAV_TOKEN_URL",
    "NAV_SCOPE": "use https://api.businesscentral.dynamics.com/.default (the default)",
    "NAV_TOKEN_URL": "use https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token with your tenant",
}


class _Stop(Exception):
    """A NAV failure after which nothing else can be checked (credentials, host)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def token_failure(exc: NavError) -> CheckResult:
    """Which of NAV_TOKEN_URL / NAV_CLIENT_ID / NAV_CLIENT_SECRET / NAV_SCOPE to fix."""
    if isinstance(exc, NavUnavailableError):
        what = "unreachable" if exc.status == 0 else f"answered HTTP {exc.status}"
        return fail(
            "NAV",
            f"the OAuth token endpoint is {what} ({exc.code})",
            "check NAV_TOKEN_URL and the network or proxy",
        )
    aadsts = _AADSTS.search(exc.message)
    detail = f"{exc.code}{', ' + aadsts.group(0) if aadsts else ''}, HTTP {exc.status}"
    setting = _TOKEN_SETTING.get(exc.code)
    if setting is None and exc.status == 404:
        setting = "NAV_TOKEN_URL"
    if setting is None:
        return fail(
            "NAV",
            f"no OAuth token from NAV_TOKEN_URL ({detail})",
            "check NAV_TOKEN_URL, NAV_CLIENT_ID, NAV_CLIENT_SECRET and NAV_SCOPE",
        )
    return fail("NAV", f"the OAuth token endpoint rejected {setting} ({detail})", _TOKEN_FIX[setting])


def nav_access_failure(exc: NavError, settings: Settings) -> CheckResult:
    """NAV itself refused the credentials (401) or access (403), or could not be reached."""
    where = safe_url(settings.nav_odata_url)
    if isinstance(exc, NavUnavailableError) and exc.status == 0:
        return fail(
            "NAV",
            f"NAV unreachable at {where} ({exc.code})",
            "check NAV_ODATA_URL, that the OData V4 port is open and OData V4 is enabled on the server",
        )
    if exc.code == "Internal_CompanyNotFound":
        return fail(
            "NAV", f"NAV does not know the company in NAV_ODATA_URL ({exc.code})", "check its spelling"
        )
    if exc.status == 403:
        return fail(
            "NAV",
            f"NAV refused access (403 {exc.code})",
            "give the NAV user / Entra app permission to read and modify sales orders and posted shipments",
        )
    if settings.nav_auth == "oauth2":
        return fail(
            "NAV",
            f"NAV rejected the OAuth token (HTTP {exc.status} {exc.code}) although NAV_TOKEN_URL issued it",
            "register NAV_CLIENT_ID on Business Central's Microsoft Entra Applications page with "
            "permission sets, and keep NAV_SCOPE the Business Central audience",
        )
    return fail(
        "NAV",
        f"NAV rejected NAV_USERNAME / NAV_PASSWORD (HTTP {exc.status} {exc.code})",
        "check the user name and the password or web service access key (NavUserPassword)",
    )


def _stops(exc: NavError) -> bool:
    return (
        isinstance(exc, NavAuthError)
        or (isinstance(exc, NavUnavailableError) and exc.status == 0)
        or (exc.code == "Internal_CompanyNotFound")
    )


def _first(client: NavClient, path: str) -> dict[str, Any] | None:
    rows = client.query(path, top=1)
    try:
        return next(rows, None)
    finally:
        rows.close()  # type: ignore[attr-defined]


def nav_services(settings: Settings) -> tuple[Service, Service]:
    return (
        Service(
            settings.nav_sales_order_service,
            "NAV_SALES_ORDER_SERVICE",
            SALES_ORDER_PAGE,
            "Sales Order",
            [f for f in SALES_ORDER_SELECT if f != "Document_Type"],
        ),
        Service(
            settings.nav_posted_shipment_service,
            "NAV_POSTED_SHIPMENT_SERVICE",
            POSTED_SHIPMENT_PAGE,
            "Posted Sales Shipment",
            list(POSTED_SELECT),
        ),
    )


def check_nav(settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> list[CheckResult]:
    """Token (or Basic), $metadata, both services with their fields, the lines, the tracking length."""
    missing = settings.missing_for_nav()
    if missing:
        return [_missing(settings, "NAV", missing, f" (NAV_AUTH={settings.nav_auth})")]
    client = NavClient.from_settings(
        settings,
        timeout=min(float(settings.shipnav_http_timeout_seconds), MAX_TIMEOUT_SECONDS),
        max_attempts=ATTEMPTS,
        sleep=sleep,
        max_retry_after=MAX_WAIT_SECONDS,
        backoff_initial=BACKOFF_SECONDS,
        backoff_max=BACKOFF_SECONDS * 4,
    )
    results: list[CheckResult] = []
    with client:
        try:
            _check_nav(client, settings, results)
        except _Stop as stop:
            results.append(stop.result)
            return results
    results.append(platform_result(settings.nav_platform, settings.nav_odata_url, learned_platform(settings)))
    return results


def _check_nav(client: NavClient, settings: Settings, results: list[CheckResult]) -> None:
    if isinstance(client.auth, OAuth2ClientCredentials):
        try:
            client.auth.token()
        except NavError as exc:
            raise _Stop(token_failure(exc)) from None
        results.append(ok("NAV", f"OAuth token obtained from {safe_url(settings.nav_token_url)}"))
    schema = _read_metadata(client, settings, results)
    orders, posted = nav_services(settings)
    orders_published, sample = _check_service(client, settings, orders, schema, results)
    _check_service(client, settings, posted, schema, results)
    if not orders_published:
        return  # lines and tracking length live on the order; its FAIL line says what to do
    segment, required = client.sales_lines_segment, settings.shipnav_write_line_quantities
    order_type = schema.entity(orders.name) if schema is not None else None
    if order_type is not None:
        line_type = schema.types.get(order_type.navigation.get(segment, "")) if schema else None
        results.append(lines_result(segment, order_type.navigation, required, line_type))
        nav_length = order_type.properties.get(TRACKING_FIELD)
    else:
        results.append(_probe_lines(client, sample, required))
        nav_length = None
    results.append(tracking_length_result(nav_length, settings.nav_tracking_max_length))


def _read_metadata(client: NavClient, settings: Settings, results: list[CheckResult]) -> ServiceSchema | None:
    try:
        schema = parse_metadata(client.metadata())
    except NavError as exc:
        if _stops(exc):
            raise _Stop(nav_access_failure(exc, settings)) from None
        hint = " (is NAV_ODATA_URL the OData V4 service root?)" if exc.status == 404 else ""
        results.append(warn("NAV", f"$metadata not readable: {exc.code}{hint}; reading one record instead"))
        return None
    except ET.ParseError:
        results.append(warn("NAV", "$metadata is not valid XML; reading one record instead"))
        return None
    if settings.nav_auth == "basic":
        results.append(ok("NAV", f"Basic credentials of NAV_USERNAME={settings.nav_username} accepted"))
    count = len(schema.entity_sets)
    results.append(ok("NAV", f"$metadata readable ({count} service{'' if count == 1 else 's'} published)"))
    return schema


def _check_service(
    client: NavClient,
    settings: Settings,
    service: Service,
    schema: ServiceSchema | None,
    results: list[CheckResult],
) -> tuple[bool, dict[str, Any] | None]:
    """Whether it is published, and its first record.

    One $top=1 read proves read permission (a readable $metadata does not); the fields come from
    $metadata, or from that record when $metadata could not be read.
    """
    entity = schema.entity(service.name) if schema is not None else None
    if schema is not None and entity is None:
        results.append(not_published(service))
        return False, None
    try:
        row = _first(client, service.name)
    except NavError as exc:
        if _stops(exc):
            raise _Stop(nav_access_failure(exc, settings)) from None
        if isinstance(exc, NavNotFoundError) and exc.code in ("BadRequest_ResourceNotFound", "HTTP404"):
            results.append(not_published(service))
            return False, None
        results.append(fail("NAV", f"reading {service.name} failed: {exc.code}: {_one_line(exc.message)}"))
        return True, None
    if entity is not None:
        results.append(fields_result(service, entity.properties, "$metadata"))
    else:
        present = [k for k in row if not k.startswith("@")] if row is not None else None
        results.append(fields_result(service, present, "read with $top=1"))
    return True, row


def _probe_lines(client: NavClient, order: dict[str, Any] | None, required: bool) -> CheckResult:
    """Without $metadata: read one line of the sample order through the containment."""
    segment = client.sales_lines_segment
    if order is None:
        return lines_result(segment, None, required, None)
    try:
        _first(client, client.lines_path(str(order.get("No", ""))))
    except NavError as exc:
        if exc.status == 404:
            return lines_result(segment, {}, required, None)
        return warn("NAV", f"{segment} (NAV_SALES_LINES_SEGMENT) could not be read: {exc.code}")
    return lines_result(segment, {segment: segment}, required, None)
