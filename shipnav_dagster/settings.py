"""Every operator-facing setting (the environment variables the README lists), read and validated once.

Field names are the environment variable names in lower case, so a validation error can always
name the variable the operator has to fix. Secrets are ``SecretStr`` and never printed.
"""

import os
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SHIPSTATION_URL = "https://ssapi.shipstation.com"  # V1
DEFAULT_SHIPSTATION_V2_URL = "https://api.shipstation.com"  # V2: every path begins /v2/
DEFAULT_NAV_SCOPE = "https://api.businesscentral.dynamics.com/.default"

# What each variable is expected to hold, used to turn pydantic errors into operator language.
EXPECTED: dict[str, str] = {
    "SHIPSTATION_API_VERSION": "'v1' or 'v2'",
    "SHIPSTATION_API_URL": "an http(s) URL such as https://ssapi.shipstation.com (V1) or "
    "https://api.shipstation.com (V2)",
    "SHIPNAV_WEBHOOK_PUBLIC_KEY": "the path of a PEM public key or JWKS file, or the PEM text itself",
    "NAV_ODATA_URL": "the OData V4 service root with the company segment, "
    "e.g. https://nav.example.com:7048/DynamicsNAV110/ODataV4/Company('CRONUS')",
    "NAV_AUTH": "'oauth2', 'basic' or 'ntlm'",
    "NAV_TOKEN_URL": "an http(s) URL of the OAuth 2.0 token endpoint",
    "NAV_TRACKING_MAX_LENGTH": "an integer from 1 to 250 (30 for NAV and BC up to v26, 50 from BC 27)",
    "NAV_MAX_CONCURRENCY": "an integer from 1 to 32 (BC online allows 5 requests per user)",
    "SHIPNAV_INITIAL_LOOKBACK_HOURS": "a whole number of hours from 1 to 8760",
    "SHIPNAV_POLL_OVERLAP_MINUTES": "a whole number of minutes from 0 to 10080",
    "SHIPNAV_DRY_RUN": "true or false",
    "SHIPNAV_WRITE_LINE_QUANTITIES": "true or false",
    "SHIPNAV_SYNC_CRON": "a five-field cron expression such as */15 * * * *",
    "SHIPNAV_SYNC_TIMEZONE": "an IANA time zone name such as America/Los_Angeles",
    "SHIPNAV_UNMATCHED_MAX_AGE_HOURS": "a whole number of hours from 1 to 8760",
    "SHIPNAV_RECONCILE_DAYS": "a whole number of days from 1 to 366",
    "SHIPNAV_MAPPING_FILE": "the path of a readable YAML carrier mapping file",
    "SHIPNAV_DATABASE_URL": "an SQLAlchemy URL: sqlite:///path or postgresql+psycopg2://user@host:5432/db",
    "SHIPNAV_HTTP_TIMEOUT_SECONDS": "a number of seconds from 1 to 600",
    "SHIPNAV_NAV_FILTER_CHUNK": "an integer from 1 to 200",
    "SHIPNAV_WEBHOOK_RETENTION_DAYS": "a whole number of days from 1 to 3650",
    "SHIPNAV_WEBHOOK_MAX_PENDING": "a whole number of notifications from 1 to 10000000",
    "SHIPNAV_LAG_WARN_HOURS": "a number of hours above 0",
    "SHIPNAV_LAG_FAIL_HOURS": "a number of hours, at least SHIPNAV_LAG_WARN_HOURS",
    "SHIPNAV_REPORT_DIR": "a folder for the month-end report files",
    # What a missing credential is, for the one message that lists everything a run lacks.
    "SHIPSTATION_API_KEY": "the ShipStation API key (ShipStation: Settings > Account > API Settings)",
    "SHIPSTATION_API_SECRET": "the ShipStation API secret (V1 Basic auth password)",
    "NAV_CLIENT_ID": "the OAuth 2.0 client (application) id registered for NAV / Business Central",
    "NAV_CLIENT_SECRET": "the OAuth 2.0 client secret",
    "NAV_USERNAME": "the NAV user name (DOMAIN\\user for Windows accounts)",
    "NAV_PASSWORD": "the password or web service access key of NAV_USERNAME",
}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and what it should hold.

    ``invalid`` has one ``NAME: expected ...`` line per invalid variable (empty when the error is
    about something else, such as a stored secret that cannot be decrypted)."""

    def __init__(self, message: str, invalid: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.invalid = list(invalid)


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # ShipStation: the generation defaults to v1 when a secret is set (V1 keys come in pairs),
    # else v2; the URL defaults per generation (see shipstation_version, shipstation_url).
    shipstation_api_version: Literal["v1", "v2"] | None = None
    shipstation_api_url: str | None = None
    shipstation_api_key: SecretStr | None = None
    shipstation_api_secret: SecretStr | None = None  # V1 only: the Basic auth password

    # NAV / Business Central
    nav_odata_url: str | None = None
    nav_auth: Literal["oauth2", "basic", "ntlm"] = "oauth2"
    nav_token_url: str | None = None
    nav_client_id: str | None = None
    nav_client_secret: SecretStr | None = None
    nav_scope: str = DEFAULT_NAV_SCOPE
    nav_username: str | None = None
    nav_password: SecretStr | None = None
    nav_sales_order_service: str = "SalesOrder"
    nav_sales_lines_segment: str = "SalesOrderSalesLines"
    nav_posted_shipment_service: str = "PostedSalesShipment"
    nav_tracking_max_length: int = Field(30, ge=1, le=250)
    nav_max_concurrency: int = Field(4, ge=1, le=32)
    # auto: learn it (Business Central refuses a PATCH of a posted shipment as read-only); nav:
    # NAV 2013-2018, posted shipments writable; bc: Business Central, never PATCH them.
    nav_platform: Literal["auto", "nav", "bc"] = "auto"
    # auto: PATCHes of different orders in JSON $batch requests where NAV accepts them (Business
    # Central), single requests otherwise; off: always single requests.
    nav_batch: Literal["auto", "off"] = "auto"

    # shipnav
    shipnav_database_url: SecretStr | None = None
    shipnav_secret_key: SecretStr | None = None
    shipnav_initial_lookback_hours: int = Field(168, ge=1, le=8760)
    shipnav_poll_overlap_minutes: int = Field(120, ge=0, le=10080)
    shipnav_mapping_file: Path | None = None
    shipnav_dry_run: bool = False
    shipnav_webhook_token: SecretStr | None = None
    # V2 webhooks: the value of the header ShipStation sends back with every notification
    # (webhooks/app.py); SHIPNAV_WEBHOOK_TOKEN when unset. And the public key (PEM, or a JWKS
    # file) that verifies ShipStation's RSA-SHA256 signature; without it signatures are not checked.
    shipnav_webhook_header_secret: SecretStr | None = None
    shipnav_webhook_public_key: str | None = None
    shipnav_sync_cron: str = "*/15 * * * *"
    shipnav_sync_timezone: str = "America/Los_Angeles"
    shipnav_write_line_quantities: bool = False
    shipnav_unmatched_max_age_hours: int = Field(72, ge=1, le=8760)
    shipnav_reconcile_days: int = Field(7, ge=1, le=366)
    shipnav_http_timeout_seconds: float = Field(30.0, ge=1, le=600)
    shipnav_nav_filter_chunk: int = Field(100, ge=1, le=200)
    shipnav_failure_webhook_url: str | None = None
    # The webhook inbox: processed notifications are deleted after this many days, and the
    # receiver answers 503 while this many wait to be processed (webhooks/app.py).
    shipnav_webhook_retention_days: int = Field(14, ge=1, le=3650)
    shipnav_webhook_max_pending: int = Field(10_000, ge=1, le=10_000_000)
    shipnav_lag_warn_hours: float = Field(2.0, gt=0, le=8760)
    shipnav_lag_fail_hours: float = Field(24.0, gt=0, le=8760)
    shipnav_report_dir: Path | None = None

    # Why stored secrets could not be read (ledger unreachable), for require()'s message.
    _secret_store_note: str | None = PrivateAttr(default=None)

    @field_validator("shipstation_api_url", "nav_odata_url", "nav_token_url", "shipnav_failure_webhook_url")
    @classmethod
    def _urls(cls, value: str | None, info: object) -> str | None:
        if value in (None, ""):
            return None
        return _http_url(value, getattr(info, "field_name", ""))

    @field_validator("nav_auth", "nav_platform", "nav_batch", "shipstation_api_version", mode="before")
    @classmethod
    def _auth_lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("shipnav_webhook_public_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if "-----BEGIN" not in value and not Path(value.strip()).is_file():
            raise ValueError(f"file not found: {value.strip()}")
        return value.strip()

    @field_validator("shipnav_sync_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(f"not a valid cron expression: {value!r}")
        return value

    @field_validator("shipnav_sync_timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone: {value!r}") from exc
        return value

    @field_validator("shipnav_mapping_file")
    @classmethod
    def _mapping(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        if not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @model_validator(mode="after")
    def _lag_thresholds(self) -> "Settings":
        if self.shipnav_lag_fail_hours < self.shipnav_lag_warn_hours:
            raise ValueError(
                f"SHIPNAV_LAG_FAIL_HOURS ({self.shipnav_lag_fail_hours:g}) is below "
                f"SHIPNAV_LAG_WARN_HOURS ({self.shipnav_lag_warn_hours:g})"
            )
        return self

    # Derived values -------------------------------------------------------------------------

    @property
    def ledger_url(self) -> str:
        """The ledger URL, without creating anything (reading commands use this one)."""
        if self.shipnav_database_url is not None and self.shipnav_database_url.get_secret_value():
            return self.shipnav_database_url.get_secret_value()
        return f"sqlite:///{default_ledger_file()}"

    @cached_property
    def database_url(self) -> str:
        """The ledger URL; SQLite beside the Dagster instance unless configured. The default
        SQLite folder is created, so a run can create the ledger in it."""
        url = self.ledger_url
        if self.shipnav_database_url is None or not self.shipnav_database_url.get_secret_value():
            default_ledger_file().parent.mkdir(parents=True, exist_ok=True)
        return url

    @property
    def report_dir(self) -> Path:
        """Where the month-end report asset writes its files."""
        if self.shipnav_report_dir is not None and str(self.shipnav_report_dir):
            return self.shipnav_report_dir
        return default_ledger_file().parent / "reports"

    @property
    def shipstation_version(self) -> Literal["v1", "v2"]:
        """SHIPSTATION_API_VERSION, else v1 when SHIPSTATION_API_SECRET is set, else v2 (read when
        used: a stored secret counts)."""
        if self.shipstation_api_version is not None:
            return self.shipstation_api_version
        return "v1" if _present(self.shipstation_api_secret) else "v2"

    @property
    def shipstation_url(self) -> str:
        """SHIPSTATION_API_URL, else the generation's public API host."""
        if self.shipstation_api_url:
            return self.shipstation_api_url
        return DEFAULT_SHIPSTATION_URL if self.shipstation_version == "v1" else DEFAULT_SHIPSTATION_V2_URL

    def missing_for_shipstation(self) -> list[str]:
        needed = ["shipstation_api_key"]
        if self.shipstation_version == "v1":
            needed.append("shipstation_api_secret")
        return [name.upper() for name in needed if not _present(getattr(self, name))]

    def missing_for_nav(self) -> list[str]:
        needed = ["nav_odata_url"]
        if self.nav_auth == "oauth2":
            needed += ["nav_token_url", "nav_client_id", "nav_client_secret"]
        else:  # basic, and ntlm with the Windows account (DOMAIN\\user) and its password
            needed += ["nav_username", "nav_password"]
        return [name.upper() for name in needed if not _present(getattr(self, name))]

    def missing_by_system(self) -> dict[str, list[str]]:
        """What each system still needs, as the settings themselves judge it (NAV_AUTH and the
        ShipStation API generation decide which credentials are needed)."""
        return {"ShipStation": self.missing_for_shipstation(), "NAV": self.missing_for_nav()}

    def require(self, *, shipstation: bool = True, nav: bool = True) -> "Settings":
        """Fail with one message naming every variable a sync needs but does not have."""
        wanted = {"ShipStation": shipstation, "NAV": nav}
        missing = {system: names for system, names in self.missing_by_system().items() if wanted[system]}
        if any(missing.values()):
            raise SettingsError(problems_message([], missing, self._secret_store_note))
        return self

    def value(self, name: str) -> str:
        """The plain text of a setting that must be present (secrets unwrapped); the caller has
        checked with ``missing_for_*`` first, so an absent one is a SettingsError naming it."""
        value = getattr(self, name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text in (None, ""):
            raise SettingsError(f"missing setting: {name.upper()}")
        return str(text)

    def secret_values(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        values = []
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
            del field
        return [v for v in values if len(v) >= 4]


def _present(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value not in (None, "")


def default_ledger_file() -> Path:
    """The SQLite ledger used when SHIPNAV_DATABASE_URL is unset: beside the Dagster instance."""
    home = os.environ.get("DAGSTER_HOME")
    folder = Path(home) if home else Path.cwd() / ".shipnav"
    return folder / "shipnav-ledger.db"


def load_settings(**overrides: object) -> Settings:
    """The settings of the environment (and ``.env``), with secrets it does not set filled from
    the encrypted store in the ledger (``shipnav secrets set``)."""
    settings = read_environment(**overrides)
    _fill_stored_secrets(settings)
    return settings


def read_environment(**overrides: object) -> Settings:
    """Read the environment (and ``.env``) once; turn validation errors into operator messages.

    Stored secrets are not consulted (``shipnav secrets`` itself must work with a wrong key)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = _invalid_lines(exc)
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines), invalid=lines) from None


def _invalid_lines(exc: ValidationError) -> list[str]:
    """One ``NAME: expected ... (detail)`` line per invalid variable."""
    lines: list[str] = []
    for err in exc.errors():
        name = str(err["loc"][0]).upper() if err["loc"] else _name_in(err["msg"])
        expected = EXPECTED.get(name, "a valid value")
        detail = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error":  # the message only repeats what is expected
            detail = f"got {err['input']!r}"
        lines.append(f"{name}: expected {expected} ({detail})")
    return lines


def _name_in(message: str) -> str:
    """The variable a model-level check names first (its message starts with it)."""
    word = message.removeprefix("Value error, ").split(" ", 1)[0]
    return word if word.isupper() else "?"


def check_settings(*, systems: bool = True) -> Settings:
    """The settings, or one :class:`SettingsError` that lists every problem at once: each invalid
    variable and what it expects, and every variable ShipStation or NAV still needs. Missing
    credentials alone are a problem only with ``systems`` (commands that read just the ledger
    pass False); once any value is invalid, the message lists the missing ones too.

    What is missing is asked of the settings (``missing_by_system``), evaluated with each invalid
    variable at its default, so one message covers both systems even when a value is wrong."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        if not exc.invalid:
            raise
        raise SettingsError(_invalid_and_missing(exc.invalid), invalid=exc.invalid) from None
    if systems:
        missing = settings.missing_by_system()
        if any(missing.values()):
            raise SettingsError(problems_message([], missing, settings._secret_store_note))
    return settings


def _invalid_and_missing(invalid: Sequence[str]) -> str:
    defaults = _defaults_for(invalid)
    try:
        fallback = load_settings(**defaults)
    except SettingsError:  # nothing more can be judged: report what is known
        return problems_message(invalid, {}, None)
    # An invalid value is reported once, as invalid, not also as missing.
    missing = {
        system: [name for name in names if name.lower() not in defaults]
        for system, names in fallback.missing_by_system().items()
    }
    # Which NAV credentials are listed depends on NAV_AUTH: say which one, when it was invalid.
    assumed = {
        name.upper(): value for name, value in defaults.items() if name == "nav_auth" and missing["NAV"]
    }
    return problems_message(invalid, missing, fallback._secret_store_note, assumed)


def _defaults_for(invalid: Sequence[str]) -> dict[str, object]:
    """The default of every variable the invalid lines name (a cross-field check names two)."""
    fields = [f for f in Settings.model_fields if any(_names(f, line) for line in invalid)]
    return {f: Settings.model_fields[f].get_default(call_default_factory=True) for f in fields}


def read_environment_leniently() -> tuple[Settings, list[str]]:
    """The environment with every invalid variable at its default, and the invalid lines. For
    what must load whatever is wrong (the code location's schedule); runs report the lines."""
    try:
        return read_environment(), []
    except SettingsError as exc:
        if not exc.invalid:
            raise
        try:
            return read_environment(**_defaults_for(exc.invalid)), exc.invalid
        except SettingsError:
            return Settings.model_construct(), exc.invalid


def _names(field: str, line: str) -> bool:
    return re.search(rf"\b{field.upper()}\b", line) is not None


def problems_message(
    invalid: Sequence[str],
    missing: dict[str, list[str]],
    secret_store_note: str | None,
    assumed: dict[str, object] | None = None,
) -> str:
    """Every problem, one line each, and how to fix them: the one message a command or run shows."""
    lines = list(invalid)
    for system, names in missing.items():
        lines += [f"{name}: missing; {system} needs {EXPECTED.get(name, 'a value')}" for name in names]
    count = len(lines)
    text = [f"the settings need fixing ({count} problem{'s' if count != 1 else ''}):"]
    text += [f"  {line}" for line in lines]
    for name, value in (assumed or {}).items():
        text.append(f"(what NAV needs is listed for {name}={value}, the default, until {name} is fixed)")
    text.append(
        "Set them in the environment or in .env; secrets can also be stored with `shipnav secrets set`."
    )
    if secret_store_note:
        text.append(f"Stored secrets could not be read: {secret_store_note}.")
    return "\n".join(text)


def _fill_stored_secrets(settings: Settings) -> None:
    """Set each storable secret the environment leaves unset from the store; the environment wins.

    One small query, and none at all while the default SQLite ledger does not exist. A stored
    value without SHIPNAV_SECRET_KEY, or with the wrong one, is an error naming the secret. An
    unreachable ledger is not: the run will report the ledger itself, and require() says why the
    secrets are missing.
    """
    # Imported here: the store needs SQLAlchemy and cryptography, and imports nothing from us.
    from shipnav_dagster.ledger import secret_store as store

    unset = [name for name in store.STORABLE if not _present(getattr(settings, name.lower()))]
    if not unset:
        return
    configured = settings.shipnav_database_url.get_secret_value() if settings.shipnav_database_url else ""
    url = configured or f"sqlite:///{default_ledger_file()}"
    key = settings.shipnav_secret_key.get_secret_value() if settings.shipnav_secret_key else None
    try:
        values = store.load_stored(url, unset, key)
    except store.SecretStoreUnavailable as exc:
        settings._secret_store_note = str(exc)
        return
    except store.SecretStoreError as exc:
        raise SettingsError(str(exc)) from None
    for name, value in values.items():
        field = name.lower()
        secret = SecretStr in get_args(Settings.model_fields[field].annotation)
        setattr(settings, field, SecretStr(value) if secret else value)
