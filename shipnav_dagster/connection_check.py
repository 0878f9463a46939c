"""``shipnav check``: ping ShipStation, NAV and the ledger with the configured settings.

Every check is a small function returning :class:`CheckResult` objects (what works, what does
not, and what to change); :func:`format_report` turns them into text and is pure, so the wording
can be tested without a network. :func:`run` ties both together for the console script.

Secrets never reach the output: messages are built from variable names, URLs without user info
and server error texts the clients already redact, and :func:`format_report` masks every secret
value of the settings (and of the environment, when the settings could not even be loaded) as a
last line of defence.
"""

import base64
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from shipnav_dagster.nav.auth import OAuth2ClientCredentials
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import LINE_SELECT, POSTED_SELECT, SALES_ORDER_SELECT, TRACKING_FIELD
from shipnav_dagster.nav.errors import NavAuthError, NavError, NavNotFoundError, NavUnavailableError
from shipnav_dagster.settings import Settings, SettingsError, load_settings
from shipnav_dagster.shipstation.errors import (
    ShipStationAuthError,
    ShipStationError,
    ShipStationRateLimited,
    ShipStationRequestError,
    ShipStationTransportError,
)
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.shipstation.v1.models import Store

# A check must answer quickly: one retry, short back-off, and no minute-long rate-limit waits.
ATTEMPTS = 2
BACKOFF_SECONDS = 0.2
MAX_WAIT_SECONDS = 5.0
MAX_TIMEOUT_SECONDS = 15.0
STORES_LISTED = 10  # beyond this the line gets unreadable; the rest is counted
QUEUE_STATUSES = ("no_order_yet", "needs_attention", "failed")
SALES_ORDER_PAGE, POSTED_SHIPMENT_PAGE = 42, 130


class Level(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    system: str  # Settings | ShipStation | NAV | Ledger
    level: Level
    message: str
    fix: str = ""  # what the operator should change; empty when there is nothing to do

    @property
    def text(self) -> str:
        return f"{self.message}: {self.fix}" if self.fix else self.message


def ok(system: str, message: str) -> CheckResult:
    return CheckResult(system, Level.OK, message)


def warn(system: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(system, Level.WARN, message, fix)


def fail(system: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(system, Level.FAIL, message, fix)


@dataclass
class Report:
    results: list[CheckResult] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # values masked in the output

    def count(self, level: Level) -> int:
        return sum(1 for r in self.results if r.level is level)

    @property
    def exit_code(self) -> int:
        return 1 if self.count(Level.FAIL) else 0


# --------------------------------------------------------------------------------------------
# Formatting (pure)
# --------------------------------------------------------------------------------------------


def format_result(result: CheckResult) -> str:
    return f"{result.level.value:<4} {result.system}: {result.text}"


def format_summary(report: Report) -> str:
    counts = f"{report.count(Level.OK)} OK, {report.count(Level.WARN)} WARN, {report.count(Level.FAIL)} FAIL"
    if report.count(Level.FAIL):
        return f"shipnav check: {counts}; fix the FAIL lines above and run it again"
    if report.count(Level.WARN):
        return f"shipnav check: {counts}; shipnav can run, but read the WARN lines"
    return f"shipnav check: {counts}; ShipStation, NAV and the ledger are ready"


def format_report(report: Report) -> str:
    lines = [format_result(r) for r in report.results] + [format_summary(report)]
    return redact("\n".join(lines), report.secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret containing another is masked whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def safe_url(url: str | None) -> str:
    """The URL without user info, query or fragment (a URL may carry a password or a token)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------

DATABASE_URL = "SHIPNAV_DATABASE_URL"
SECRET_NAMES = tuple(
    name.upper() for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
)


def environment_secrets(environ: Mapping[str, str] | None = None, env_file: str = ".env") -> list[str]:
    """Secret values as configured, for masking when the settings themselves failed to load."""
    values: dict[str, str | None] = {}
    try:
        from dotenv import dotenv_values

        values.update({k.upper(): v for k, v in dotenv_values(env_file).items()})
    except ImportError:  # python-dotenv comes with pydantic-settings; masking is best effort
        pass
    values.update({k.upper(): v for k, v in (os.environ if environ is None else environ).items()})
    found = [v for name in SECRET_NAMES if name != DATABASE_URL and (v := values.get(name)) and len(v) >= 4]
    return found + database_url_secrets(values.get(DATABASE_URL) or "")


def database_url_secrets(url: str) -> list[str]:
    """The password of a database URL (and the URL with it): the rest is shown to operators."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password if url else None
    except Exception:  # unparsable: mask the whole value, it may hold a password
        return [url] if len(url) >= 4 else []
    return [url, str(password)] if password else []


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value, plus the Basic tokens built from them (a proxy could echo those)."""
    url = settings.shipnav_database_url.get_secret_value() if settings.shipnav_database_url else ""
    # The ledger URL is shown with its password hidden, so only the password is masked.
    values = [v for v in settings.secret_values() if v != url] + database_url_secrets(url)

    def plain(value: SecretStr | str | None) -> str:
        return value.get_secret_value() if isinstance(value, SecretStr) else value or ""

    pairs = [
        (plain(settings.shipstation_api_key), plain(settings.shipstation_api_secret)),
        (plain(settings.nav_username), plain(settings.nav_password)),
        (plain(settings.nav_client_id), plain(settings.nav_client_secret)),
    ]
    values += [base64.b64encode(f"{a}:{b}".encode()).decode() for a, b in pairs if a and b]
    return values


def check_settings(
    load: Callable[[], Settings] = load_settings,
) -> tuple[Settings | None, list[CheckResult]]:
    """Load the settings; each invalid variable is its own FAIL line, by name."""
    try:
        settings = load()
    except SettingsError as exc:
        head, *rest = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
        if head.startswith("invalid settings") and rest:  # one line per variable, by name
            fix = "correct it in the environment or .env"
            return None, [fail("Settings", f"invalid {line}", fix) for line in rest]
        return None, [fail("Settings", _one_line(str(exc)))]
    return settings, [ok("Settings", f"loaded (NAV_AUTH={settings.nav_auth})")]


def _missing(settings: Settings, system: str, names: Sequence[str], extra: str = "") -> CheckResult:
    # load_settings() notes why stored secrets could not be read (e.g. the ledger is down):
    # that, not the environment, may be why a secret is missing.
    note = getattr(settings, "_secret_store_note", None)
    why = f" ({_one_line(note, 200)})" if note else ""
    return fail(
        system,
        f"missing {', '.join(names)}{extra}{why}",
        "set them in the environment or .env, or store secrets with `shipnav secrets set NAME`",
    )


# --------------------------------------------------------------------------------------------
# ShipStation
# --------------------------------------------------------------------------------------------

SS = "ShipStation"


def check_shipstation(
    settings: Settings, *, sleep: Callable[[float], None] = time.sleep, now: datetime | None = None
) -> list[CheckResult]:
    """Credentials and rate limit (GET /stores), the stores, and one small GET /shipments."""
    missing = settings.missing_for_shipstation()
    if missing:
        return [_missing(settings, SS, missing)]
    url = safe_url(settings.shipstation_api_url)
    client = ShipStationClient(
        settings.shipstation_api_url,
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


def shipstation_failure(exc: ShipStationError, url: str) -> CheckResult:
    where = " ".join(p for p in (exc.method, exc.path) if p)
    if isinstance(exc, ShipStationAuthError):
        return fail(
            SS,
            f"ShipStation rejected SHIPSTATION_API_KEY / SHIPSTATION_API_SECRET ({exc.status}, {where})",
            "use the V1 API key and secret from ShipStation Settings > Account > API Settings "
            "(V2 API keys do not work)",
        )
    if isinstance(exc, ShipStationTransportError):
        return fail(
            SS,
            f"ShipStation unreachable at {url} ({_one_line(exc.message)})",
            "check SHIPSTATION_API_URL and the network or proxy between here and ShipStation",
        )
    if isinstance(exc, ShipStationRateLimited):
        wait = f"; the window resets in {exc.reset_seconds:g} s" if exc.reset_seconds is not None else ""
        return fail(
            SS,
            f"ShipStation rate limit exhausted (429, {where}){wait}",
            "another client uses the same API key; run the check again in a minute",
        )
    if isinstance(exc, ShipStationRequestError) and exc.status == 404:
        return fail(
            SS,
            f"{url} answered 404 for {where}",
            "SHIPSTATION_API_URL must be the V1 API root, e.g. https://ssapi.shipstation.com",
        )
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


# --------------------------------------------------------------------------------------------
# NAV: $metadata
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityType:
    properties: dict[str, int | None]  # property name -> MaxLength (None: not stated / "max")
    navigation: dict[str, str]  # navigation property name -> target entity type name


@dataclass(frozen=True)
class ServiceSchema:
    entity_sets: dict[str, str]  # published service name -> entity type name
    types: dict[str, EntityType]

    def entity(self, service: str) -> EntityType | None:
        type_name = self.entity_sets.get(service)
        return self.types.get(type_name) if type_name else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _type_name(qualified: str) -> str:
    """``Collection(NAV.SalesLines)`` or ``NAV.SalesLines`` -> ``SalesLines``."""
    inner = qualified.removeprefix("Collection(").removesuffix(")")
    return inner.rsplit(".", 1)[-1]


def _max_length(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def parse_metadata(xml_text: str) -> ServiceSchema:
    """The published entity sets and their properties from a CSDL document (any namespace).

    ElementTree does not fetch external entities and Python's expat limits entity expansion, so a
    hostile document cannot make this read files or exhaust memory.
    """
    root = ET.fromstring(xml_text)
    sets: dict[str, str] = {}
    types: dict[str, EntityType] = {}
    for element in root.iter():
        kind = _local(element.tag)
        if kind == "EntitySet" and element.get("Name"):
            sets[element.get("Name", "")] = _type_name(element.get("EntityType", ""))
        elif kind == "EntityType" and element.get("Name"):
            props: dict[str, int | None] = {}
            navigation: dict[str, str] = {}
            for child in element:
                name = child.get("Name")
                if not name:
                    continue
                if _local(child.tag) == "Property":
                    props[name] = _max_length(child.get("MaxLength"))
                elif _local(child.tag) == "NavigationProperty":
                    navigation[name] = _type_name(child.get("Type", ""))
            types[element.get("Name", "")] = EntityType(props, navigation)
    return ServiceSchema(sets, types)


# --------------------------------------------------------------------------------------------
# NAV: services and fields (pure verdicts)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------


def safe_database_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show its scheme only, it may hold a password
        return url.split(":", 1)[0] + ":…"


def check_ledger(settings: Settings) -> list[CheckResult]:
    from shipnav_dagster.ledger.repository import Ledger

    try:
        url = settings.database_url
    except OSError as exc:  # the default SQLite folder could not be created
        return [
            fail("Ledger", f"no ledger folder: {exc.strerror}", "set SHIPNAV_DATABASE_URL or DAGSTER_HOME")
        ]
    shown = safe_database_url(url)
    ledger = None
    try:
        ledger = Ledger(url).create_all()
        counts = ledger.status_counts()
    except Exception as exc:  # any driver, URL or server failure means "not usable"; all are reported
        first = _one_line(str(exc).splitlines()[0] if str(exc) else "", 200)
        return [
            fail(
                "Ledger",
                f"{shown} not usable ({type(exc).__name__}: {first})",
                "check SHIPNAV_DATABASE_URL and that the database accepts connections",
            )
        ]
    finally:
        if ledger is not None:
            ledger.dispose()
    return [ok("Ledger", f"{shown} reachable, tables ready"), queue_result(counts)]


def queue_result(counts: Mapping[str, int]) -> CheckResult:
    text = "queued records: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in QUEUE_STATUSES)
    if counts.get("needs_attention", 0) or counts.get("failed", 0):
        return warn(
            "Ledger",
            text,
            "see `shipnav ledger --status needs_attention` / `--status failed`, "
            "then `shipnav replay --all-due`",
        )
    return ok("Ledger", text)


# --------------------------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------------------------


def run_checks(
    load: Callable[[], Settings] = load_settings, *, sleep: Callable[[float], None] = time.sleep
) -> Report:
    settings, results = check_settings(load)
    if settings is None:
        return Report(results, environment_secrets())
    report = Report(results, settings_secrets(settings) + environment_secrets())
    report.results += _guarded(SS, lambda: check_shipstation(settings, sleep=sleep))
    report.results += _guarded("NAV", lambda: check_nav(settings, sleep=sleep))
    report.results += _guarded("Ledger", lambda: check_ledger(settings))
    return report


def _guarded(system: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """A surprise (an odd answer no client error covers) is one FAIL line, not a traceback that
    would also hide the verdicts on the other systems."""
    try:
        return check()
    except Exception as exc:
        return [fail(system, f"unexpected error: {type(exc).__name__}: {_one_line(str(exc), 200)}")]


def run(stream: TextIO, load: Callable[[], Settings] = load_settings) -> int:
    """``shipnav check``: print one line per check and the summary; 1 when anything failed."""
    report = run_checks(load)
    print(format_report(report), file=stream, flush=True)
    return report.exit_code
