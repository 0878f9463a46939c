"""The Dagster UI as an operator sees it, driven in headless Chromium with Playwright.

A temporary Dagster instance gets the history of a working day against the in-process sandbox:
a ``shipnav_sync_job`` run, a tracking number changed in NAV behind shipnav's back, a
``shipnav_reconcile_job`` run that finds it, the missing NAV orders created, and two more syncs.
Then ``dagster-webserver`` serves that instance and the tests look at what a user looks at: the
asset lineage, the outcome counts of the latest ``nav_tracking_writeback`` materialization, the
reconciliation's verdict (still shown after the later syncs) and its findings, the tracking lag
plotted over the syncs, the switch that turns ``shipnav_sync_schedule`` on (checked afterwards in
the instance and over GraphQL), and the launchpad of ``shipnav_replay_job``.

Screenshots of every step go to ``tests/artifacts/ui/`` (git-ignored). The lineage and the lag
plots are also the README's pictures (``docs/images/dagster-ui.png``,
``docs/images/tracking-lag.png``): written when missing, and refreshed when
``SHIPNAV_UPDATE_DOCS_SCREENSHOT=1`` (so an ordinary run leaves the tree clean).

Needs Debian's Chromium (``/usr/bin/chromium``, or ``SHIPNAV_CHROMIUM``) and the Python package
``playwright`` (the ``dev`` extra); Playwright's own browser download is never used. Without
them the tests are skipped, except in CI (``CI=true`` or ``SHIPNAV_REQUIRE_BROWSER=1``), where
they fail.
"""

import contextlib
import os
import re
import shutil
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

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "ui"
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "dagster-ui.png"
DOCS_LAG_SCREENSHOT = ROOT / "docs" / "images" / "tracking-lag.png"
CHROMIUM = os.environ.get("SHIPNAV_CHROMIUM", "/usr/bin/chromium")
# As root in a container: no sandbox; no GPU; and no background connections to Google's hosts,
# which a closed network refuses (machine notes: "Playwright with Debian chromium").
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
LOCATION = "shipnav_dagster.definitions"  # the location name dagster-webserver -m gives
SHIPNAV_ASSETS = [
    "shipstation_shipments",
    "shipment_matches",
    "nav_tracking_writeback",
    "nav_sales_orders",
    "nav_tracking_lag",
    "nav_reconciliation",
    "nav_month_end_report",
]
SYNCS = 3
OUTCOME_KEYS = ["written", "already_correct", "parked"]
UI_TIMEOUT_MS = 60_000  # generous: the first page load waits for the code location to load
# Only telemetry off would show the "Join the Dagster community" dialog on the first page; the
# instance turns it off too (nux) so every screenshot shows the page itself.
INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def _require_browser() -> None:
    """Skip when Chromium or Playwright is missing; fail instead in CI."""
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("Python package playwright not installed (pip install -e '.[dev]')")
    if not problems:
        return
    message = "browser UI test needs " + "; ".join(problems)
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("SHIPNAV_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class UiInstance:
    home: Path
    env: dict[str, str]  # the environment of the webserver (sandbox settings, DAGSTER_HOME)
    run_id: str  # the last sync
    outcomes: dict[str, int]  # metadata of the latest nav_tracking_writeback materialization
    reconcile_run_id: str
    gap_record: str  # the record whose tracking was changed in NAV before the reconciliation
    settings_failure_run_id: str  # a sync run started with a mistyped NAV_AUTH


@dataclass
class Webserver:
    url: str
    process: subprocess.Popen
    log: Path


def _clean_environ() -> dict[str, str]:
    """The inherited environment without anything that would point shipnav or Dagster elsewhere."""
    prefixes = ("SHIPNAV_", "SHIPSTATION_", "NAV_", "DAGSTER_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@pytest.fixture(scope="module")
def ui_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiInstance]:
    _require_browser()
    import dagster as dg

    from shipnav_dagster.sandbox.seed import build_world
    from shipnav_dagster.sandbox.server import running_sandbox

    home = tmp_path_factory.mktemp("ui-dagster-home")
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    world = build_world(seed=7, orders=60)
    world.shipstation.rate_limit_per_minute = 10_000  # several syncs in a row, in seconds
    with running_sandbox(world) as sandbox, pytest.MonkeyPatch.context() as mp:
        env = sandbox.env() | {
            "DAGSTER_HOME": str(home),
            "SHIPNAV_DATABASE_URL": f"sqlite:///{home / 'shipnav-ledger.db'}",
        }
        for name in list(os.environ):
            if name.startswith(("SHIPNAV_", "SHIPSTATION_", "NAV_", "DAGSTER_")):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        from shipnav_dagster.definitions import defs

        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        sync_job = defs.resolve_job_def("shipnav_sync_job")
        with dg.DagsterInstance.get() as instance:

            def sync() -> dg.ExecuteInProcessResult:
                result = sync_job.execute_in_process(
                    instance=instance, raise_on_error=False, run_config=quiet
                )
                assert result.success, "a sync run that the UI is to show failed"
                return result

            with pytest.MonkeyPatch.context() as wrong:  # a run started with NAV_AUTH mistyped
                wrong.setenv("NAV_AUTH", "basci")
                failed = sync_job.execute_in_process(
                    instance=instance, raise_on_error=False, run_config=quiet
                )
            assert not failed.success
            sync()
            gap_record = _change_a_written_order_in_nav(world, env["SHIPNAV_DATABASE_URL"])
            reconciled = defs.resolve_job_def("shipnav_reconcile_job").execute_in_process(
                instance=instance, raise_on_error=False, run_config=quiet
            )
            assert reconciled.success
            sync()  # nothing new: the lag only grows
            _create_the_missing_nav_orders(world, env["SHIPNAV_DATABASE_URL"])
            result = sync()  # writes what waited for those orders
            event = instance.get_latest_materialization_event(dg.AssetKey("nav_tracking_writeback"))
            assert event is not None and event.asset_materialization is not None
            metadata = event.asset_materialization.metadata
            outcomes = {key: int(metadata[key].value) for key in OUTCOME_KEYS}  # type: ignore[arg-type]
    assert outcomes["written"] > 0, "the seeded shop should give the UI something written to show"
    yield UiInstance(
        home=home,
        env=env,
        run_id=result.run_id,
        outcomes=outcomes,
        reconcile_run_id=reconciled.run_id,
        gap_record=gap_record,
        settings_failure_run_id=failed.run_id,
    )


def _change_a_written_order_in_nav(world: object, ledger_url: str) -> str:
    """Someone types over the tracking number of a written single-label order in NAV."""
    import sqlalchemy as sa

    from shipnav_dagster.ledger import schema as t
    from shipnav_dagster.sandbox import scenario as sc

    engine = sa.create_engine(ledger_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.records.c.record_key, t.records.c.nav_order_no)
            .where(t.records.c.status == "written", t.records.c.record_key.like("shipment:%"))
            .order_by(t.records.c.record_key)
        ).all()
    engine.dispose()
    per_order: dict[str, list[str]] = {}
    for key, no in rows:
        per_order.setdefault(no, []).append(key)
    no, keys = next((no, keys) for no, keys in sorted(per_order.items()) if len(keys) == 1)
    sc.update_nav_order(world, no, Package_Tracking_No="TYPED-BY-HAND")  # type: ignore[arg-type]
    return keys[0]


def _create_the_missing_nav_orders(world: object, ledger_url: str) -> None:
    """The office keys in the NAV orders shipnav was waiting for; their retries fall due."""
    import sqlalchemy as sa

    from shipnav_dagster.ledger import schema as t
    from shipnav_dagster.sandbox import scenario as sc

    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        waiting = conn.execute(
            sa.select(t.records.c.order_number, t.records.c.ship_date)
            .where(t.records.c.status.in_(("no_order_yet", "needs_attention")))
            .distinct()
        ).all()
        conn.execute(t.records.update().values(next_attempt_at=None))
    engine.dispose()
    for number, ship_date in waiting:
        sc.add_nav_order(  # type: ignore[arg-type]
            world, customer_name="Walk-in Customer", order_date=ship_date, external_document_no=number
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the webserver's process group, then SIGKILL it (reference P15: it may not exit)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # The code server child may outlive the webserver: the group goes in any case.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def webserver(ui_instance: UiInstance) -> Iterator[Webserver]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = ARTIFACTS / "webserver.log"
    cmd = [sys.executable, "-m", "dagster_webserver", "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd,
            cwd=ui_instance.home,  # no stray ./.env or ./dagster.yaml of the checkout
            env=_clean_environ() | ui_instance.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the code server goes with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                info = httpx.get(f"{url}/server_info", timeout=2).json()
                break
            except (httpx.HTTPError, ValueError):
                if time.monotonic() > deadline:
                    pytest.fail(f"dagster-webserver did not answer /server_info:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        assert info["dagster_webserver_version"]
        yield Webserver(url=url, process=process, log=log)
    finally:
        _stop_process_group(process)


@pytest.fixture(scope="module")
def browser(webserver: Webserver) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object, webserver: Webserver) -> Iterator[object]:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=webserver.url, viewport={"width": 1440, "height": 900}
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def _shot(page: object, name: str) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path


def _graphql(webserver: Webserver, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(
        f"{webserver.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_asset_lineage_shows_the_shipnav_assets(page, webserver: Webserver) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1920, "height": 1080})  # wide enough for the node details
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    for asset in SHIPNAV_ASSETS:
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()
    # The five materialized assets show it on their graph nodes (the report has no month yet).
    expect(page.get_by_text("Materialized", exact=True)).to_have_count(5)
    page.wait_for_timeout(1000)  # let the graph finish its layout animation before the picture
    shot = _shot(page, "01-asset-lineage.png")
    if not DOCS_SCREENSHOT.exists() or os.environ.get("SHIPNAV_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # The edges the graph draws, as the webserver reports them.
    data = _graphql(webserver, "{ assetNodes { assetKey { path } dependencyKeys { path } } }")
    deps = {
        "/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]}
        for n in data["assetNodes"]
    }
    assert deps["shipment_matches"] == {"shipstation_shipments", "nav_sales_orders"}
    assert deps["nav_tracking_writeback"] == {"shipment_matches"}


def test_latest_writeback_materialization_shows_outcome_counts(page, ui_instance: UiInstance) -> None:
    from playwright.sync_api import expect

    page.goto("/assets/nav_tracking_writeback")
    expect(page.get_by_role("tab", name="Overview", selected=True)).to_be_visible()
    expect(page.get_by_text("Latest materialization")).to_be_visible()
    _shot(page, "02-nav_tracking_writeback-overview.png")
    page.get_by_role("tab", name="Events").click()
    expect(page).to_have_url(re.compile(r"/assets/nav_tracking_writeback\?.*view=events"))
    # The newest event is opened on the right: the run that made it, then its metadata.
    expect(page.get_by_text("Materialized in run")).to_be_visible()
    expect(page.get_by_role("link", name=ui_instance.run_id[:8], exact=True)).to_be_visible()
    for key in OUTCOME_KEYS:
        # A metadata row reads "<key> <value>" (the sample table's rows never do).
        expect(page.get_by_role("row", name=f"{key} {ui_instance.outcomes[key]}", exact=True)).to_be_visible()
    _shot(page, "03-nav_tracking_writeback-latest-materialization.png")


def test_turning_on_the_sync_schedule_by_clicking(
    page, webserver: Webserver, ui_instance: UiInstance
) -> None:
    from playwright.sync_api import expect

    query = """
    query ($selector: ScheduleSelector!) {
      scheduleOrError(scheduleSelector: $selector) {
        __typename
        ... on Schedule { scheduleState { status } }
      }
    }"""
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": "__repository__",
        "scheduleName": "shipnav_sync_schedule",
    }

    def graphql_status() -> str:
        result = _graphql(webserver, query, {"selector": selector})["scheduleOrError"]
        assert result["__typename"] == "Schedule", result
        return result["scheduleState"]["status"]

    assert graphql_status() == "STOPPED"

    page.goto("/automation")
    link = page.locator('a[href$="/schedules/shipnav_sync_schedule"]')
    expect(link).to_be_visible()
    for name in [
        "shipnav_sync_schedule",
        "shipnav_reconcile_schedule",
        "shipnav_unmatched_retry_sensor",
        "shipnav_webhook_sensor",
        "shipnav_run_failure_sensor",
    ]:
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    row = link.locator("xpath=..")  # the list item: selection box, name, status switch
    boxes = row.locator("input[type=checkbox]")
    # The switch is rendered once the schedule's state has loaded (a placeholder until then);
    # before that the row's only checkbox is the selection box.
    expect(boxes).to_have_count(2)
    selection, switch = boxes.nth(0), boxes.nth(1)
    expect(switch).not_to_be_checked()
    _shot(page, "04-automation-before.png")
    switch.locator("xpath=..").click()  # its label, the drawn switch
    expect(switch).to_be_checked()
    expect(selection).not_to_be_checked()

    deadline = time.monotonic() + 30
    while graphql_status() != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert graphql_status() == "RUNNING"

    # A fresh page shows the stored state, not the click.
    page.reload()
    boxes = link.locator("xpath=..").locator("input[type=checkbox]")
    expect(boxes).to_have_count(2)
    expect(boxes.nth(1)).to_be_checked()
    _shot(page, "05-automation-sync-schedule-on.png")

    import dagster as dg
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

    with dg.DagsterInstance.from_config(str(ui_instance.home)) as instance:
        states = {
            s.name: s.status for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        }
    assert states.get("shipnav_sync_schedule") == InstigatorStatus.RUNNING, states
    # Only the one that was clicked.
    assert states.get("shipnav_reconcile_schedule") != InstigatorStatus.RUNNING, states


def test_replay_job_launchpad_shows_its_config(page) -> None:
    from playwright.sync_api import expect

    page.goto("/jobs")
    page.get_by_role("link", name=re.compile(r"\bshipnav_replay_job\b")).first.click()
    page.get_by_role("tab", name="Launchpad").click()
    expect(page).to_have_url(re.compile(r"/jobs/shipnav_replay_job/playground"))
    editor = page.locator(".CodeMirror")
    expect(editor.get_by_text("replay_records")).to_be_visible()
    # The scaffolded config names the flags ...
    for field in ["only_due", "dry_run"]:
        expect(editor.get_by_text(field, exact=True)).to_be_visible()
    # ... and with the cursor on it, the schema panel explains every field, shipment_ids included.
    editor.get_by_text("dry_run", exact=True).click()
    expect(page.get_by_text("shipment_ids", exact=True)).to_be_visible()
    for field in ["only_due", "dry_run"]:
        expect(page.get_by_text(field, exact=True).last).to_be_visible()
    expect(page.get_by_text("Records to replay whatever their status", exact=False).first).to_be_visible()
    expect(page.get_by_role("button", name="Launch Run")).to_be_enabled()  # the default config is valid
    _shot(page, "06-replay-launchpad.png")


def test_reconciliation_keeps_its_verdict_after_later_syncs(
    page, webserver: Webserver, ui_instance: UiInstance
) -> None:
    from playwright.sync_api import expect

    query = """
    query ($key: AssetKeyInput!) {
      assetNodeOrError(assetKey: $key) {
        ... on AssetNode {
          assetChecksOrError {
            ... on AssetChecks { checks { name executionForLatestMaterialization { status runId } } }
          }
        }
      }
    }"""
    node = _graphql(webserver, query, {"key": {"path": ["nav_reconciliation"]}})["assetNodeOrError"]
    [check] = node["assetChecksOrError"]["checks"]
    # Two syncs ran after the reconciliation: its verdict is still the latest, not "not evaluated".
    assert check["name"] == "shipments_in_nav_or_explained"
    assert check["executionForLatestMaterialization"] == {
        "status": "FAILED",
        "runId": ui_instance.reconcile_run_id,
    }

    page.goto("/assets/nav_reconciliation?view=checks")
    expect(page.get_by_text("shipments_in_nav_or_explained").first).to_be_visible()
    expect(page.get_by_text("Failed").first).to_be_visible()
    _shot(page, "07-nav_reconciliation-checks.png")
    page.goto("/assets/nav_reconciliation?view=events")
    expect(page.get_by_text("Materialized in run")).to_be_visible()
    for key in ("in_nav", "queued", "missing"):
        expect(page.get_by_role("row", name=re.compile(rf"^{key} \d+$"))).to_be_visible()
    expect(page.get_by_text(ui_instance.gap_record).first).to_be_visible()  # the findings table
    _shot(page, "08-nav_reconciliation-findings.png")


def test_tracking_lag_is_plotted_over_the_syncs(page, webserver: Webserver) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1400})  # the first plots and the status
    page.goto("/assets/nav_tracking_lag?view=overview")
    expect(page.get_by_text("Latest check results")).to_be_visible()
    page.get_by_role("button", name="Plots").click()  # Metadata: Table | Plots
    for name in ("oldest_untracked_age_hours", "untracked_labels", "state_queued", "state_in_nav"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    page.wait_for_timeout(1500)  # the charts draw their lines
    shot = _shot(page, "09-nav_tracking_lag-plots.png")
    if not DOCS_LAG_SCREENSHOT.exists() or os.environ.get("SHIPNAV_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_LAG_SCREENSHOT)
    data = _graphql(
        webserver,
        """{ assetNodeOrError(assetKey: {path: ["nav_tracking_lag"]}) {
               ... on AssetNode { assetMaterializations(limit: 10) { runId } } } }""",
    )
    assert len(data["assetNodeOrError"]["assetMaterializations"]) == SYNCS  # one point per sync


def test_a_run_with_wrong_settings_shows_one_message(page, ui_instance: UiInstance) -> None:
    """The run's failure is the settings message alone: no stack trace of Dagster's frames."""
    from playwright.sync_api import expect

    page.goto(f"/runs/{ui_instance.settings_failure_run_id}")
    page.get_by_text("RUN_FAILURE", exact=True).scroll_into_view_if_needed()
    # The step's failure and the run's, each with the one message.
    expect(page.get_by_text("the settings need fixing (1 problem):", exact=False)).to_have_count(2)
    expect(page.get_by_text("NAV_AUTH: expected", exact=False)).to_have_count(2)
    expect(page.get_by_text("Stack Trace", exact=False)).to_have_count(0)
    page.get_by_text("STEP_FAILURE", exact=True).scroll_into_view_if_needed()
    _shot(page, "10-run-with-wrong-settings.png")
