"""The operator's two figures, through the real Dagster jobs against the sandbox: the
reconciliation asset (its check keeps its verdict across syncs; every finding has a next step)
and the tracking lag that every sync measures (numeric metadata; a check that warns, then fails).
Plus the pure rules behind both."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from shipnav_dagster.core.model import RecordStatus
from shipnav_dagster.core.tracking_state import TrackingState, lag_verdict, next_step, tracking_state
from shipnav_dagster.definitions import defs
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld, pacific_now
from tests.support.sync_harness import QUIET, SyncHarness, harness_for, sqlite_instance, sqlite_ledger_url

RECONCILIATION = dg.AssetKey("nav_reconciliation")
RECONCILIATION_CHECK = dg.AssetCheckKey(RECONCILIATION, "shipments_in_nav_or_explained")
LAG = dg.AssetKey("nav_tracking_lag")


@pytest.fixture
def harness(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServers, empty_world: SandboxWorld, tmp_path: Path
) -> Iterator[SyncHarness]:
    sc.install_shipping_agents(empty_world)
    with (
        sqlite_instance() as instance,
        harness_for(monkeypatch, sandbox, empty_world, instance, sqlite_ledger_url(tmp_path)) as h,
    ):
        yield h


def ago(**delta: float) -> datetime:
    return pacific_now() - timedelta(**delta)


def reconcile(harness: SyncHarness) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("shipnav_reconcile_job").execute_in_process(
        instance=harness.instance, run_config=QUIET, raise_on_error=False
    )
    assert result.success  # a failed check is a verdict, not a failed run
    return result


def findings(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, str]]:
    [materialization] = result.asset_materializations_for_node("nav_reconciliation")
    table = materialization.metadata["findings"].value
    return {row.data["record"]: row.data for row in table.records}  # type: ignore[union-attr]


def test_reconciliation_lists_every_finding_with_its_next_step(harness: SyncHarness) -> None:
    world = harness.world
    order, header = sc.add_customer_order(world, order_number="410001", order_date=ago(hours=3))
    written = sc.buy_label(world, order["orderId"], created=ago(minutes=30))
    waiting, _ = sc.add_customer_order(world, order_number="410002", order_date=ago(hours=3), in_nav=False)
    queued = sc.buy_label(world, waiting["orderId"], created=ago(minutes=20))
    odd, _ = sc.add_customer_order(world, order_number="410003", order_date=ago(hours=3))
    unmapped = sc.buy_label(world, odd["orderId"], carrier_code="ontrac", created=ago(minutes=10))
    harness.run()

    first = reconcile(harness)
    [check] = first.get_asset_check_evaluations()
    assert check.passed, check.metadata
    rows = findings(first)
    assert rows[f"shipment:{queued['shipmentId']}"]["state"] == "queued"
    assert "create the NAV sales order" in rows[f"shipment:{queued['shipmentId']}"]["next_step"]
    assert rows[f"shipment:{unmapped['shipmentId']}"]["state"] == "in_nav"
    assert rows[f"shipment:{unmapped['shipmentId']}"]["next_step"].startswith("fix the mapping")
    assert f"shipment:{written['shipmentId']}" not in rows  # in NAV, nothing to do

    sc.update_nav_order(world, header["No"], Package_Tracking_No="TYPED-BY-HAND")
    second = reconcile(harness)
    [check] = second.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["gap_count"].value == 1
    gap = findings(second)[f"shipment:{written['shipmentId']}"]
    assert gap["state"] == "missing" and "'TYPED-BY-HAND'" in gap["problem"]
    assert f"shipnav replay shipment:{written['shipmentId']}" in gap["next_step"]
    [materialization] = second.asset_materializations_for_node("nav_reconciliation")
    counts = {k: materialization.metadata[k].value for k in ("in_nav", "queued", "missing")}
    assert counts == {"in_nav": 1, "queued": 1, "missing": 1}

    # The next sync does not touch the reconciliation: its verdict stays the latest one.
    sync = harness.run()
    assert RECONCILIATION not in {m.asset_key for m in sync.result.get_asset_materialization_events()}
    latest = harness.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [RECONCILIATION_CHECK]
    )
    assert latest[RECONCILIATION_CHECK].run_id == second.run_id
    event = harness.instance.get_latest_materialization_event(RECONCILIATION)
    assert event is not None and event.run_id == second.run_id


def test_every_sync_measures_the_tracking_lag(harness: SyncHarness) -> None:
    world = harness.world
    order, _ = sc.add_customer_order(world, order_number="420001", order_date=ago(hours=6))
    sc.buy_label(world, order["orderId"], created=ago(minutes=40))
    late, _ = sc.add_customer_order(world, order_number="420002", order_date=ago(hours=6), in_nav=False)
    sc.buy_label(world, late["orderId"], created=ago(hours=3))

    def lag(run_settings: dict[str, str]) -> tuple[dict, dg.AssetCheckEvaluation]:
        run = harness.run(**run_settings)
        [evaluation] = [e for e in run.check_evaluations() if e.asset_key == LAG]
        return run.metadata("nav_tracking_lag"), evaluation

    metadata, check = lag({})
    assert 2.9 < metadata["oldest_untracked_age_hours"] < 3.2  # the label of the missing NAV order
    assert metadata["untracked_labels"] == 1
    assert (metadata["state_in_nav"], metadata["state_queued"]) == (1, 1)
    assert "420002" in metadata["oldest_untracked"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN  # past 2 h, under 24 h

    _, check = lag({"SHIPNAV_LAG_WARN_HOURS": "1", "SHIPNAV_LAG_FAIL_HOURS": "2.5"})
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR

    sc.add_nav_order(
        world, customer_name="John Smith", order_date=ago(hours=6).date(), external_document_no="420002"
    )
    with harness.ledger.engine.begin() as conn:  # its retry is due (the backoff has passed)
        conn.execute(t.records.update().values(next_attempt_at=None))
    metadata, check = lag({})
    assert metadata["oldest_untracked_age_hours"] == 0.0 and metadata["untracked_labels"] == 0
    assert metadata["state_in_nav"] == 2
    assert check.passed


def test_the_lag_is_numeric_metadata_so_dagster_plots_it(harness: SyncHarness) -> None:
    order, _ = sc.add_customer_order(harness.world, order_number="430001", order_date=ago(hours=2))
    sc.buy_label(harness.world, order["orderId"], created=ago(minutes=5))
    run = harness.run()
    event = harness.instance.get_latest_materialization_event(LAG)
    assert event is not None and event.run_id == run.run_id and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert isinstance(metadata["oldest_untracked_age_hours"], dg.FloatMetadataValue)
    for key in ("untracked_labels", "state_in_nav", "state_queued", "state_ambiguous", "state_parked"):
        assert isinstance(metadata[key], dg.IntMetadataValue), key


def test_the_sync_job_measures_the_lag_but_never_reconciles() -> None:
    job = defs.resolve_job_def("shipnav_sync_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {"shipstation_shipments", "shipment_matches", "nav_tracking_writeback", "nav_tracking_lag"}
    reconcile_job = defs.resolve_job_def("shipnav_reconcile_job")
    assert reconcile_job.asset_layer.executable_asset_keys == {RECONCILIATION}
    assert defs.resolve_schedule_def("shipnav_reconcile_schedule").job_name == "shipnav_reconcile_job"


@pytest.mark.parametrize(
    ("status", "nav_problem", "state"),
    [
        (RecordStatus.WRITTEN, None, TrackingState.IN_NAV),
        (RecordStatus.ALREADY_CORRECT, "NAV holds 'X' instead", TrackingState.MISSING),
        (RecordStatus.NO_ORDER_YET, None, TrackingState.QUEUED),
        (RecordStatus.NEEDS_ATTENTION, None, TrackingState.QUEUED),
        (RecordStatus.FAILED, None, TrackingState.QUEUED),
        (RecordStatus.AMBIGUOUS, None, TrackingState.AMBIGUOUS),
        (RecordStatus.PARKED, None, TrackingState.PARKED),
        (RecordStatus.INVALID, None, TrackingState.PARKED),
        ("something_new", None, TrackingState.MISSING),
    ],
)
def test_state_of_a_record(status: str, nav_problem: str | None, state: TrackingState) -> None:
    assert tracking_state(status, nav_problem) is state
    step = next_step(state, status, nav_problem, "shipment:1")
    assert bool(step) is (state is not TrackingState.IN_NAV)


def test_parked_overlong_tracking_says_what_to_do() -> None:
    reason = "tracking number 'X' has 34 characters but NAV's field holds 30 (NAV_TRACKING_MAX_LENGTH)"
    assert "NAV_TRACKING_MAX_LENGTH" in next_step(
        TrackingState.PARKED, RecordStatus.PARKED, reason, "shipment:1"
    )


@pytest.mark.parametrize(
    ("age", "verdict"), [(0, "ok"), (2, "ok"), (2.01, "warn"), (24, "warn"), (24.5, "fail")]
)
def test_lag_thresholds(age: float, verdict: str) -> None:
    assert lag_verdict(age, warn_hours=2, fail_hours=24) == verdict
