"""``shipnav check`` over real HTTP against the sandbox, plus its pure verdicts and formatting."""

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shipnav_dagster.cli import check as cc
from shipnav_dagster.cli import main
from shipnav_dagster.cli.check import ledger as check_ledger
from shipnav_dagster.cli.check import nav as check_nav
from shipnav_dagster.cli.check import platform as check_platform
from shipnav_dagster.cli.check import report as rep
from shipnav_dagster.cli.check import shipstation as check_shipstation
from shipnav_dagster.nav.metadata import parse_metadata
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import Settings

# Values the sandbox accepts, plus the wrong ones tests send: none may ever be printed.
SECRET_VARS = ("SHIPSTATION_API_KEY", "SHIPSTATION_API_SECRET", "NAV_CLIENT_SECRET", "NAV_PASSWORD")


def configure(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServers, tmp_path: Path, auth: str = "oauth2"
) -> dict[str, str]:
    """Point shipnav at the sandbox and nothing else (no stray variables, no ``.env``)."""
    for name in [*(n.upper() for n in Settings.model_fields), "DAGSTER_HOME"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # a developer's .env in the repository must not leak in
    env = {**sandbox.env(nav_auth=auth), "SHIPNAV_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def check(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_no_secrets(output: str, env: dict[str, str]) -> None:
    values = [os.environ.get(name, "") for name in SECRET_VARS] + [env.get(name, "") for name in SECRET_VARS]
    values = [v for v in values if v]
    assert values, "the test configured no secrets to look for"
    for value in values:
        assert value not in output
    pairs = [("SHIPSTATION_API_KEY", "SHIPSTATION_API_SECRET"), ("NAV_USERNAME", "NAV_PASSWORD")]
    for user, password in pairs:
        if os.environ.get(user) and os.environ.get(password):
            token = base64.b64encode(f"{os.environ[user]}:{os.environ[password]}".encode()).decode()
            assert token not in output


def lines_starting(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


# --------------------------------------------------------------------------------------------
# Green
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["oauth2", "basic"])
def test_green_against_the_sandbox(
    auth: str,
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = configure(monkeypatch, sandbox, tmp_path, auth)
    code, out = check(capsys)
    assert code == 0, out
    assert not lines_starting(out, "FAIL") and not lines_starting(out, "WARN"), out
    # Every line is a verdict, then the summary.
    *checks, summary = out.strip().splitlines()
    assert all(line.split(" ", 1)[0] in ("OK", "WARN", "FAIL") for line in checks)
    assert summary.startswith("shipnav check:") and "0 FAIL" in summary
    for store in seeded_world.shipstation.stores.values():
        assert f"{store['storeName']} (id {store['storeId']}, active)" in out
    assert "rate limit: " in out and " of 40 requests left" in out
    assert "GET /shipments readable" in out
    assert "tracking numbers up to 30 characters" in out
    assert "SalesOrderSalesLines (NAV_SALES_LINES_SEGMENT) present" in out
    assert "PostedSalesShipment (NAV_POSTED_SHIPMENT_SERVICE) is published and readable" in out
    assert "queued records: no_order_yet 0, needs_attention 0, failed 0" in out
    if auth == "oauth2":
        assert "OAuth token obtained from" in out
    else:
        assert "Basic credentials of NAV_USERNAME=SANDBOX accepted" in out
    assert_no_secrets(out, env)


def test_subprocess(sandbox: SandboxServers, seeded_world: SandboxWorld, tmp_path: Path) -> None:
    """The real console entry point in its own process, with only the environment to go on."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in {n.upper() for n in Settings.model_fields}}
    env.pop("DAGSTER_HOME", None)
    env.update(sandbox.env(nav_auth="oauth2"), SHIPNAV_DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "shipnav_dagster.cli", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "OK   ShipStation: 3 stores:" in done.stdout
    assert "tracking numbers up to 30 characters" in done.stdout
    for name in SECRET_VARS:
        if env.get(name):
            assert env[name] not in done.stdout + done.stderr


# --------------------------------------------------------------------------------------------
# Red and amber
# --------------------------------------------------------------------------------------------


def test_wrong_nav_client_secret(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("NAV_CLIENT_SECRET", "wrong-client-secret-value")
    code, out = check(capsys)
    assert code == 1
    [line] = lines_starting(out, "FAIL")
    assert line.startswith("FAIL NAV: the OAuth token endpoint rejected NAV_CLIENT_SECRET (invalid_client")
    assert "AADSTS7000215" in line
    # ShipStation and the ledger are still checked: one bad system does not hide the others.
    assert "OK   ShipStation: 3 stores" in out and "OK   Ledger:" in out
    assert "1 FAIL" in out.splitlines()[-1]
    assert_no_secrets(out, env)


def test_wrong_nav_password(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = configure(monkeypatch, sandbox, tmp_path, auth="basic")
    monkeypatch.setenv("NAV_PASSWORD", "wrong-nav-password")
    code, out = check(capsys)
    assert code == 1
    [line] = lines_starting(out, "FAIL")
    assert "NAV rejected NAV_USERNAME / NAV_PASSWORD (HTTP 401 Authentication_InvalidCredentials)" in line
    assert_no_secrets(out, env)


def test_app_not_registered_in_business_central(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    seeded_world.nav.app_registered = False  # a token is issued, but NAV refuses it
    code, out = check(capsys)
    assert code == 1
    assert "OK   NAV: OAuth token obtained" in out
    [line] = lines_starting(out, "FAIL")
    assert "NAV rejected the OAuth token (HTTP 401" in line and "Microsoft Entra Applications" in line


def test_unpublished_posted_shipment(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    seeded_world.nav.published.discard("PostedSalesShipment")
    code, out = check(capsys)
    assert code == 1
    assert lines_starting(out, "FAIL") == [
        "FAIL NAV: PostedSalesShipment is not published: add page 130 on the Web Services page with "
        "Service Name PostedSalesShipment, or set NAV_POSTED_SHIPMENT_SERVICE"
    ]
    # The sales order is still fully checked.
    assert "SalesOrder (NAV_SALES_ORDER_SERVICE) is published and readable" in out


def test_wrong_service_name_without_metadata(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """$metadata unreadable: the $top=1 reads still find the fields and the unpublished name."""
    configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("NAV_SALES_ORDER_SERVICE", "SalesOrders")
    faults = seeded_world.nav.faults
    faults.fail_paths, faults.fail_next, faults.fail_status = ("$metadata",), 10, 400
    code, out = check(capsys)
    assert code == 1
    assert "WARN NAV: $metadata not readable" in out
    assert lines_starting(out, "FAIL") == [
        "FAIL NAV: SalesOrders is not published: add page 42 on the Web Services page with "
        "Service Name SalesOrders, or set NAV_SALES_ORDER_SERVICE"
    ]
    assert "PostedSalesShipment (NAV_POSTED_SHIPMENT_SERVICE) is published and readable with the 7 " in out
    assert "(read with $top=1)" in out


def test_fields_and_lines_from_records_when_metadata_fails(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    faults = seeded_world.nav.faults
    faults.fail_paths, faults.fail_next, faults.fail_status = ("$metadata",), 10, 400
    code, out = check(capsys)
    assert code == 0, out
    assert "SalesOrder (NAV_SALES_ORDER_SERVICE) is published and readable with the 9 fields" in out
    assert "SalesOrderSalesLines (NAV_SALES_LINES_SEGMENT) present" in out
    assert "using NAV_TRACKING_MAX_LENGTH=30" in out


def test_wrong_shipstation_key(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("SHIPSTATION_API_KEY", "wrong-shipstation-key")
    code, out = check(capsys)
    assert code == 1
    [line] = lines_starting(out, "FAIL")
    assert line.startswith(
        "FAIL ShipStation: ShipStation rejected SHIPSTATION_API_KEY / SHIPSTATION_API_SECRET (401"
    )
    assert "OK   NAV: $metadata readable" in out  # NAV is checked all the same
    assert_no_secrets(out, env)


def test_tracking_length_mismatch_is_a_warning(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    seeded_world.nav.tracking_max_length = 50
    monkeypatch.setenv("NAV_TRACKING_MAX_LENGTH", "30")
    code, out = check(capsys)
    assert code == 0
    assert lines_starting(out, "WARN") == [
        "WARN NAV: Package_Tracking_No: NAV says 50, NAV_TRACKING_MAX_LENGTH is 30: set it to 50"
    ]
    assert "1 WARN, 0 FAIL" in out.splitlines()[-1]


def test_missing_settings_are_named(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("SHIPSTATION_API_VERSION", "v1")  # without it, no secret means V2
    for name in ("SHIPSTATION_API_SECRET", "NAV_CLIENT_ID", "NAV_TOKEN_URL"):
        monkeypatch.delenv(name)
    code, out = check(capsys)
    assert code == 1
    fails = lines_starting(out, "FAIL")
    assert fails[0].startswith(
        "FAIL ShipStation: missing SHIPSTATION_API_SECRET (SHIPSTATION_API_VERSION=v1):"
    )
    assert fails[1].startswith("FAIL NAV: missing NAV_TOKEN_URL, NAV_CLIENT_ID (NAV_AUTH=oauth2):")
    assert "shipnav secrets set NAME" in fails[0]
    assert "OK   Ledger:" in out


def test_invalid_settings_are_named_without_a_traceback(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("NAV_AUTH", "kerberos")
    monkeypatch.setenv("NAV_TRACKING_MAX_LENGTH", "zero")
    code, out = check(capsys)
    assert code == 1
    fails = lines_starting(out, "FAIL")
    assert any(
        line.startswith("FAIL Settings: invalid NAV_AUTH: expected 'oauth2', 'basic' or 'ntlm'")
        for line in fails
    )
    assert any("NAV_TRACKING_MAX_LENGTH" in line for line in fails)
    assert "Traceback" not in out
    assert_no_secrets(out, env)


def test_unreachable_shipstation_names_the_url(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SHIPSTATION_API_URL", f"http://user:url-password@127.0.0.1:{port}")
    result = cc.run_checks(sleep=lambda seconds: None)
    out = rep.format_report(result)
    assert result.exit_code == 1
    [line] = lines_starting(out, "FAIL")
    assert line.startswith(f"FAIL ShipStation: ShipStation unreachable at http://127.0.0.1:{port} (")
    assert "url-password" not in out


def test_unreachable_ledger_hides_the_database_password(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("SHIPNAV_DATABASE_URL", "postgresql+psycopg2://shipnav:db-pass-1234@127.0.0.1:1/x")
    code, out = check(capsys)
    assert code == 1
    [line] = lines_starting(out, "FAIL")
    assert line.startswith("FAIL Ledger: postgresql+psycopg2://shipnav:***@127.0.0.1:1/x not usable (")
    assert "db-pass-1234" not in out


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------

CSDL = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="NAV" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="SalesOrder">
        <Key><PropertyRef Name="No" /></Key>
        <Property Name="No" Type="Edm.String" Nullable="false" MaxLength="20" />
        <Property Name="Package_Tracking_No" Type="Edm.String" MaxLength="50" />
        <Property Name="Notes" Type="Edm.String" MaxLength="max" />
        <NavigationProperty Name="SalesOrderSalesLines" Type="Collection(NAV.SalesOrderSalesLines)"
          ContainsTarget="true" />
      </EntityType>
      <EntityType Name="SalesOrderSalesLines"><Property Name="Line_No" Type="Edm.Int32" /></EntityType>
      <EntityContainer Name="NAV">
        <EntitySet Name="SO" EntityType="NAV.SalesOrder" />
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""


def test_parse_metadata() -> None:
    schema = parse_metadata(CSDL)
    assert schema.entity_sets == {"SO": "SalesOrder"}
    order = schema.entity("SO")
    assert order is not None
    assert order.properties == {"No": 20, "Package_Tracking_No": 50, "Notes": None}
    assert order.navigation == {"SalesOrderSalesLines": "SalesOrderSalesLines"}
    assert schema.entity("SalesOrder") is None  # addressed by service name, not type name


def test_tracking_length_verdicts() -> None:
    assert check_nav.tracking_length_result(30, 30).level is rep.Level.OK
    assert check_nav.tracking_length_result(None, 30).level is rep.Level.OK
    mismatch = check_nav.tracking_length_result(30, 50)
    assert mismatch.level is rep.Level.WARN
    assert mismatch.text == "Package_Tracking_No: NAV says 30, NAV_TRACKING_MAX_LENGTH is 50: set it to 30"


def test_lines_are_only_required_for_line_quantities() -> None:
    assert check_nav.lines_result("Lines", {}, required=False, line_type=None).level is rep.Level.WARN
    assert (
        check_nav.lines_result("Lines", {"Other": "X"}, required=True, line_type=None).level is rep.Level.FAIL
    )
    assert (
        "offers Other" in check_nav.lines_result("Lines", {"Other": "X"}, required=True, line_type=None).text
    )


def test_rate_limit_and_queue_verdicts() -> None:
    assert check_shipstation.rate_limit_result(40, 39, 60).level is rep.Level.OK
    assert check_shipstation.rate_limit_result(40, 2, 60).level is rep.Level.WARN
    assert check_shipstation.rate_limit_result(None, None, None).level is rep.Level.WARN
    assert check_ledger.queue_result({"no_order_yet": 4}).level is rep.Level.OK
    failed = check_ledger.queue_result({"failed": 2, "written": 9})
    assert failed.level is rep.Level.WARN
    assert failed.message == "queued records: no_order_yet 0, needs_attention 0, failed 2"


def test_token_failures_name_the_setting() -> None:
    from shipnav_dagster.nav.errors import NavAuthError, NavUnavailableError

    def setting(code: str, status: int = 400) -> str:
        return check_nav.token_failure(NavAuthError(status, code, "AADSTS700016: nope")).text

    assert "rejected NAV_CLIENT_ID (unauthorized_client, AADSTS700016, HTTP 400)" in setting(
        "unauthorized_client"
    )
    assert "rejected NAV_SCOPE" in setting("invalid_scope")
    assert "rejected NAV_TOKEN_URL" in setting("invalid_tenant")
    assert "rejected NAV_TOKEN_URL" in setting("HTTP404", 404)
    assert "NAV_TOKEN_URL, NAV_CLIENT_ID, NAV_CLIENT_SECRET and NAV_SCOPE" in setting("odd_error")
    down = check_nav.token_failure(NavUnavailableError(0, "TokenEndpointUnreachable", "x"))
    assert "unreachable" in down.text and "NAV_TOKEN_URL" in down.text


def test_report_format_and_redaction() -> None:
    report = rep.Report(
        [rep.ok("A", "fine"), rep.warn("B", "hmm", "do this"), rep.fail("C", "token s3cr3t-value leaked")],
        secrets=["s3cr3t-value"],
    )
    text = rep.format_report(report)
    assert text.splitlines() == [
        "OK   A: fine",
        "WARN B: hmm: do this",
        "FAIL C: token *** leaked",
        "shipnav check: 1 OK, 1 WARN, 1 FAIL; fix the FAIL lines above and run it again",
    ]
    assert report.exit_code == 1
    assert rep.Report([rep.warn("B", "hmm")]).exit_code == 0
    assert rep.safe_url("https://u:p@host:7048/x/ODataV4?k=v") == "https://host:7048/x/ODataV4"


def test_a_surprise_is_a_fail_line_not_a_traceback() -> None:
    def broken() -> list[rep.CheckResult]:
        raise ValueError("storeId: not an integer")

    [result] = cc._guarded("ShipStation", broken)
    assert result.level is rep.Level.FAIL
    assert result.text == "unexpected error: ValueError: storeId: not an integer"


def test_stored_secrets_are_used_and_never_printed(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Secrets kept encrypted in the ledger (`shipnav secrets set`) reach the check via load_settings."""
    from shipnav_dagster.ledger.secret_store import SecretStore, generate_key

    env = configure(monkeypatch, sandbox, tmp_path)
    key = generate_key()
    with SecretStore.open(env["SHIPNAV_DATABASE_URL"]) as store:
        store.ensure_table().put("NAV_CLIENT_SECRET", env["NAV_CLIENT_SECRET"], key)
    monkeypatch.delenv("NAV_CLIENT_SECRET")
    monkeypatch.setenv("SHIPNAV_SECRET_KEY", key)
    code, out = check(capsys)
    assert code == 0, out
    assert "OK   NAV: OAuth token obtained" in out
    assert env["NAV_CLIENT_SECRET"] not in out and key not in out


def test_platform_line_says_whether_posted_shipments_are_written() -> None:
    bc_online = "https://api.businesscentral.dynamics.com/v2.0/t/Production/ODataV4/Company('C')"
    on_prem = "https://nav.example.com:7048/DynamicsNAV110/ODataV4/Company('C')"
    assert "posted shipments are written too" in check_platform.platform_result("nav", on_prem, None).message
    assert "read-only" in check_platform.platform_result("bc", on_prem, None).message
    online = check_platform.platform_result("auto", bc_online, None)
    assert online.level is rep.Level.OK and "Business Central online" in online.message
    learned = check_platform.platform_result("auto", on_prem, "NAV answered ... on 2026-12-01")
    assert learned.level is rep.Level.OK and "learned" in learned.message
    unknown = check_platform.platform_result("auto", on_prem, None)
    assert unknown.level is rep.Level.WARN and "NAV_PLATFORM" in unknown.fix
