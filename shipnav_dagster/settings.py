"""Every operator-facing setting of CONTRACT.md, read and validated once.

Field names are the environment variable names in lower case, so a validation error can always
name the variable the operator has to fix. Secrets are ``SecretStr`` and never printed.
"""

import os
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
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
}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and what it should hold."""


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

    # Why stored secrets could not be read (ledger unreachable), for require()'s message.
    _secret_store_note: str | None = PrivateAttr(default=None)

    @field_validator("shipstation_api_url", "nav_odata_url", "nav_token_url", "shipnav_failure_webhook_url")
    @classmethod
    def _urls(cls, value: str | None, info: object) -> str | None:
        if value in (None, ""):
            return None
        return _http_url(value, getattr(info, "field_name", ""))

    @field_validator("nav_auth", "nav_platform", "shipstation_api_version", mode="before")
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

    # Derived values -------------------------------------------------------------------------

    @cached_property
    def database_url(self) -> str:
        """The ledger URL; SQLite beside the Dagster instance unless configured."""
        if self.shipnav_database_url is not None and self.shipnav_database_url.get_secret_value():
            return self.shipnav_database_url.get_secret_value()
        path = default_ledger_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

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

    def require(self, *, shipstation: bool = True, nav: bool = True) -> "Settings":
        """Fail with one message naming every variable a sync needs but does not have."""
        missing = (self.missing_for_shipstation() if shipstation else []) + (
            self.missing_for_nav() if nav else []
        )
        if missing:
            note = f"; {self._secret_store_note}" if self._secret_store_note else ""
            raise SettingsError(
                "missing settings: "
                + ", ".join(missing)
                + f" (SHIPSTATION_API_VERSION={self.shipstation_version}, NAV_AUTH={self.nav_auth}; "
                "set them in the environment, in .env, "
                f"or store secrets with `shipnav secrets set NAME`{note})"
            )
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
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "?"
            expected = EXPECTED.get(name, "a valid value")
            detail = err["msg"].removeprefix("Value error, ")
            lines.append(f"{name}: expected {expected} ({detail})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


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
