"""deploy/free_pool_slots.py: lists who holds the NAV pool's slots and frees those of ended runs."""

import importlib.util
from pathlib import Path
from types import ModuleType

import dagster as dg
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "free_pool_slots.py"
POOL = "shipnav_nav_writes"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("free_pool_slots", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frees_the_slots_of_ended_runs_only(capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    with dg.instance_for_test() as instance:  # sets DAGSTER_HOME, as the services do
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 2)
        dead = dg.DagsterRun(job_name="shipnav_sync_job", status=dg.DagsterRunStatus.FAILURE)
        running = dg.DagsterRun(job_name="shipnav_replay_job", status=dg.DagsterRunStatus.STARTED)
        for run, step in ((dead, "nav_tracking_writeback"), (running, "replay_records")):
            instance.add_run(run)
            assert storage.claim_concurrency_slot(POOL, run.run_id, step).is_claimed

        assert script.main([]) == 1  # an ended run holds a slot: say so, change nothing
        listed = capsys.readouterr().out
        assert f"{POOL}: 2 of 2 slots held" in listed
        assert f"run {dead.run_id} (FAILURE): ended: free it with --free" in listed
        assert f"run {running.run_id} (STARTED): in progress" in listed

        assert script.main(["--free"]) == 0
        assert f"run {dead.run_id} (FAILURE): freed" in capsys.readouterr().out
        held = {slot.run_id for slot in storage.get_concurrency_info(POOL).claimed_slots}
        assert held == {running.run_id}
