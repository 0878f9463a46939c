"""``shipnav dev`` as an operator runs it: the console script in its own process, with no shipnav
settings at all. It must serve the Dagster UI; runs launched through Dagster's GraphQL API (what
the UI's Launch Run does) must write to its sandbox; and when it is stopped, everything it
started must stop."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from dagster_graphql import DagsterGraphQLClient

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.settings import Settings

# DagsterGraphQLClient 1.13 passes gql its variables the deprecated way; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values and operation_name:DeprecationWarning")
READY_SECONDS = 180
RUN_SECONDS = 180


@dataclass
class DevSession:
    process: subprocess.Popen[bytes]
    home: Path
    url: str
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with(home: Path) -> list[int]:
    """Processes whose environment names this session's instance folder (ours are the only ones)."""
    found = []
    marker = f"DAGSTER_HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def read_env_file(path: Path) -> dict[str, str]:
    """The NAME=value lines `shipnav dev` writes, read back by a POSIX shell."""
    done = subprocess.run(
        ["sh", "-c", f"set -a; . '{path}'; env -0"], capture_output=True, env={}, check=True
    )
    pairs = (item.split(b"=", 1) for item in done.stdout.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


@contextlib.contextmanager
def dev_session(cwd: Path, *args: str) -> Iterator[DevSession]:
    """`shipnav dev` started in ``cwd`` with no shipnav settings, until it says the UI is ready;
    interrupted (then killed, if it must be) on the way out."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the processes shipnav dev started")
    home = cwd / ".shipnav" / "dev"
    port = free_port()
    names = {n.upper() for n in Settings.model_fields} | {"DAGSTER_HOME"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names and not k.startswith("DAGSTER_PG")}
    log = cwd / "shipnav-dev.log"
    command = [
        sys.executable,
        "-m",
        "shipnav_dagster.cli",
        "dev",
        "--port",
        str(port),
        "--orders",
        "80",
        *args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    session = DevSession(process, home, f"http://127.0.0.1:{port}", port, log)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while "the Dagster UI is at" not in session.output():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"shipnav dev did not become ready:\n{session.output()[-4000:]}")
            time.sleep(0.5)
        yield session
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                for pid in [process.pid, *processes_with(home)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSession]:
    with dev_session(tmp_path_factory.mktemp("dev")) as session:
        yield session


def wait_for_run(client: DagsterGraphQLClient, run_id: str) -> str:
    deadline = time.monotonic() + RUN_SECONDS
    while True:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(1)


def test_the_ui_serves_and_the_terminal_says_what_to_do(session: DevSession) -> None:
    info = httpx.get(f"{session.url}/server_info", timeout=10).json()
    assert info["dagster_webserver_version"]
    out = session.output()
    assert "Traceback" not in out and "Warning" not in out, out
    assert f"the Dagster UI is at {session.url}" in out
    assert f"set -a; . {session.home / 'shipnav.env'}; set +a" in out
    assert "dagster - " not in out  # Dagster's services log to a file, not the terminal
    assert f"Dagster's own log: {session.home / 'dagster.log'}" in out
    config = (session.home / "dagster.yaml").read_text()
    assert "nux:\n  enabled: false" in config and "telemetry:\n  enabled: false" in config


def test_runs_launched_through_graphql_write_to_the_sandbox(session: DevSession) -> None:
    client = DagsterGraphQLClient("127.0.0.1", port_number=session.port)
    sync = client.submit_job_execution("shipnav_sync_job")
    assert wait_for_run(client, sync) == "SUCCESS"

    env = read_env_file(session.home / "shipnav.env")
    assert env["DAGSTER_HOME"] == str(session.home)
    engine = sa.create_engine(env["SHIPNAV_DATABASE_URL"])
    with engine.connect() as conn:
        written = conn.execute(
            sa.select(t.records.c.nav_order_no, t.records.c.tracking_number, t.records.c.last_run_id)
            .where(t.records.c.status == "written")
            .order_by(t.records.c.record_key)
        ).all()
    engine.dispose()
    assert len(written) > 20
    # NAV, asked over HTTP with the session's own settings, holds what the run wrote: each order
    # the tracking of one of its written labels (the master; additional packages share the order).
    by_order: dict[str, set[str]] = {}
    for nav_order_no, tracking, run_id in written:
        assert run_id == sync
        by_order.setdefault(nav_order_no, set()).add(tracking)
    nav = NavClient.from_settings(Settings(**{k.lower(): v for k, v in env.items()}))
    with nav:
        held = {
            o["No"]: o["Package_Tracking_No"]
            for o in nav.find_sales_orders("No", sorted(by_order), select=["No", "Package_Tracking_No"])
        }
    assert {no: held.get(no) in trackings for no, trackings in by_order.items()} == dict.fromkeys(
        by_order, True
    )

    # The replay job with the launchpad's default (empty) config, and the reconciliation.
    replay = client.submit_job_execution(
        "shipnav_replay_job", run_config={"ops": {"replay_records": {"config": {}}}}
    )
    assert wait_for_run(client, replay) == "SUCCESS"
    reconcile = client.submit_job_execution("shipnav_reconcile_job")
    assert wait_for_run(client, reconcile) == "SUCCESS"
    assert 'Started execution of run for "shipnav_sync_job"' in (session.home / "dagster.log").read_text()

    # The second terminal of the README: the session's environment, then the month-end report.
    month = time.strftime("%Y-%m")
    out = session.home.parent / "second-terminal"
    out.mkdir()
    shipnav = Path(sys.executable).parent / "shipnav"
    done = subprocess.run(
        [
            "sh",
            "-c",
            f'set -a; . "{session.home / "shipnav.env"}"; set +a; "{shipnav}" report --month {month}',
        ],
        cwd=out,
        env=fresh_machine_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"reading the ledger at {session.home / 'shipnav-ledger.db'}" in done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert (out / f"shipnav-month-end-{month}.xlsx").is_file() and "in_nav" in done.stdout


def test_stopping_stops_everything_it_started(session: DevSession) -> None:
    env = read_env_file(session.home / "shipnav.env")
    started = processes_with(session.home)
    assert len(started) >= 4, started  # dagster dev, webserver, daemon, code server (at least)
    os.killpg(session.process.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
    assert session.process.wait(timeout=90) == 0, session.output()[-3000:]
    deadline = time.monotonic() + 15
    while processes_with(session.home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with(session.home) == []
    for url in (f"{session.url}/server_info", env["SHIPSTATION_API_URL"], env["NAV_ODATA_URL"]):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=5)
    assert session.output().rstrip().endswith("shipnav dev: stopped")


def fresh_machine_env() -> dict[str, str]:
    """A shell of a fresh machine: no shipnav settings and no virtualenv on PATH."""
    names = {n.upper() for n in Settings.model_fields} | {"DAGSTER_HOME", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names and not k.startswith("DAGSTER_PG")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def test_the_demo_hints_run_as_written(tmp_path: Path) -> None:
    # The hints name .venv/bin/shipnav, relative to the checkout: run them from a folder whose
    # .venv is the virtualenv running these tests (the checkout's .venv, or CI's own venv).
    root = tmp_path / "checkout"
    root.mkdir()
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    assert (root / ".venv" / "bin" / "shipnav").exists(), "shipnav is not installed in this virtualenv"
    env = fresh_machine_env()
    home = tmp_path / "demo"
    done = subprocess.run(
        [".venv/bin/shipnav", "demo", "--home", str(home)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Warning" not in done.stdout + done.stderr, done.stderr
    lines = done.stdout.splitlines()
    hints = [
        lines[i + 1].strip() for i, line in enumerate(lines) if line.endswith(":") and i + 1 < len(lines)
    ]
    hints = [h for h in hints if ".venv/bin/shipnav" in h]
    assert hints == [f"DAGSTER_HOME={home} .venv/bin/shipnav ledger", ".venv/bin/shipnav dev"], lines[-8:]
    ledger = subprocess.run(
        ["sh", "-c", hints[0]], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert ledger.returncode == 0, ledger.stderr
    assert ledger.stdout.startswith("records by status: ") and "written" in ledger.stdout
    assert ledger.stderr == f"shipnav: reading the ledger at {home / 'shipnav-ledger.db'}\n"
    assert "nux:\n  enabled: false" in (home / "dagster.yaml").read_text()


def test_a_home_shipnav_did_not_make_is_never_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shipnav_dagster.cli import main

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "dagster.yaml").write_text("storage: {}\n")
    assert main(["dev", "--home", str(precious)]) == 2
    assert "was not made by shipnav" in capsys.readouterr().err
    assert (precious / "dagster.yaml").read_text() == "storage: {}\n"
    assert main(["demo", "--home", str(precious)]) == 2


def test_dev_syncs_through_shipstation_v2_when_asked(tmp_path: Path) -> None:
    with dev_session(tmp_path, "--shipstation", "v2") as session:
        env = read_env_file(session.home / "shipnav.env")
        assert env["SHIPSTATION_API_VERSION"] == "v2" and "SHIPSTATION_API_SECRET" not in env
        assert f"sandbox ShipStation API V2 at {env['SHIPSTATION_API_URL']}" in session.output()
        client = DagsterGraphQLClient("127.0.0.1", port_number=session.port)
        assert wait_for_run(client, client.submit_job_execution("shipnav_sync_job")) == "SUCCESS"
        engine = sa.create_engine(env["SHIPNAV_DATABASE_URL"])
        with engine.connect() as conn:
            written = (
                conn.execute(sa.select(t.records.c.record_key).where(t.records.c.status == "written"))
                .scalars()
                .all()
            )
        engine.dispose()
    # V2 labels are stored under the V1 shipment ids they name (se-N is shipment N).
    assert len(written) > 20 and all(k.startswith(("shipment:", "fulfillment:")) for k in written)
