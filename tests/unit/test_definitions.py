"""The code location: the contract's names, the schedule's settings, and the CLI validators."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def fresh_defs(monkeypatch: pytest.MonkeyPatch, **env: str) -> dg.Definitions:
    """Definitions built under ``env`` (the schedule reads SHIPNAV_SYNC_CRON when loaded)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import shipnav_dagster.defs.sync as jobs

    return dg.Definitions(jobs=[jobs.shipnav_sync_job], schedules=[jobs.build_sync_schedule()])


def test_contract_names_load() -> None:
    from shipnav_dagster.definitions import defs

    dg.Definitions.validate_loadable(defs)
    for job in ("shipnav_sync_job", "shipnav_replay_job"):
        assert defs.resolve_job_def(job).name == job
    assert defs.resolve_schedule_def("shipnav_sync_schedule").job_name == "shipnav_sync_job"
    for sensor in ("shipnav_unmatched_retry_sensor", "shipnav_webhook_sensor"):
        assert defs.resolve_sensor_def(sensor).job_name == "shipnav_replay_job"
    sync = defs.resolve_job_def("shipnav_sync_job")
    assert sync.tags["shipnav/writes-nav"] == "true"
    assert defs.resolve_job_def("shipnav_replay_job").tags["shipnav/writes-nav"] == "true"
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"shipstation_shipments", "shipment_matches", "nav_tracking_writeback", "nav_sales_orders"} <= keys


def test_schedule_defaults_every_15_minutes_in_an_explicit_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPNAV_SYNC_CRON", raising=False)
    monkeypatch.delenv("SHIPNAV_SYNC_TIMEZONE", raising=False)
    schedule = fresh_defs(monkeypatch).resolve_schedule_def("shipnav_sync_schedule")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.execution_timezone == "America/Los_Angeles"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 27, 12, 15, tzinfo=UTC)
    ) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    assert requests is not None and len(requests) == 1


def test_schedule_follows_shipnav_sync_cron(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = fresh_defs(monkeypatch, SHIPNAV_SYNC_CRON="*/5 6-20 * * 1-5").resolve_schedule_def(
        "shipnav_sync_schedule"
    )
    assert schedule.cron_schedule == "*/5 6-20 * * 1-5"


def _cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_PG", "SHIPNAV_", "NAV_"))}
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env.update(DAGSTER_HOME=str(home), DAGSTER_DG_UPDATE_CHECK_ENABLED="0", DAGSTER_DISABLE_TELEMETRY="1")
    return env


@pytest.mark.parametrize(
    "command",
    [
        ["dagster", "definitions", "validate"],
        ["dg", "check", "defs"],
    ],
)
def test_cli_validators_pass_with_a_temporary_dagster_home(tmp_path: Path, command: list[str]) -> None:
    executable = shutil.which(command[0], path=str(Path(sys.executable).parent))
    assert executable, f"{command[0]} is not installed in this environment"
    done = subprocess.run(
        [executable, *command[1:]],
        cwd=ROOT,
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
