"""``shipnav dev``: the sandbox and ``dagster dev`` on a local instance, wired together, so that
everything in the Dagster UI works with no credentials: materializing, launching
``shipnav_replay_job``, switching schedules and sensors on.

The sandbox runs in this process and keeps its state until ``shipnav dev`` stops. Its
environment (the emulators' URLs and sandbox credentials, the ledger in the instance folder)
is given to ``dagster dev`` and so reaches the code location, its runs and its sensors. The
instance folder is recreated at every start, because every start seeds a new sandbox: a ledger
that remembered an earlier sandbox would report every earlier write as missing from NAV.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import httpx

from shipnav_dagster.cli.common import CommandError, err, format_env, shipnav_command, stop_event
from shipnav_dagster.cli.home import prepare_home

PORT = click.IntRange(1, 65535)
READY_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0
LOG_NAME = "dagster.log"
PID_NAME = "shipnav-dev.pid"
# Variables of the caller's shell that would point the session at another system or instance.
FOREIGN = ("SHIPNAV_", "SHIPSTATION_", "NAV_", "DAGSTER_HOME", "DAGSTER_PG")


@click.command(
    "dev",
    help="Start the seeded ShipStation and NAV sandbox and `dagster dev` on a local Dagster "
    "instance (recreated in --home at every start), wired together: syncs, replays, schedules "
    "and sensors all work from the Dagster UI with no credentials. The sandbox's environment is "
    "also written to HOME/shipnav.env for shipnav commands in another terminal. Runs until "
    "interrupted (Ctrl-C or SIGTERM), then stops everything it started.",
    short_help="the sandbox and the Dagster UI on a local instance, wired together",
)
@click.option("--home", default=".shipnav/dev", show_default=True, help="instance folder, recreated")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface of the Dagster UI")
@click.option("--port", type=PORT, default=3000, show_default=True, help="port of the Dagster UI")
@click.option("--seed", type=int, default=7, show_default=True, help="seed of the generated shop")
@click.option(
    "--orders", type=click.IntRange(min=0), default=300, show_default=True, help="ShipStation orders"
)
@click.option(
    "--shipstation",
    "generation",
    type=click.Choice(["v1", "v2"]),
    default="v1",
    show_default=True,
    help="the ShipStation API generation the sync reads (the sandbox serves both, one shop)",
)
def dev(home: str, host: str, port: int, seed: int, orders: int, generation: str) -> int:
    from shipnav_dagster.instance import open_instance
    from shipnav_dagster.sandbox.seed import build_world
    from shipnav_dagster.sandbox.server import SandboxServers

    running = _running_session(Path(home))
    if running:
        raise CommandError(
            f"another shipnav dev (process {running}) is using {Path(home).resolve()}; stop it first, "
            "or give this one another --home"
        )
    folder = prepare_home(Path(home), "dev")
    (folder / PID_NAME).write_text(f"{os.getpid()}\n")
    stop = stop_event()
    world = build_world(seed=seed, orders=orders)
    servers = SandboxServers(world)
    try:
        servers.start()
    except (RuntimeError, OSError) as exc:
        with contextlib.suppress(RuntimeError):
            servers.stop()
        err(f"shipnav dev: the sandbox did not start: {exc}")
        return 1
    try:
        # Dagster's SQLite storage is created here, once, before the webserver, the daemon and
        # the code server open the instance at the same moment (shipnav_dagster/instance_lock.py).
        with open_instance(folder):
            pass
        env = session_environment(servers.env(shipstation_api_version=generation), folder)
        (folder / "shipnav.env").write_text(format_env(env) + "\n")
        err(
            f"shipnav dev: sandbox ShipStation API {generation.upper()} at {env['SHIPSTATION_API_URL']}, "
            f"NAV at {servers.nav_base_url} ({len(world.shipstation.orders)} orders, "
            f"{len(world.shipstation.shipments)} labels, {len(world.nav.sales_orders)} NAV sales orders)"
        )
        return serve_dagster(env, folder, host, port, stop)
    finally:
        servers.stop()
        (folder / PID_NAME).unlink(missing_ok=True)
        err("shipnav dev: stopped")


def _running_session(home: Path) -> int | None:
    """The process id of a `shipnav dev` still serving from ``home``, if there is one."""
    try:
        pid = int((home / PID_NAME).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() else None


def session_environment(sandbox_env: dict[str, str], folder: Path) -> dict[str, str]:
    """What the code location sees: the sandbox, and the ledger and reports in the instance folder."""
    return sandbox_env | {
        "DAGSTER_HOME": str(folder),
        "SHIPNAV_DATABASE_URL": f"sqlite:///{folder / 'shipnav-ledger.db'}",
        "SHIPNAV_REPORT_DIR": str(folder / "reports"),
    }


def serve_dagster(env: dict[str, str], folder: Path, host: str, port: int, stop: threading.Event) -> int:
    """``dagster dev`` in its own process group until ``stop`` is set or it exits; then it and
    everything it started (webserver, daemon, code server, run workers) are stopped."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)} | env
    # `dagster dev --shutdown-pipe FD` stops as on Ctrl-C when a line SHUTDOWN arrives on FD
    # (dagster/_cli/dev.py in https://github.com/dagster-io/dagster/tree/1.13.27/python_modules).
    read_fd, write_fd = os.pipe()
    command = [
        sys.executable, "-m", "dagster", "dev",
        "-m", "shipnav_dagster.definitions",
        "--host", host, "--port", str(port),
        "--shutdown-pipe", str(read_fd),
    ]  # fmt: skip
    # Dagster's services and the runs' step logs go to a file: the terminal keeps shipnav's lines.
    log = folder / LOG_NAME
    try:
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                cwd=folder,  # no ./dagster.yaml or ./.env of the caller's folder
                env=child_env,
                pass_fds=[read_fd],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches shipnav, which stops the group in order
            )
    finally:
        os.close(read_fd)
    try:
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        if not _wait_until_serving(url, process, stop):
            _tail(log)
            return 1 if process.poll() is not None else 0
        _print_ready(url, folder)
        while not stop.wait(0.5):
            if process.poll() is not None:
                err(f"shipnav dev: dagster dev exited with code {process.returncode}")
                _tail(log)
                return 1
        return 0
    finally:
        _stop(process, write_fd)


def _tail(log: Path, lines: int = 20) -> None:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    if text:
        err(f"shipnav dev: the last lines of {log}:\n" + "\n".join(text[-lines:]))


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], stop: threading.Event) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if stop.is_set():
            return False
        if process.poll() is not None:
            err(f"shipnav dev: dagster dev exited with code {process.returncode} (is port {url} free?)")
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/server_info", timeout=2).is_success:
                return True
        time.sleep(0.5)
    err(f"shipnav dev: the Dagster UI did not answer at {url} within {READY_TIMEOUT_SECONDS:.0f} s")
    return False


def _print_ready(url: str, folder: Path) -> None:
    shipnav = shipnav_command()
    err(
        f"shipnav dev: the Dagster UI is at {url}\n"
        f"  instance, ledger and reports: {folder} (recreated at every start)\n"
        f"  Dagster's own log: {folder / LOG_NAME}\n"
        "  a sync: Jobs > shipnav_sync_job > Materialize all; a replay: Jobs > shipnav_replay_job >\n"
        "  Launchpad; schedules and sensors: Automation; the month-end report: Assets >\n"
        "  nav_month_end_report > Materialize…\n"
        "The same sandbox and ledger from another terminal:\n"
        f"  set -a; . {folder / 'shipnav.env'}; set +a\n"
        f"  {shipnav} ledger\n"
        f"  {shipnav} report --month {time.strftime('%Y-%m')}\n"
        "Press Ctrl-C to stop the UI, the daemon and the sandbox."
    )


def _stop(process: subprocess.Popen[bytes], write_fd: int) -> None:
    """Ask dagster dev to shut down; after STOP_TIMEOUT_SECONDS, or once it is gone, end what
    is left of its process group (a code server or run worker can outlive it)."""
    with contextlib.suppress(OSError):
        os.write(write_fd, b"SHUTDOWN\n")
    with contextlib.suppress(OSError):
        os.close(write_fd)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
