"""Eventual consistency: queued records, the retry sensor, replay, webhooks, crash recovery and
reconciliation, end to end through the Dagster jobs and sensors against the sandbox."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from shipnav_dagster.definitions import defs
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers, ThreadedServer
from shipnav_dagster.sandbox.state import SandboxWorld, pacific_now
from shipnav_dagster.webhooks.app import create_app
from tests.support.sync_harness import (
    QUIET,
    SyncHarness,
    harness_for,
    postgres_instance,
    sandbox_environment,
    sqlite_instance,
    sqlite_ledger_url,
)

TOKEN = "hook-token-0123456789"


@pytest.fixture
def harness(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServers, empty_world: SandboxWorld, tmp_path: Path
) -> Iterator[SyncHarness]:
    sc.install_shipping_agents(empty_world)  # NAV's table 291: UPS, FEDEX, USPS, DHL
    with (
        sqlite_instance() as instance,
        harness_for(monkeypatch, sandbox, empty_world, instance, sqlite_ledger_url(tmp_path)) as h,
    ):
        yield h


def ago(**delta: float) -> datetime:
    return pacific_now() - timedelta(**delta)


def time_passes(ledger: Ledger, **delta: float) -> None:
    """Move every queued retry and claim into the past, as if ``delta`` had gone by."""
    shift = timedelta(**delta)
    with ledger.engine.begin() as conn:
        for row in conn.execute(
            sa.select(t.records.c.record_key, t.records.c.next_attempt_at, t.records.c.claimed_at)
        ):
            values: dict[str, Any] = {}
            if row.next_attempt_at is not None:
                values["next_attempt_at"] = row.next_attempt_at - shift
            if row.claimed_at is not None:
                values["claimed_at"] = row.claimed_at - shift
            if values:
                conn.execute(
                    t.records.update().where(t.records.c.record_key == row.record_key).values(**values)
                )


def replay_run(instance: dg.DagsterInstance, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("shipnav_replay_job")
    run_config = {"ops": {"replay_records": {"config": config}}, **QUIET}
    return job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)


def run_request_config(request: dg.RunRequest) -> dict[str, Any]:
    config = request.run_config
    return config.to_config_dict() if hasattr(config, "to_config_dict") else dict(config)


def sensor_result(name: str, instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"shipnav": ShipnavResource()}
    ) as context:
        return sensor(context)


def test_shipment_before_order_is_queued_then_written_by_the_retry_sensor(harness: SyncHarness) -> None:
    world = harness.world
    order, _ = sc.add_customer_order(world, order_number="300001", order_date=ago(hours=2), in_nav=False)
    label = sc.buy_label(world, order["orderId"], created=ago(minutes=30))
    key = f"shipment:{label['shipmentId']}"
    first = harness.run()
    row = first.record(key)
    assert row["status"] == "no_order_yet"
    assert row["next_attempt_at"] is not None and row["attempts"] == 1

    # Nothing due yet: the sensor says so and requests nothing.
    skipped = sensor_result("shipnav_unmatched_retry_sensor", harness.instance)
    assert not skipped.run_requests and "no queued records are due" in str(skipped.skip_reason)

    sc.add_nav_order(
        world,
        "SO-300001",
        external_document_no="300001",
        customer_name="John Smith",
        order_date=ago(hours=2).date(),
    )
    time_passes(harness.ledger, minutes=6)
    tick = sensor_result("shipnav_unmatched_retry_sensor", harness.instance)
    assert len(tick.run_requests) == 1
    request = tick.run_requests[0]
    assert request.run_key == "retry-due-1" and tick.cursor == "1"
    config = run_request_config(request)
    dg.validate_run_config(defs.resolve_job_def("shipnav_replay_job"), config)
    replayed = replay_run(harness.instance, config["ops"]["replay_records"]["config"])
    assert replayed.success
    assert world.nav.sales_orders["SO-300001"]["Package_Tracking_No"] == label["trackingNumber"]
    history = [e["kind"] for e in reports.history(harness.ledger, key)]
    assert (
        history.index("match_no_order_yet")
        < history.index("match_matched")
        < history.index("outcome_written")
    )
    runs = {e["run_id"] for e in reports.history(harness.ledger, key)}
    assert {first.run_id, replayed.run_id} <= runs
    # The next tick carries the next attempt number (Dagster never reuses a run key).
    assert sensor_result("shipnav_unmatched_retry_sensor", harness.instance, cursor="1").run_requests == []


def test_queued_record_becomes_needs_attention_after_max_age(harness: SyncHarness) -> None:
    world = harness.world
    order, _ = sc.add_customer_order(world, order_number="300002", order_date=ago(hours=2), in_nav=False)
    label = sc.buy_label(world, order["orderId"], created=ago(minutes=30))
    key = f"shipment:{label['shipmentId']}"
    harness.run()
    with harness.ledger.engine.begin() as conn:  # first seen four days ago
        conn.execute(
            t.records.update()
            .where(t.records.c.record_key == key)
            .values(first_seen_at=datetime.now(UTC) - timedelta(hours=96))
        )
    time_passes(harness.ledger, minutes=6)
    assert replay_run(harness.instance, {"only_due": True}).success
    row = harness.ledger.record_rows([key])[key]
    assert row["status"] == "needs_attention"
    assert "still no NAV order after 96 h" in row["status_reason"]
    assert row["next_attempt_at"] is not None  # still retried


def test_nav_down_for_the_whole_sync_queues_everything_then_replay_writes_once(harness: SyncHarness) -> None:
    world = harness.world
    labels = []
    for n in range(3):
        order, _ = sc.add_customer_order(world, order_number=f"30010{n}", order_date=ago(hours=3))
        labels.append(sc.buy_label(world, order["orderId"], created=ago(minutes=20 + n)))
    world.nav.faults.fail_next = 10_000
    world.nav.faults.fail_status = 503
    world.nav.faults.retry_after_seconds = 0
    down = harness.run(expect_success=False)
    assert not down.success
    keys = [f"shipment:{lb['shipmentId']}" for lb in labels]
    rows = harness.ledger.record_rows(keys)
    assert {r["status"] for r in rows.values()} == {"failed"}
    assert all("NAV lookup failed" in r["status_reason"] for r in rows.values())
    assert down.patches == 0

    world.nav.faults.fail_next = 0
    time_passes(harness.ledger, minutes=6)
    patches_before = world.nav.log.count("PATCH")
    assert replay_run(harness.instance, {"only_due": True}).success
    for n, lb in enumerate(labels):
        assert sc.nav_order_for(world, f"30010{n}")[0]["Package_Tracking_No"] == lb["trackingNumber"]
    rows = harness.ledger.record_rows(keys)
    assert {r["status"] for r in rows.values()} == {"written"}
    assert world.nav.log.count("PATCH") - patches_before == 3  # one per order: none lost, none twice
    again = harness.run()
    assert again.patches == 0


def test_replay_of_named_records_and_dry_run(harness: SyncHarness) -> None:
    world = harness.world
    order, header = sc.add_customer_order(world, order_number="300201", order_date=ago(hours=3))
    label = sc.buy_label(world, order["orderId"], created=ago(minutes=10))
    harness.run()
    assert header["Package_Tracking_No"] == label["trackingNumber"]
    # Someone overwrites it in NAV; a dry-run replay decides but writes nothing ...
    sc.update_nav_order(world, header["No"], Package_Tracking_No="TYPED-BY-HAND")
    patches = world.nav.log.count("PATCH")
    assert replay_run(harness.instance, {"shipment_ids": [str(label["shipmentId"])], "dry_run": True}).success
    assert world.nav.log.count("PATCH") == patches
    assert world.nav.sales_orders[header["No"]]["Package_Tracking_No"] == "TYPED-BY-HAND"
    # ... and a real replay puts the ShipStation number back.
    assert replay_run(harness.instance, {"shipment_ids": [f"shipment:{label['shipmentId']}"]}).success
    assert world.nav.sales_orders[header["No"]]["Package_Tracking_No"] == label["trackingNumber"]


def test_reconciliation_fails_on_a_gap_and_passes_after_replay(harness: SyncHarness) -> None:
    world = harness.world
    order, header = sc.add_customer_order(world, order_number="300301", order_date=ago(hours=3))
    label = sc.buy_label(world, order["orderId"], created=ago(minutes=10))
    missing, _ = sc.add_customer_order(world, order_number="300302", order_date=ago(hours=3), in_nav=False)
    sc.buy_label(world, missing["orderId"], created=ago(minutes=9))
    harness.run()
    check_job = defs.resolve_job_def("shipnav_reconcile_job")

    def reconcile() -> dg.AssetCheckEvaluation:
        result = check_job.execute_in_process(
            instance=harness.instance, run_config=QUIET, raise_on_error=False
        )
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    first = reconcile()
    assert first.passed, first.metadata  # the queued record is explained, the written one reflected
    sc.update_nav_order(world, header["No"], Package_Tracking_No="")  # the planted gap
    gap = reconcile()
    assert not gap.passed
    assert gap.metadata["gap_count"].value == 1
    assert f"shipment:{label['shipmentId']}" in gap.metadata["gaps"].value
    assert replay_run(harness.instance, {"shipment_ids": [str(label["shipmentId"])]}).success
    assert reconcile().passed


def test_webhook_notification_becomes_a_run_that_writes(harness: SyncHarness, tmp_path: Path) -> None:
    world = harness.world
    order, header = sc.add_customer_order(world, order_number="300401", order_date=ago(hours=3))
    label = sc.buy_label(world, order["orderId"], created=ago(minutes=5), batch_number="777001")
    app = create_app(token=TOKEN, api_url=harness.sandbox.shipstation_url, ledger=harness.ledger)
    url = f"{harness.sandbox.shipstation_url}/shipments?batchId=777001&includeShipmentItems=False"
    with ThreadedServer(app) as base:
        answer = httpx.post(
            f"{base}/webhooks/shipstation/{TOKEN}", json={"resource_url": url, "resource_type": "SHIP_NOTIFY"}
        )
        assert answer.status_code in (200, 202)
        assert (
            httpx.post(
                f"{base}/webhooks/shipstation/wrong-token",
                json={"resource_url": url, "resource_type": "SHIP_NOTIFY"},
            ).status_code
            == 404
        )
    tick = sensor_result("shipnav_webhook_sensor", harness.instance)
    assert len(tick.run_requests) == 1
    config = run_request_config(tick.run_requests[0])["ops"]["replay_records"]["config"]
    assert config["from_inbox"] is True
    assert replay_run(harness.instance, config).success
    assert header["Package_Tracking_No"] == label["trackingNumber"]
    row = harness.ledger.record_rows([f"shipment:{label['shipmentId']}"])[f"shipment:{label['shipmentId']}"]
    assert row["seen_via"] == "webhook" and row["status"] == "written"
    assert sensor_result("shipnav_webhook_sensor", harness.instance, cursor="1").run_requests == []


def test_crash_between_patch_and_ledger_converges_without_a_second_patch(
    sandbox: SandboxServers, empty_world: SandboxWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = empty_world
    sc.install_shipping_agents(world)
    world.shipstation.rate_limit_per_minute = 10_000
    world.nav.faults.latency_ms = 300  # the second order's PATCH is still in flight at the kill
    orders = []
    for n in range(2):
        order, header = sc.add_customer_order(world, order_number=f"30050{n}", order_date=ago(hours=3))
        orders.append((header, sc.buy_label(world, order["orderId"], created=ago(minutes=5 + n))))
    ledger_url = sqlite_ledger_url(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPSTATION_", "NAV_", "SHIPNAV_"))}
    env.update(sandbox_environment(sandbox, ledger_url, NAV_MAX_CONCURRENCY="1"))
    env["DAGSTER_HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "shipnav_dagster.definitions",
            "-j",
            "shipnav_sync_job",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any(m == "PATCH" and s == 200 for m, _p, _q, s in list(world.nav.log.entries)):
                os.kill(proc.pid, signal.SIGKILL)  # after NAV applied it, before the ledger heard
                killed.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    watcher.join()
    proc.wait(timeout=30)
    assert killed.is_set(), "the sync never reached its first PATCH"
    patched_paths = [p for m, p, _q, s in world.nav.log.entries if m == "PATCH" and s == 200]
    assert len(patched_paths) == 1
    ledger = Ledger(ledger_url)
    statuses = {
        r["status"]
        for r in ledger.record_rows([f"shipment:{lb['shipmentId']}" for _h, lb in orders]).values()
    }
    assert statuses == {"matched_pending"}  # the ledger never heard how the write went

    world.nav.faults.latency_ms = 0
    time_passes(ledger, minutes=11)  # the dead run's claims have expired
    with sqlite_instance() as instance, harness_for(monkeypatch, sandbox, world, instance, ledger_url) as h:
        rerun = h.run()
    # The value NAV took before the crash is not sent again; whatever the dead run did not
    # finish is written now: every order ends up PATCHed exactly once over both runs.
    applied = [p for m, p, _q, s in world.nav.log.entries if m == "PATCH" and s == 200]
    assert patched_paths[0] not in [p for m, p, _q, _s in rerun.nav_requests if m == "PATCH"]
    assert sorted(applied) == sorted(set(applied)) and len(applied) == len(orders)
    for header, label in orders:
        assert header["Package_Tracking_No"] == label["trackingNumber"]
    ledger.dispose()


# The retry sensor on a PostgreSQL ledger, evaluated with build_sensor_context.


@pytest.fixture
def pg_harness(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    pg_schema_url: str,
    pg_url: str,
) -> Iterator[SyncHarness]:
    sc.install_shipping_agents(empty_world)
    with (
        postgres_instance(pg_url) as instance,
        harness_for(monkeypatch, sandbox, empty_world, instance, pg_schema_url) as h,
    ):
        yield h


def test_retry_sensor_on_postgres(pg_harness: SyncHarness) -> None:
    h = pg_harness
    world = h.world
    assert h.ledger.is_postgres
    none = sensor_result("shipnav_unmatched_retry_sensor", h.instance)
    assert none.run_requests == [] and "no queued records are due" in str(none.skip_reason)
    order, _ = sc.add_customer_order(world, order_number="300601", order_date=ago(hours=2), in_nav=False)
    sc.buy_label(world, order["orderId"], created=ago(minutes=3))
    h.run()
    time_passes(h.ledger, minutes=6)
    due = sensor_result("shipnav_unmatched_retry_sensor", h.instance, cursor="4")
    assert [r.run_key for r in due.run_requests] == ["retry-due-5"] and due.cursor == "5"
    # A replay in flight: the sensor waits for it instead of piling up runs.
    in_flight = dg.DagsterRun(job_name="shipnav_replay_job", status=dg.DagsterRunStatus.STARTED)
    h.instance.add_run(in_flight)
    try:
        busy = sensor_result("shipnav_unmatched_retry_sensor", h.instance, cursor="5")
        assert busy.run_requests == [] and in_flight.run_id in str(busy.skip_reason)
    finally:
        h.instance.delete_run(in_flight.run_id)


def test_claims_are_exclusive_on_postgres(pg_schema_url: str) -> None:
    from shipnav_dagster.core.outcomes import FailureKind, Outcome
    from shipnav_dagster.shipstation.v1.parser import parse_shipment
    from shipnav_dagster.sync.intake import store_records

    ledger = Ledger(pg_schema_url).create_all()
    payloads = [
        {
            "shipmentId": i,
            "orderId": 1,
            "orderNumber": "X",
            "createDate": "2026-11-20T10:00:00.0000000",
            "trackingNumber": f"T{i}",
        }
        for i in range(1, 41)
    ]
    store_records(ledger, parse_shipment, payloads, run_id="r0", seen_via="poll")
    ledger.set_outcomes(
        [Outcome(f"shipment:{i}", "failed", "x", failure=FailureKind.RECORD) for i in range(1, 41)],
        run_id="r0",
    )
    time_passes(ledger, minutes=6)
    results: dict[str, list[str]] = {}
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, ledger.claim(n, due=True)))
        for n in ("a", "b", "c", "d")
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    claimed = [k for keys in results.values() for k in keys]
    assert sorted(claimed) == sorted(f"shipment:{i}" for i in range(1, 41))  # all, and none twice
    ledger.dispose()
