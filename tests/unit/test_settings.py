"""Settings: every CONTRACT variable, validated once, errors that name the variable, secrets masked."""

import pytest

from shipnav_dagster.settings import SettingsError, load_settings

CONTRACT_VARIABLES = [
    "SHIPSTATION_API_VERSION", "SHIPSTATION_API_URL", "SHIPSTATION_API_KEY", "SHIPSTATION_API_SECRET",
    "NAV_ODATA_URL", "NAV_AUTH",
    "NAV_TOKEN_URL", "NAV_CLIENT_ID", "NAV_CLIENT_SECRET", "NAV_SCOPE", "NAV_USERNAME", "NAV_PASSWORD",
    "NAV_SALES_ORDER_SERVICE", "NAV_SALES_LINES_SEGMENT", "NAV_POSTED_SHIPMENT_SERVICE",
    "NAV_TRACKING_MAX_LENGTH", "NAV_MAX_CONCURRENCY", "SHIPNAV_DATABASE_URL", "SHIPNAV_SECRET_KEY",
    "SHIPNAV_INITIAL_LOOKBACK_HOURS", "SHIPNAV_POLL_OVERLAP_MINUTES", "SHIPNAV_MAPPING_FILE",
    "SHIPNAV_DRY_RUN",
    "SHIPNAV_WEBHOOK_TOKEN", "SHIPNAV_SYNC_CRON", "SHIPNAV_WRITE_LINE_QUANTITIES",
    "SHIPNAV_UNMATCHED_MAX_AGE_HOURS", "SHIPNAV_RECONCILE_DAYS",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in CONTRACT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_every_contract_variable_is_a_setting() -> None:
    from shipnav_dagster.settings import Settings

    fields = {name.upper() for name in Settings.model_fields}
    assert set(CONTRACT_VARIABLES) <= fields


def test_defaults_match_the_contract() -> None:
    s = load_settings()
    # No secret: V2, on its own host.
    assert (s.shipstation_version, s.shipstation_url) == ("v2", "https://api.shipstation.com")
    assert s.nav_auth == "oauth2"
    assert s.nav_scope == "https://api.businesscentral.dynamics.com/.default"
    assert (s.nav_sales_order_service, s.nav_sales_lines_segment, s.nav_posted_shipment_service) == (
        "SalesOrder",
        "SalesOrderSalesLines",
        "PostedSalesShipment",
    )
    assert (s.nav_tracking_max_length, s.nav_max_concurrency) == (30, 4)
    assert (s.shipnav_initial_lookback_hours, s.shipnav_poll_overlap_minutes) == (168, 120)
    assert s.shipnav_sync_cron == "*/15 * * * *"
    assert (s.shipnav_unmatched_max_age_hours, s.shipnav_reconcile_days) == (72, 7)
    assert s.shipnav_dry_run is False and s.shipnav_write_line_quantities is False


@pytest.mark.parametrize(
    ("name", "value", "expected_words"),
    [
        ("NAV_MAX_CONCURRENCY", "lots", "NAV_MAX_CONCURRENCY: expected an integer"),
        ("NAV_TRACKING_MAX_LENGTH", "0", "NAV_TRACKING_MAX_LENGTH"),
        ("NAV_AUTH", "kerberos", "NAV_AUTH: expected 'oauth2', 'basic' or 'ntlm'"),
        ("SHIPNAV_SYNC_CRON", "every quarter hour", "SHIPNAV_SYNC_CRON: expected a five-field cron"),
        ("SHIPNAV_DRY_RUN", "perhaps", "SHIPNAV_DRY_RUN: expected true or false"),
        ("NAV_ODATA_URL", "nav.example.com/odata", "NAV_ODATA_URL"),
        ("SHIPNAV_MAPPING_FILE", "/nonexistent/map.yaml", "SHIPNAV_MAPPING_FILE"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected_words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert expected_words in str(err.value)


def test_missing_values_for_a_sync_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAV_AUTH", "basic")
    monkeypatch.setenv("SHIPSTATION_API_VERSION", "v1")  # V1 needs the secret too
    monkeypatch.setenv("SHIPSTATION_API_KEY", "k")
    with pytest.raises(SettingsError) as err:
        load_settings().require()
    message = str(err.value)
    for name in ("SHIPSTATION_API_SECRET", "NAV_ODATA_URL", "NAV_USERNAME", "NAV_PASSWORD"):
        assert name in message
    assert "NAV_CLIENT_SECRET" not in message  # not needed with basic auth


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPSTATION_API_SECRET", "ss-very-secret-value")
    monkeypatch.setenv("NAV_CLIENT_SECRET", "nav-very-secret-value")
    monkeypatch.setenv("SHIPNAV_DATABASE_URL", "postgresql+psycopg2://u:db-very-secret@h/db")
    s = load_settings()
    for text in (repr(s), str(s), str(s.model_dump())):
        assert "very-secret" not in text
    assert "ss-very-secret-value" in s.secret_values()


def test_dotenv_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("NAV_MAX_CONCURRENCY=2\nSHIPNAV_DRY_RUN=true\n")
    s = load_settings()
    assert s.nav_max_concurrency == 2 and s.shipnav_dry_run is True


def test_ledger_defaults_under_dagster_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert load_settings().database_url == f"sqlite:///{tmp_path / 'home' / 'shipnav-ledger.db'}"
    monkeypatch.delenv("DAGSTER_HOME")
    assert load_settings().database_url.endswith(".shipnav/shipnav-ledger.db")


@pytest.mark.parametrize(
    ("env", "version", "url", "missing"),
    [
        ({"SHIPSTATION_API_KEY": "k", "SHIPSTATION_API_SECRET": "s"}, "v1", "https://ssapi.shipstation.com",
         []),
        ({"SHIPSTATION_API_KEY": "k"}, "v2", "https://api.shipstation.com", []),
        ({"SHIPSTATION_API_VERSION": "V1", "SHIPSTATION_API_KEY": "k"}, "v1", "https://ssapi.shipstation.com",
         ["SHIPSTATION_API_SECRET"]),
        ({"SHIPSTATION_API_VERSION": "v2", "SHIPSTATION_API_KEY": "k", "SHIPSTATION_API_SECRET": "s"}, "v2",
         "https://api.shipstation.com", []),
        ({"SHIPSTATION_API_VERSION": "v2", "SHIPSTATION_API_URL": "http://127.0.0.1:9/"}, "v2",
         "http://127.0.0.1:9", ["SHIPSTATION_API_KEY"]),
    ],
)  # fmt: skip
def test_shipstation_generation_and_its_defaults(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], version: str, url: str, missing: list[str]
) -> None:
    """CONTRACT: v1 when a secret is set, else v2; the URL defaults per generation; the secret is
    asked for on V1 only."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.shipstation_version, s.shipstation_url) == (version, url)
    assert s.missing_for_shipstation() == missing


def test_unknown_shipstation_version_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPSTATION_API_VERSION", "v3")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "SHIPSTATION_API_VERSION: expected 'v1' or 'v2'" in str(err.value)
