"""Issue #11, pool slots of dead runs: with ``dagster-daemon`` running, the ``shipnav_nav_writes``
slot of a run killed mid-write is freed and the next run completes.

Worth its ~30 seconds: the slot is held in Dagster's storage by a run worker process, and only the
real daemon (its code server notices the dead worker and fails the run; its MonitoringDaemon frees
the slots of ended runs after ``run_monitoring.free_slots_after_run_end_seconds``) gives it back.
Without that, every later NAV writer waits for the slot for ever (and a run executed in process
spins while it waits). This is the promise ``deploy/dagster.yaml`` makes, checked with that
file's own settings: PostgreSQL storage (a fresh schema), the pool's default limit 1, the
writes-nav tag limit, run retries; only the daemon's polling intervals and the slot delay are
shortened so the test takes seconds, not minutes.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from tests.support.sync_harness import ago

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = REPO / "deploy" / "dagster.yaml"
WORKSPACE = REPO / "workspace.yaml"
POOL = "shipnav_nav_writes"
FREE_SLOTS_AFTER = 2  # seconds; deploy/dagster.yaml says 300
TIMEOUT = 150.0  # a generous bound on every wait; the whole test usually takes about 30 s
BIN = Path(sys.executable).parent


def deploy_config_for_test(pg_url: str) -> dict[str, Any]:
    """deploy/dagster.yaml with the test's PostgreSQL and the daemon's intervals shortened."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    monitoring = config["run_monitoring"]
    # What production relies on, asserted on the shipped file before it is changed below.
    assert monitoring["enabled"] is True
    assert monitoring["free_slots_after_run_end_seconds"] > 0
    assert config["concurrency"]["pools"]["default_limit"] == 1
    config["storage"] = {"postgres": {"postgres_url": pg_url}}
    monitoring.update(poll_interval_seconds=1, free_slots_after_run_end_seconds=FREE_SLOTS_AFTER)
    # The queue's only knob outside `concurrency:` (default: every 5 seconds).
    config["run_coordinator"] = {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {"dequeue_interval_seconds": 1},
    }
    return config


@dataclass
class Daemon:
    home: Path
    env: dict[str, str]
    log: Path

    def launch_sync(self, tags: dict[str, str] | None = None) -> None:
        """`dagster job launch`, as the operations guide does: the run goes to the daemon's queue."""
        command = [str(BIN / "dagster"), "job", "launch", "-w", str(WORKSPACE), "-j", "shipnav_sync_job"]
        if tags:
            command += ["--tags", json.dumps(tags)]
        done = subprocess.run(
            command, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def daemon(
    sandbox: SandboxServers, empty_world: SandboxWorld, pg_schema_url: str, tmp_path: Path
) -> Iterator[Daemon]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(deploy_config_for_test(pg_schema_url)))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPSTATION_", "NAV_", "SHIPNAV_", "DAGSTER_"))
    }
    env.update(sandbox.env())
    env.update(
        DAGSTER_HOME=str(home),
        SHIPNAV_DATABASE_URL=pg_schema_url,  # two runs write it at once
        NAV_MAX_CONCURRENCY="1",  # one NAV request at a time: the write step lasts
    )
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server and run workers share its process group
        )
    try:
        yield Daemon(home, env, log)
    finally:
        _stop_group(process)


def _stop_group(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM to the daemon's process group, then SIGKILL to whatever of it is left.

    The daemon exits on SIGTERM, but a code server waiting for a run that waits for a slot can
    outlive it; every process the daemon started is in its group, so none is left behind.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)


def wait_for(what: str, probe: Callable[[], Any], daemon: Daemon) -> Any:
    """Poll ``probe`` until it returns something truthy; fail after TIMEOUT with the daemon's log."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; daemon log:\n{daemon.log_text()[-4000:]}")


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid, from the engine event 'Started process for run (pid: N).'"""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = re.match(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if found:
            return int(found.group(1))
    return None


def slot_holders(instance: dg.DagsterInstance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def waiting_runs(instance: dg.DagsterInstance) -> set[str]:
    """Runs with a step queued for the pool and not yet given a slot."""
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return {step.run_id for step in info.pending_steps if step.assigned_timestamp is None}


def step_start_time(instance: dg.DagsterInstance, run_id: str, step_key: str) -> float | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START):
        if entry.step_key == step_key:
            return entry.timestamp
    return None


def test_the_daemon_frees_the_slot_of_a_killed_run_and_the_next_run_completes(
    daemon: Daemon, empty_world: SandboxWorld
) -> None:
    world = empty_world
    world.shipstation.rate_limit_per_minute = 10_000
    sc.install_shipping_agents(world)
    for n in range(20):
        order, _ = sc.add_customer_order(
            world, order_number=f"SLOT-{n}", customer_name=f"Slot {n}", order_date=ago(hours=2)
        )
        sc.buy_label(world, order["orderId"], created=ago(minutes=5))
    # 20 PATCHes one at a time, a second each: the victim holds the slot long enough for the
    # second run to be launched and to queue for it (the kill ends the wait).
    world.nav.faults.latency_ms = 1000

    with dg.DagsterInstance.from_config(str(daemon.home)) as instance:
        daemon.launch_sync()
        holders = wait_for("a run to take the NAV slot", lambda: slot_holders(instance), daemon)
        [victim] = holders
        # A second writer without the writes-nav tag (as a write-back materialized by hand would
        # be): the queue lets it start, and the pool makes its write step wait for the slot.
        daemon.launch_sync(tags={"shipnav/writes-nav": "false"})
        [waiting] = wait_for("the next run to wait for the slot", lambda: waiting_runs(instance), daemon)
        assert waiting != victim

        pid = wait_for("the victim's worker pid", lambda: worker_pid(instance, victim), daemon)
        os.kill(pid, signal.SIGKILL)
        world.nav.faults.latency_ms = 0

        def status(run_id: str) -> dg.DagsterRunStatus:
            run = instance.get_run_by_id(run_id)
            assert run is not None
            return run.status

        # The code server sees the dead worker and fails the run; its slot outlives it.
        wait_for("the killed run to be failed", lambda: status(victim) == dg.DagsterRunStatus.FAILURE, daemon)
        wait_for(
            "the waiting run to finish",
            lambda: status(waiting) in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE),
            daemon,
        )
        assert status(waiting) == dg.DagsterRunStatus.SUCCESS, daemon.log_text()[-4000:]
        assert victim not in slot_holders(instance)
        # Only the MonitoringDaemon frees the slot of an ended run, and only
        # free_slots_after_run_end_seconds after its end: the waiting step started after that.
        # (Its "Freed N slots" log line never appears in 1.13.27: the storage method it reads
        # the count from returns None.)
        ended = instance.get_run_record_by_id(victim)
        assert ended is not None and ended.end_time is not None
        started = step_start_time(instance, waiting, "nav_tracking_writeback")
        assert started is not None and started >= ended.end_time + FREE_SLOTS_AFTER
