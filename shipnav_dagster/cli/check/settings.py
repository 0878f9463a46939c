"""``shipnav check``: the settings themselves, and the secret values to mask in the report."""

import base64
import os
from collections.abc import Callable, Mapping, Sequence

from pydantic import SecretStr

from shipnav_dagster.cli.check.report import CheckResult, _one_line, fail, ok
from shipnav_dagster.settings import Settings, SettingsError, load_settings

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
