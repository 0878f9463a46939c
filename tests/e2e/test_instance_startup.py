"""Issue #11, instance start-up: runs started together on a fresh Dagster home both succeed, and
``shipnav replay`` runs on the same instance as ``dagster job execute`` and refuses to start while
another run writes to NAV.

Without the lock (``shipnav_dagster/instance_lock.py``) two processes creating a fresh SQLite
home at once crashed one of them (``table secondary_indexes already exists``) or left
``alembic_version`` with two rows, after which every load of the instance failed.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from shipnav_dagster.cli import main
from shipnav_dagster.cli.common import EXIT_BUSY
from shipnav_dagster.instance import locate_instance, open_instance
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from tests.support.sync_harness import clean_environment

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "support" / "instance_race_worker.py"
REPEATS = 3
POOL = "shipnav_nav_writes"


def _env(sandbox: SandboxServers, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPSTATION_", "NAV_", "SHIPNAV_", "DAGSTER_"))
    }
    env.update(sandbox.env())
    env.update(extra)
    return env


def _alembic_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from alembic_version").fetchone()[0])


def _assert_one_alembic_head(storage: Path) -> None:
    for db in (storage / "history" / "runs.db", storage / "schedules" / "schedules.db"):
        assert _alembic_rows(db) == 1, f"{db} has more than one alembic_version row"


@pytest.fixture
def quiet_world(empty_world: SandboxWorld) -> SandboxWorld:
    empty_world.shipstation.rate_limit_per_minute = 10_000
    return empty_world


def test_two_processes_start_runs_together_on_fresh_homes(
    sandbox: SandboxServers, quiet_world: SandboxWorld, tmp_path: Path
) -> None:
    homes = [tmp_path / f"home{n}" for n in range(REPEATS)]
    for home in homes:
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    names = ("a", "b")
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), name, *map(str, homes)],
            env=_env(sandbox),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    try:
        for home in homes:
            # Both processes are past their imports and waiting: then both are let go at once.
            deadline = time.monotonic() + 120
            while not all(Path(f"{home}.ready-{name}").exists() for name in names):
                assert all(w.poll() is None for w in workers), "a worker exited early"
                assert time.monotonic() < deadline, "the workers never got ready"
                time.sleep(0.01)
            Path(f"{home}.go").touch()
        outputs = [w.communicate(timeout=240) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for worker, (out, errors) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, out + errors[-3000:]
        assert out.count("ok ") == REPEATS, out
    for home in homes:
        _assert_one_alembic_head(home)
        with open_instance(home) as instance:
            runs = instance.get_runs(filters=dg.RunsFilter(job_name="shipnav_sync_job"))
            assert sorted(r.tags["test/worker"] for r in runs) == ["a", "b"]
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory like the repository's: its dagster.yaml, no DAGSTER_HOME."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    return folder


def test_dagster_job_execute_twice_at_once_from_a_checkout(
    sandbox: SandboxServers, quiet_world: SandboxWorld, checkout: Path
) -> None:
    """The contract's command goes through instance_storage.py, which takes the same lock."""
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("job", "execute", "-m", "shipnav_dagster.definitions", "-j", "shipnav_sync_job"),
    ]
    processes = [
        subprocess.Popen(
            command,
            cwd=checkout,
            env=_env(sandbox, SHIPNAV_DATABASE_URL=f"sqlite:///{checkout / f'ledger-{n}.db'}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    results = [p.communicate(timeout=240) for p in processes]
    for process, (out, errors) in zip(processes, results, strict=True):
        assert process.returncode == 0, out[-2000:] + errors[-3000:]
    _assert_one_alembic_head(checkout / ".shipnav" / "dagster")


@pytest.fixture
def replay_env(
    sandbox: SandboxServers, quiet_world: SandboxWorld, checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    clean_environment(monkeypatch)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in [n for n in os.environ if n.startswith("DAGSTER_PG_")]:
        monkeypatch.delenv(name)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(checkout)
    yield checkout


def test_replay_without_dagster_home_uses_the_checkouts_local_instance(
    replay_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--all-due"]) == 0
    out = capsys.readouterr().out
    local = replay_env / ".shipnav" / "dagster"
    assert f"on the local Dagster instance in {local}" in out
    assert f"configured by {replay_env / 'dagster.yaml'}" in out
    # The run is where `dagster job execute` from this folder would look: other runs see it.
    location = locate_instance()
    assert (location.home, location.config_dir) == (local, replay_env)
    with open_instance() as instance:
        [run] = instance.get_runs(filters=dg.RunsFilter(job_name="shipnav_replay_job"))
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.run_id in out
    _assert_one_alembic_head(local)


def test_replay_refuses_while_another_writer_is_in_progress(
    replay_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_instance() as instance:
        sync = dg.DagsterRun(job_name="shipnav_sync_job", status=dg.DagsterRunStatus.STARTED)
        instance.add_run(sync)
    assert main(["replay", "--all-due"]) == EXIT_BUSY
    errors = capsys.readouterr().err
    assert f"shipnav_sync_job run {sync.run_id} (STARTED): in progress" in errors
    assert "Force termination immediately" in errors
    with open_instance() as instance:
        assert instance.get_runs(filters=dg.RunsFilter(job_name="shipnav_replay_job")) == []
        instance.report_run_failed(sync)
    assert main(["replay", "--all-due"]) == 0


def test_replay_refuses_while_a_dead_run_holds_the_nav_slot(
    replay_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finished run still holding the slot (killed before it gave it back) would make the new
    run's step spin until the slot is freed: the command says so instead."""
    with open_instance() as instance:
        dead = dg.DagsterRun(job_name="shipnav_replay_job", status=dg.DagsterRunStatus.FAILURE)
        instance.add_run(dead)
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        assert storage.claim_concurrency_slot(POOL, dead.run_id, "replay_records").is_claimed
    assert main(["replay", "--all-due"]) == EXIT_BUSY
    errors = capsys.readouterr().err
    assert f"shipnav_replay_job run {dead.run_id} (FAILURE): holds a {POOL} slot" in errors
    assert "Free concurrency slots" in errors
    with open_instance() as instance:
        instance.event_log_storage.free_concurrency_slots_for_run(dead.run_id)
    assert main(["replay", "--all-due"]) == 0


def test_replay_refuses_a_dagster_home_that_does_not_exist(
    replay_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = replay_env / "no-such-home"
    monkeypatch.setenv("DAGSTER_HOME", str(missing))
    assert main(["replay", "--all-due"]) == 2
    assert f"DAGSTER_HOME={missing} is not a directory" in capsys.readouterr().err
    assert not missing.exists()


def test_the_lock_nests_within_a_process_and_gives_way_where_nothing_can_be_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_instance holds the home's lock while the checkout's storage class takes the same one:
    nesting must not deadlock (flock would block on a second descriptor). A folder where the
    lock file cannot be created is no error: no SQLite file can be created there to race on."""
    from shipnav_dagster import instance_lock
    from shipnav_dagster.instance_lock import LOCK_FILE_NAME, instance_init_lock

    with instance_init_lock(tmp_path) as outer, instance_init_lock(tmp_path / ".") as inner:
        assert outer == inner == tmp_path / LOCK_FILE_NAME

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError("read-only folder")

    monkeypatch.setattr(instance_lock.os, "open", refuse)
    with instance_init_lock(tmp_path / "elsewhere") as path:
        assert not path.exists()
