"""No secret value in logs, client errors, Dagster storage, the ledger or the console.

* The redaction filter on its own (messages, arguments, exception text, Basic-auth and URL
  forms, the NAV client's bearer token) and inside a Dagster run (``context.log`` and plain
  Python loggers), where it is installed by ``ShipnavResource``.
* Errors of both clients against the sandbox: a 401 from ShipStation, from NAV (Basic and OAuth),
  a token endpoint refusing the client secret and one that is down. Plus servers that echo what
  they were sent, which the sandbox never does.
* The scan: full ``shipnav_sync_job`` runs (OAuth with the client secret from the encrypted store,
  Basic, and two runs failing on rejected credentials) on a PostgreSQL Dagster instance with a
  PostgreSQL ledger, then every table of both schemas, the instance's compute logs, the captured
  console and the log records are searched for every secret and its Basic-auth form. The scanner
  is shown to find a value planted in each of those places first.
"""

import base64
import contextlib
import io
import json
import logging
import sys
import traceback
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from shipnav_dagster import redaction
from shipnav_dagster.cli import main
from shipnav_dagster.definitions import defs
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.errors import NavAuthError, NavError, NavUnavailableError
from shipnav_dagster.redaction import REDACTED, SecretRedactionFilter, basic_token, secret_forms
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import Settings
from shipnav_dagster.shipstation.errors import ShipStationAuthError, ShipStationError
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from tests.support.sync_harness import (
    JOB_NAME,
    SyncHarness,
    clean_environment,
    harness_for,
    order_with_label,
    postgres_instance,
    sqlite_instance,
    sqlite_ledger_url,
)

# Distinctive values: nothing else in a run could contain them by accident.
SS_KEY = "SSKEY-5e8d1a"
SS_SECRET = "SSSECRET-7f3a9c"
NAV_CLIENT_ID = "navclient-2c4e"  # not a secret, but the Basic form of id:secret is
NAV_SECRET = "NAVSECRET-b41e2d"
NAV_USER = "NAVUSER-88aa"
NAV_PASSWORD = "NAVPASS-c9d0e1"
WEBHOOK_TOKEN = "WHTOKEN-0a9b8c7d6e5f4a3b"
WRONG_SS_SECRET = "WRONGSS-3e4f5a"
WRONG_NAV_SECRET = "WRONGNAV-6b7c8d"
VERBOSE: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


# --------------------------------------------------------------------------------------------
# Finding secrets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    where: str
    needle: str


def texts_of(value: object) -> list[str]:
    """Every readable form of a stored value: bytes raw and zlib-inflated (Dagster compresses
    snapshots into ``bytea``), everything else as text."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        found = [value.decode("latin-1")]
        with contextlib.suppress(zlib.error):  # not compressed: the raw form above is the text
            found.append(zlib.decompress(value).decode("utf-8", "replace"))
        return found
    return [] if value is None else [value if isinstance(value, str) else str(value)]


def scan_text(where: str, text: str, needles: Iterable[str]) -> list[Hit]:
    return [Hit(where, n) for n in needles if n in text]


def scan_schema(engine: sa.Engine, schema: str, needles: list[str]) -> tuple[list[Hit], dict[str, int]]:
    """Every row of every table of ``schema``; also returns the row count of each table."""
    hits: list[Hit] = []
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names(schema=schema):
            rows = conn.execute(sa.text(f'select * from "{schema}"."{table}"')).all()
            counts[table] = len(rows)
            for row in rows:
                for column, value in zip(row._fields, row, strict=True):
                    for text in texts_of(value):
                        hits += scan_text(f"{schema}.{table}.{column}", text, needles)
    return hits, counts


def scan_tree(root: Path, needles: list[str]) -> tuple[list[Hit], list[Path]]:
    hits: list[Hit] = []
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        for text in texts_of(path.read_bytes()):
            hits += scan_text(str(path), text, needles)
    return hits, files


def exception_texts(exc: BaseException) -> str:
    """Everything an exception can show: the whole chain's traceback, reprs, args and attributes."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def needles_for(*values: str) -> list[str]:
    return sorted({v for value in values for v in (value, base64.b64encode(value.encode()).decode())})


# --------------------------------------------------------------------------------------------
# The filter on its own
# --------------------------------------------------------------------------------------------


def record(msg: object, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args or None, exc_info)


def test_filter_redacts_message_arguments_and_exception_text() -> None:
    f = SecretRedactionFilter()
    f.add(["hunter2-secret", "tok"])  # shorter than 4 characters: never redacted (too common)
    cases = [
        record("password is hunter2-secret"),
        record("password is %s", "hunter2-secret"),
        record("%(who)s sent %(what)s", {"who": "x", "what": "hunter2-secret"}),
        record("error: %s", RuntimeError("server said hunter2-secret")),  # not a str argument
        record(ValueError("a message object with hunter2-secret")),
    ]
    for r in cases:
        assert f.filter(r) is True
        assert "hunter2-secret" not in r.getMessage() and REDACTED in r.getMessage()
    try:
        raise RuntimeError("raised with hunter2-secret")
    except RuntimeError as exc:
        r = record("failed", exc=exc)
    f.filter(r)
    text = logging.Formatter().format(r)
    assert "hunter2-secret" not in text and "RuntimeError: raised with ***" in text
    assert f.redact("tok stays") == "tok stays"


def test_records_without_secrets_are_left_alone() -> None:
    f = SecretRedactionFilter()
    f.add(["hunter2-secret"])
    arg = object()
    r = record("nothing here %s", arg)
    f.filter(r)
    assert r.msg == "nothing here %s" and r.args == (arg,)


def test_a_contained_secret_is_redacted_whole() -> None:
    f = SecretRedactionFilter()
    f.add(["abcd", "xxabcdyy"])
    assert f.redact("xxabcdyy and abcd") == "*** and ***"


def test_secret_forms_cover_basic_auth_url_encoding_and_the_ledger_password() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        shipstation_api_key=SS_KEY,
        shipstation_api_secret="s3cret/with+chars",
        nav_username=NAV_USER,
        nav_password=NAV_PASSWORD,
        shipnav_database_url="postgresql+psycopg2://shipnav:db-pw-1234@db/ledger",
    )
    forms = secret_forms(settings)
    assert basic_token(SS_KEY, "s3cret/with+chars") in forms
    assert base64.b64encode(f"{NAV_USER}:{NAV_PASSWORD}".encode()).decode() in forms
    assert {"s3cret%2Fwith%2Bchars", "db-pw-1234", NAV_PASSWORD, SS_KEY} <= forms
    assert NAV_USER not in forms  # a user name alone is not a secret


def test_a_watched_bearer_token_is_redacted_while_held() -> None:
    class Holder:
        _token: str | None = "bearer-token-value-123"

    f = SecretRedactionFilter()
    holder = Holder()
    f.watch(holder)
    assert f.redact("Authorization: Bearer bearer-token-value-123") == "Authorization: Bearer ***"
    holder._token = "the-next-token-456"
    assert f.redact("the-next-token-456") == REDACTED
    del holder  # weakly held: a finished run's client is not kept alive
    assert f.needles() == []


def test_install_is_idempotent() -> None:
    handler = logging.StreamHandler(io.StringIO())
    logging.getLogger("httpx").addHandler(handler)
    try:
        redaction.install(["idempotent-secret-1"])
        factory = logging.getLogRecordFactory()
        redaction.install(["idempotent-secret-2"])
        assert logging.getLogRecordFactory() is factory
        for name in redaction.LOGGER_NAMES:
            assert logging.getLogger(name or None).filters.count(redaction.FILTER) == 1
        assert handler.filters.count(redaction.FILTER) == 1
        # Records of any logger are redacted as they are made, child loggers included.
        logging.getLogger("httpx.child").warning(
            "both %s and %s", "idempotent-secret-1", "idempotent-secret-2"
        )
        assert handler.stream.getvalue().strip() == "both *** and ***"
    finally:
        logging.getLogger("httpx").removeHandler(handler)


# --------------------------------------------------------------------------------------------
# Inside a Dagster run: ShipnavResource installs the filter
# --------------------------------------------------------------------------------------------


@dg.op
def leaky_op(context: dg.OpExecutionContext, shipnav: ShipnavResource) -> None:
    """Does everything code must never do with a secret, to show the net holds."""
    secret = shipnav.settings.shipstation_api_secret.get_secret_value()  # type: ignore[union-attr]
    context.log.info(f"context.log with the secret inline: {secret}")
    context.log.info("context.log with the secret as an argument: %s", secret)
    context.log.warning("the Basic header: Authorization: Basic %s", basic_token(SS_KEY, secret))
    logging.getLogger("shipnav_dagster.leaky").warning("a plain python logger: %s", secret)
    try:
        raise RuntimeError(f"an exception text with {secret}")
    except RuntimeError:
        context.log.exception("logged with exc_info")


@dg.job(resource_defs={"shipnav": ShipnavResource()})
def leaky_job() -> None:
    leaky_op()


def test_shipnav_resource_redacts_context_log_and_python_logs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPNAV_DATABASE_URL", sqlite_ledger_url(tmp_path))
    monkeypatch.setenv("SHIPSTATION_API_KEY", SS_KEY)
    monkeypatch.setenv("SHIPSTATION_API_SECRET", "LEAKY-SSSECRET-4d2")
    caplog.set_level(logging.DEBUG)
    needles = ["LEAKY-SSSECRET-4d2", basic_token(SS_KEY, "LEAKY-SSSECRET-4d2")]
    with sqlite_instance() as instance:
        result = leaky_job.execute_in_process(instance=instance, run_config=VERBOSE)
        assert result.success
        entries = instance.all_logs(result.run_id)
        user_messages = [e.user_message for e in entries]
        assert any("context.log with the secret inline: ***" in m for m in user_messages)
        assert any("context.log with the secret as an argument: ***" in m for m in user_messages)
        assert any("Authorization: Basic ***" in m for m in user_messages)
        stored = json.dumps([dg.serialize_value(e) for e in entries])
        tree_hits, _ = scan_tree(Path(instance.root_directory), needles)
    out, err = capfd.readouterr()
    hits = scan_text("event log", stored, needles) + tree_hits + scan_text("console", out + err, needles)
    hits += scan_text("log records", "\n".join(caplog.messages) + caplog.text, needles)
    assert hits == []
    assert "a plain python logger: ***" in caplog.messages
    assert "RuntimeError: an exception text with ***" in err  # context.log's console logger


# --------------------------------------------------------------------------------------------
# Client errors never carry credentials (against the sandbox)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def creds_world(empty_world: SandboxWorld) -> SandboxWorld:
    empty_world.shipstation.api_key, empty_world.shipstation.api_secret = SS_KEY, SS_SECRET
    empty_world.nav.client_id, empty_world.nav.client_secret = NAV_CLIENT_ID, NAV_SECRET
    empty_world.nav.username, empty_world.nav.password = NAV_USER, NAV_PASSWORD
    return empty_world


def nav_client(sandbox: SandboxServers, **fields: str) -> NavClient:
    values = {
        "nav_odata_url": sandbox.nav_odata_url,
        "nav_token_url": sandbox.nav_token_url,
        "nav_client_id": NAV_CLIENT_ID,
        "nav_username": NAV_USER,
    }
    settings = Settings(_env_file=None, **(values | fields))  # type: ignore[call-arg]
    return NavClient.from_settings(settings, max_attempts=2, sleep=lambda _s: None)


def nav_failure(client: NavClient, expected: type[NavError], order_no: str) -> NavError:
    """The error ``client`` raises when asked for a sales order (and the client closed)."""
    with client, pytest.raises(expected) as err:
        client.get_sales_order(order_no)
    return err.value


def assert_clean(exc: BaseException, *values: str) -> None:
    text = exception_texts(exc)
    leaked = [n for n in needles_for(*values) if n in text]
    assert leaked == [], f"{leaked} in:\n{text}"


def test_shipstation_401_carries_no_credentials(sandbox: SandboxServers, creds_world: SandboxWorld) -> None:
    client = ShipStationClient(sandbox.shipstation_url, SS_KEY, WRONG_SS_SECRET, max_attempts=2)
    with client, pytest.raises(ShipStationAuthError) as err:
        client.list_stores()
    failure = err.value
    assert failure.status == 401 and "SHIPSTATION_API_SECRET" in str(failure)
    assert_clean(failure, WRONG_SS_SECRET, SS_SECRET, f"{SS_KEY}:{WRONG_SS_SECRET}", SS_KEY)


def test_nav_basic_401_carries_no_credentials(sandbox: SandboxServers, creds_world: SandboxWorld) -> None:
    failure = nav_failure(
        nav_client(sandbox, nav_auth="basic", nav_password=WRONG_NAV_SECRET), NavAuthError, "S-ORD101001"
    )
    assert failure.status == 401 and "NAV_PASSWORD" in str(failure)
    assert_clean(failure, WRONG_NAV_SECRET, NAV_PASSWORD, f"{NAV_USER}:{WRONG_NAV_SECRET}")


def test_token_endpoint_refusing_the_client_secret(
    sandbox: SandboxServers, creds_world: SandboxWorld
) -> None:
    failure = nav_failure(
        nav_client(sandbox, nav_client_secret=WRONG_NAV_SECRET), NavAuthError, "S-ORD101001"
    )
    assert "invalid_client" in str(failure) and "NAV_CLIENT_SECRET" in str(failure)
    assert_clean(failure, WRONG_NAV_SECRET, NAV_SECRET, f"{NAV_CLIENT_ID}:{WRONG_NAV_SECRET}")


def test_nav_401_with_a_bearer_token_carries_no_token(
    sandbox: SandboxServers, creds_world: SandboxWorld
) -> None:
    creds_world.nav.app_registered = False  # tokens are issued, then refused by the API
    failure = nav_failure(nav_client(sandbox, nav_client_secret=NAV_SECRET), NavAuthError, "S-ORD101001")
    tokens = list(creds_world.nav.tokens)
    assert len(tokens) == 2  # refused, fetched once more, refused again
    assert failure.status == 401 and "rejected the credentials twice" in str(failure)
    assert_clean(failure, NAV_SECRET, *tokens)


@pytest.mark.parametrize(
    ("token_url", "error"),
    [
        ("{nav}/another-tenant/oauth2/v2.0/token", NavAuthError),  # answers 400 invalid_tenant
        ("http://127.0.0.1:1/t/oauth2/v2.0/token", NavUnavailableError),  # nothing listens
    ],
)
def test_token_endpoint_failures(
    sandbox: SandboxServers, creds_world: SandboxWorld, token_url: str, error: type[NavError]
) -> None:
    url = token_url.format(nav=sandbox.nav_base_url)
    failure = nav_failure(
        nav_client(sandbox, nav_client_secret=NAV_SECRET, nav_token_url=url), error, "S-ORD101001"
    )
    assert "NAV_TOKEN_URL" in str(failure)
    assert_clean(failure, NAV_SECRET, f"{NAV_CLIENT_ID}:{NAV_SECRET}")


def echo_transport(status: int) -> httpx.MockTransport:
    """A server that echoes the whole request (headers and body) in its error answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        echoed = f"{request.headers.get('authorization', '')} {request.content.decode()}"
        if request.url.path.endswith("/token"):
            body = {"error": "invalid_client", "error_description": f"you sent {echoed}"}
        else:
            body = {"error": {"code": "Authentication_InvalidCredentials", "message": f"you sent {echoed}"}}
        return httpx.Response(status, json=body, request=request)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("status", [400, 401])
def test_shipstation_echoing_server(status: int) -> None:
    client = ShipStationClient(
        "https://ss.invalid", SS_KEY, SS_SECRET, transport=echo_transport(status), max_attempts=1
    )
    with client, pytest.raises(ShipStationError) as err:
        client.list_stores()
    assert_clean(err.value, SS_SECRET, f"{SS_KEY}:{SS_SECRET}")


def echo_settings(**fields: str) -> Settings:
    values = {"nav_odata_url": "https://nav.invalid/ODataV4/Company('C')", "nav_client_id": NAV_CLIENT_ID}
    return Settings(_env_file=None, **(values | fields))  # type: ignore[call-arg]


@pytest.mark.parametrize("status", [400, 401])
def test_nav_token_endpoint_echoing_the_client_secret(status: int) -> None:
    settings = echo_settings(
        nav_token_url="https://login.invalid/t/oauth2/v2.0/token", nav_client_secret=NAV_SECRET
    )
    failure = nav_failure(
        NavClient.from_settings(settings, transport=echo_transport(status), max_attempts=1), NavError, "S-1"
    )
    assert_clean(failure, NAV_SECRET)


@pytest.mark.parametrize("status", [400, 401])
def test_nav_echoing_the_bearer_token(status: int) -> None:
    token = "echo-bearer-token-9f8e7d6c"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": token, "expires_in": 3599}, request=request)
        return echo_transport(status).handle_request(request)

    settings = echo_settings(
        nav_token_url="https://login.invalid/t/oauth2/v2.0/token", nav_client_secret=NAV_SECRET
    )
    failure = nav_failure(
        NavClient.from_settings(settings, transport=httpx.MockTransport(handler), max_attempts=1),
        NavError,
        "S-1",
    )
    assert_clean(failure, NAV_SECRET, token)


@pytest.mark.parametrize("status", [400, 401])
def test_nav_echoing_the_basic_header(status: int) -> None:
    settings = echo_settings(nav_auth="basic", nav_username=NAV_USER, nav_password=NAV_PASSWORD)
    failure = nav_failure(
        NavClient.from_settings(settings, transport=echo_transport(status), max_attempts=1), NavError, "S-1"
    )
    assert_clean(failure, NAV_PASSWORD, f"{NAV_USER}:{NAV_PASSWORD}")


# --------------------------------------------------------------------------------------------
# The scan: full syncs on PostgreSQL, then every place a run writes to
# --------------------------------------------------------------------------------------------


@pytest.fixture
def dagster_pg(pg_url: str) -> Iterator[tuple[dg.DagsterInstance, str]]:
    """A PostgreSQL Dagster instance in a schema of its own: every table in it is this test's."""
    engine = sa.create_engine(pg_url)
    schema = f"dg_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    try:
        with postgres_instance(f"{pg_url}{sep}options=-csearch_path%3D{schema}") as instance:
            yield instance, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


def run_sync(harness: SyncHarness, *, expect_success: bool) -> dg.ExecuteInProcessResult:
    """One run of the real job at DEBUG on the console (more output, more places to leak)."""
    job = defs.resolve_job_def(JOB_NAME)
    result = job.execute_in_process(instance=harness.instance, raise_on_error=False, run_config=VERBOSE)
    assert result.success is expect_success
    return result


def store_secret(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(value + "\n"))
    assert main(["secrets", "set", name]) == 0


@pytest.fixture
def console_at_debug() -> Iterator[None]:
    """Every log record of the process also goes to stderr, so capfd sees what a console would."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def test_scanner_finds_planted_secrets(pg_url: str, tmp_path: Path) -> None:
    """The scanner used below does find a value in a text column, a compressed bytea column, a
    file and captured output, so its zero hits mean something."""
    engine = sa.create_engine(pg_url)
    schema = f"scan_{uuid.uuid4().hex[:12]}"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
            conn.execute(sa.text(f'create table "{schema}".t (a text, b bytea, c jsonb)'))
            conn.execute(
                sa.text(f'insert into "{schema}".t values (:a, :b, :c)'),
                {"a": f"x {SS_SECRET} y", "b": zlib.compress(f"z{NAV_SECRET}".encode()), "c": "{}"},
            )
        hits, counts = scan_schema(engine, schema, [SS_SECRET, NAV_SECRET, NAV_PASSWORD])
        assert set(hits) == {Hit(f"{schema}.t.a", SS_SECRET), Hit(f"{schema}.t.b", NAV_SECRET)}
        assert counts == {"t": 1}
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
        engine.dispose()
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "x.err").write_text(f"... {basic_token(SS_KEY, SS_SECRET)} ...")
    hits, files = scan_tree(tmp_path, needles_for(f"{SS_KEY}:{SS_SECRET}"))
    assert [h.needle for h in hits] == [basic_token(SS_KEY, SS_SECRET)] and len(files) == 1


def test_full_syncs_leave_no_secret_anywhere(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    creds_world: SandboxWorld,
    dagster_pg: tuple[dg.DagsterInstance, str],
    pg_schema_url: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    console_at_debug: None,
) -> None:
    instance, dagster_schema = dagster_pg
    world = creds_world
    sc.install_shipping_agents(world)
    written = [order_with_label(world, "SCAN-1001"), order_with_label(world, "SCAN-1002")]
    secret_key = Fernet.generate_key().decode()
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)

    with harness_for(monkeypatch, sandbox, world, instance, pg_schema_url) as harness:
        harness.apply_env(SHIPNAV_SECRET_KEY=secret_key, SHIPNAV_WEBHOOK_TOKEN=WEBHOOK_TOKEN)
        # 1. OAuth, the client secret only in the encrypted store.
        store_secret(monkeypatch, "NAV_CLIENT_SECRET", NAV_SECRET)
        monkeypatch.delenv("NAV_CLIENT_SECRET")
        first = run_sync(harness, expect_success=True)
        tokens = list(world.nav.tokens)
        assert tokens, "the run used OAuth"
        for _order, header, label in written:
            assert world.nav.sales_orders[header["No"]]["Package_Tracking_No"] == label["trackingNumber"]

        # 2. Basic auth.
        _o, basic_header, basic_label = order_with_label(world, "SCAN-1003")
        harness.apply_env(NAV_AUTH="basic", NAV_USERNAME=NAV_USER, NAV_PASSWORD=NAV_PASSWORD)
        run_sync(harness, expect_success=True)
        assert (
            world.nav.sales_orders[basic_header["No"]]["Package_Tracking_No"] == basic_label["trackingNumber"]
        )

        # 3. ShipStation refuses the secret: the failure (message and stack) goes to the event log.
        harness.apply_env(SHIPSTATION_API_SECRET=WRONG_SS_SECRET)
        run_sync(harness, expect_success=False)

        # 4. The token endpoint refuses a wrong client secret (the environment wins over the store).
        order_with_label(world, "SCAN-1004")
        harness.apply_env(
            SHIPSTATION_API_SECRET=SS_SECRET, NAV_AUTH="oauth2", NAV_CLIENT_SECRET=WRONG_NAV_SECRET
        )
        last = run_sync(harness, expect_success=False)

    needles = needles_for(
        SS_KEY,
        SS_SECRET,
        NAV_SECRET,
        NAV_PASSWORD,
        WEBHOOK_TOKEN,
        WRONG_SS_SECRET,
        WRONG_NAV_SECRET,
        secret_key,
        f"{SS_KEY}:{SS_SECRET}",
        f"{SS_KEY}:{WRONG_SS_SECRET}",
        f"{NAV_USER}:{NAV_PASSWORD}",
        f"{NAV_CLIENT_ID}:{NAV_SECRET}",
        *tokens,
    )
    engine = sa.create_engine(pg_schema_url)
    ledger_schema = pg_schema_url.rsplit("search_path%3D", 1)[1]
    try:
        # The scanner sees Dagster's own tables: a value planted in run_tags is found.
        canary = {"run_id": first.run_id, "key": "canary", "value": f"planted {SS_SECRET}"}
        with engine.begin() as conn:
            table = f'"{dagster_schema}".run_tags'
            conn.execute(
                sa.text(f"insert into {table} (run_id, key, value) values (:run_id, :key, :value)"), canary
            )
        planted, _ = scan_schema(engine, dagster_schema, needles)
        assert Hit(f"{dagster_schema}.run_tags.value", SS_SECRET) in planted
        with engine.begin() as conn:
            conn.execute(sa.text(f"delete from \"{dagster_schema}\".run_tags where key = 'canary'"))

        dagster_hits, dagster_counts = scan_schema(engine, dagster_schema, needles)
        ledger_hits, ledger_counts = scan_schema(engine, ledger_schema, needles)
    finally:
        engine.dispose()
    file_hits, files = scan_tree(Path(instance.root_directory), needles)
    out, err = capfd.readouterr()
    console_hits = scan_text("stdout", out, needles) + scan_text("stderr", err, needles)
    record_hits = scan_text("log records", "\n".join(caplog.messages) + "\n" + caplog.text, needles)

    # What was scanned is what the runs wrote: four runs, their events, snapshots, compute logs,
    # the ledger records and the stored (encrypted) secret, and a console at DEBUG.
    assert len(instance.get_runs(dg.RunsFilter(run_ids=[first.run_id, last.run_id]))) == 2
    assert dagster_counts["runs"] == 4 and dagster_counts["event_logs"] > 50 and dagster_counts["snapshots"]
    assert ledger_counts["shipnav_records"] >= 3 and ledger_counts["shipnav_secrets"] == 1
    assert any(p.suffix in (".out", ".err") for p in files)
    assert "RUN_SUCCESS" in err and "HTTP Request" in caplog.text

    assert dagster_hits + ledger_hits + file_hits + console_hits + record_hits == []
