"""Bad settings are one message that lists every problem, wherever they surface: a CLI command
(exit 2, no traceback), a run (its first step fails with one dg.Failure), and never the code
location, which always loads. Reading commands never create a ledger."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from shipnav_dagster.cli import main
from shipnav_dagster.settings import Settings, check_settings

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Wrong in three ways at once: a value that is not allowed, a malformed URL, missing credentials.
# (SHIPSTATION_API_VERSION=v1: a key without a secret is V1's missing secret, where V2 needs none.)
BAD = {
    "NAV_AUTH": "foo",
    "NAV_ODATA_URL": "nav.example.com/odata",
    "SHIPSTATION_API_VERSION": "v1",
    "SHIPSTATION_API_KEY": "key-only",
}
# Every problem of BAD, for both systems: NAV's credentials are those of the default NAV_AUTH.
PROBLEMS = [
    "NAV_AUTH: expected",
    "NAV_ODATA_URL: expected",
    "SHIPSTATION_API_SECRET: missing",
    "NAV_TOKEN_URL: missing",
    "NAV_CLIENT_ID: missing",
    "NAV_CLIENT_SECRET: missing",
]


def clean_environ() -> dict[str, str]:
    names = {n.upper() for n in Settings.model_fields} | {"DAGSTER_HOME"}
    return {k: v for k, v in os.environ.items() if k.upper() not in names and not k.startswith("DAGSTER_PG")}


@pytest.fixture
def bad_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment BAD, nothing else, in an empty working folder (no stray .env)."""
    for name in [*(n.upper() for n in Settings.model_fields), "DAGSTER_HOME"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in BAD.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_every_problem(text: str) -> None:
    for problem in PROBLEMS:
        assert problem in text, f"{problem!r} missing from:\n{text}"
    assert "problems):" in text and "Traceback" not in text
    assert "NAV_USERNAME" not in text  # not needed for the (default) oauth2


def test_one_message_names_every_problem_of_both_systems(bad_env: Path) -> None:
    with pytest.raises(Exception) as raised:
        check_settings()
    assert_every_problem(str(raised.value))
    assert str(raised.value).startswith("the settings need fixing (6 problems):")


@pytest.mark.parametrize(
    "argv",
    [
        ["ledger"],
        ["ledger", "show", "shipment:1"],
        ["replay", "--all-due"],
        ["report", "--month", "2026-11"],
        ["webhooks", "serve"],
    ],
)
def test_every_command_prints_the_list_and_exits_2(
    bad_env: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("shipnav: the settings need fixing (6 problems):")
    assert_every_problem(captured.err)
    assert list(bad_env.iterdir()) == []  # nothing created


def test_the_console_script_prints_no_traceback(tmp_path: Path) -> None:
    env = clean_environ() | BAD
    done = subprocess.run(
        [sys.executable, "-m", "shipnav_dagster.cli", "replay", "--all-due"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert_every_problem(done.stderr)
    assert len(done.stderr.splitlines()) == len(PROBLEMS) + 3  # heading, problems, NAV_AUTH note, fix


@pytest.mark.parametrize("job_name", ["shipnav_sync_job", "shipnav_replay_job", "shipnav_reconcile_job"])
def test_a_run_fails_at_its_first_step_with_one_failure(bad_env: Path, job_name: str) -> None:
    from shipnav_dagster.definitions import defs

    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET
        )
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1  # the first step; the others never start
    data = failures[0].event_specific_data
    assert data is not None and data.user_failure_data is not None  # a dg.Failure, not a crash
    assert_every_problem(data.user_failure_data.description or "")
    started = [e.step_key for e in result.all_events if e.is_step_start]
    assert started == [failures[0].step_key]
    # The UI shows no stack trace under the message (only Dagster's frames would be there) ...
    assert data.error is not None and data.error.stack == []
    # ... and the process's own tracebacks are whole again once the run is over.
    assert not hasattr(sys, "tracebacklimit")


def test_the_schedule_loads_whatever_is_wrong(monkeypatch: pytest.MonkeyPatch, bad_env: Path) -> None:
    from shipnav_dagster.defs.sync import build_sync_schedule

    monkeypatch.setenv("SHIPNAV_SYNC_CRON", "every quarter hour")
    schedule = build_sync_schedule()
    assert schedule.cron_schedule == "*/15 * * * *"  # the default until the runs' message is heeded


def test_the_code_location_loads_with_bad_settings(tmp_path: Path) -> None:
    """What `dagster dev` and the webserver do: load the location, with the settings all wrong."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = clean_environ() | BAD | {"SHIPNAV_SYNC_CRON": "often", "DAGSTER_HOME": str(home)}
    executable = shutil.which("dagster", path=str(Path(sys.executable).parent))
    assert executable
    done = subprocess.run(
        [executable, "definitions", "validate", "-m", "shipnav_dagster.definitions"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BetaWarning" not in done.stderr, done.stderr  # resolved once, quietly (definitions.py)


def test_reading_commands_without_a_ledger_create_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [*(n.upper() for n in Settings.model_fields), "DAGSTER_HOME"]:
        monkeypatch.delenv(name, raising=False)
    # NAV settings that are valid (the report needs them) but never contacted.
    monkeypatch.setenv("NAV_AUTH", "basic")
    monkeypatch.setenv("NAV_ODATA_URL", "http://127.0.0.1:9/ODataV4/Company('X')")
    monkeypatch.setenv("NAV_USERNAME", "u")
    monkeypatch.setenv("NAV_PASSWORD", "p")
    monkeypatch.chdir(tmp_path)
    for argv in (["ledger"], ["ledger", "show", "shipment:1"], ["report", "--month", "2026-11"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"shipnav: no ledger at {tmp_path / '.shipnav' / 'shipnav-ledger.db'}"), err
        assert "DAGSTER_HOME is not set" in err
    home = tmp_path / "instance"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["ledger"]) == 2
    assert f"no ledger at {home / 'shipnav-ledger.db'}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instance"]
    assert list(home.iterdir()) == []
