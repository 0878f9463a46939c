"""Issues #10 and #11 end to end: recovery follows causes, not timers; nothing lost, nothing wrong.

A sync killed with SIGKILL mid-write, then an immediate sync: converges, nothing PATCHed twice,
every NAV write in the audit trail under the run that sent it. NAV down for a whole sync, then up:
the next sync writes it all. A label whose NAV order appears a minute later: the next sync. An
operator's replay with empty config: every queued record, whatever its backoff; a dry run changes
nothing; an unknown id is an error. Poison records beside good ones; values PostgreSQL and NAV
cannot take; two writers and a void.
"""

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from shipnav_dagster.cli import main
from shipnav_dagster.definitions import defs
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from tests.e2e.test_queue_replay import sensor_result
from tests.support.sync_harness import (
    QUIET,
    SyncHarness,
    ago,
    assert_written,
    harness_for,
    key,
    nav,
    order_with_label,
    sqlite_ledger_url,
)

SYNC_IN_A_PROCESS = (
    "import dagster as dg\n"
    "from shipnav_dagster.definitions import defs\n"
    "job = defs.resolve_job_def('shipnav_sync_job')\n"
    "with dg.DagsterInstance.get() as instance:\n"
    "    job.execute_in_process(instance=instance, raise_on_error=False, run_config=" + repr(QUIET) + ")\n"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Dagster home shared by this test's process and the runs it starts in subprocesses."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def harness(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    home: Path,
    tmp_path: Path,
) -> Iterator[SyncHarness]:
    """The ledger on SQLite and on PostgreSQL (the Dagster instance is DAGSTER_HOME's SQLite)."""
    sc.install_shipping_agents(empty_world)
    url = (
        sqlite_ledger_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    )
    with (
        dg.DagsterInstance.get() as instance,
        harness_for(monkeypatch, sandbox, empty_world, instance, url) as h,
    ):
        yield h


def sync_in_a_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SYNC_IN_A_PROCESS], stderr=subprocess.PIPE)


def successful_patches(world: SandboxWorld) -> list[tuple[str, str]]:
    return [(p, q) for m, p, q, s in world.nav.log.entries if m == "PATCH" and 200 <= s < 300]


def applied_changes(harness: SyncHarness) -> list[dict[str, Any]]:
    with harness.ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(t.changes).where(t.changes.c.status == "applied")).mappings()
        return [dict(r) for r in rows]


# --------------------------------------------------------------------------------------------
# A sync killed mid-write
# --------------------------------------------------------------------------------------------


def test_a_sync_killed_mid_write_then_the_next_sync_converges(harness: SyncHarness) -> None:
    world = harness.world
    labels = {}
    for n in range(40):
        _o, header, label = order_with_label(world, f"7{n:05d}")
        labels[header["No"]] = label
    world.nav.faults.latency_ms = 40  # the write step takes a while: there is a middle to kill it in

    proc = sync_in_a_process()
    killed = threading.Event()

    def kill_after_some_patches(method: str, path: str, status: int) -> None:
        if method == "PATCH" and len(successful_patches(world)) >= 12 and not killed.is_set():
            killed.set()
            os.kill(proc.pid, signal.SIGKILL)

    harness.on_nav_request(kill_after_some_patches)
    proc.wait(timeout=120)
    assert killed.is_set() and proc.returncode == -signal.SIGKILL
    written_by_killed_run = len(successful_patches(world))
    assert 12 <= written_by_killed_run < len(labels)

    run = harness.run()  # at once: no waiting for a claim to expire
    world.nav.faults.latency_ms = 0
    for no, label in labels.items():
        assert nav(world, no)["Package_Tracking_No"] == label["trackingNumber"]
        assert run.record(key(label))["status"] in ("written", "already_correct")
    # No order got the same values PATCHed twice (the new run planned from NAV's newest state).
    per_order = Counter(p for p, _q in successful_patches(world))
    assert max(per_order.values()) == 1, per_order
    # Every PATCH that landed is in the audit trail, under the run that sent it.
    applied = applied_changes(harness)
    tracking_rows = {
        (c["nav_order_no"], c["after"]): c["run_id"] for c in applied if c["field"] == "Package_Tracking_No"
    }
    for no, label in labels.items():
        assert (no, label["trackingNumber"]) in tracking_rows, f"{no}: no applied change row"
    killed_runs = {r for r in tracking_rows.values() if r != run.run_id}
    assert len(killed_runs) == 1, "the killed run's writes are recorded under its own run id"
    confirmed = [c for c in applied if c["reason"] and "confirmed after a crash" in c["reason"]]
    assert all(c["run_id"] in killed_runs for c in confirmed)
    assert harness.run().patches == 0


# --------------------------------------------------------------------------------------------
# Causes, not timers
# --------------------------------------------------------------------------------------------


def test_nav_down_for_a_whole_sync_then_the_next_sync_writes_everything(harness: SyncHarness) -> None:
    world = harness.world
    written = [order_with_label(world, f"81{n:03d}") for n in range(3)]
    world.nav.faults.fail_status = 503
    world.nav.faults.fail_next = 10_000
    world.nav.faults.retry_after_seconds = 0
    down = harness.run(expect_success=False)
    assert not down.success
    for _o, _h, label in written:
        row = down.record(key(label))
        assert row["status"] == "failed" and row["failure_kind"] == "outage", row["status_reason"]
        assert row["attempts"] == 0  # not the record's fault: no backoff grows
    world.nav.faults.fail_next = 0
    up = harness.run()  # the very next sync, though the retry sensor's delay has not passed
    for _o, header, label in written:
        assert_written(up, label, header["No"])


def test_a_label_before_its_nav_order_is_written_by_the_next_sync(harness: SyncHarness) -> None:
    world = harness.world
    order, header = sc.add_customer_order(world, order_number="820001", order_date=ago(hours=1), in_nav=False)
    assert header is None
    label = sc.buy_label(world, order["orderId"])
    first = harness.run()
    row = first.record(key(label))
    assert row["status"] == "no_order_yet"
    assert row["next_attempt_at"] is not None  # the sensor's backoff, which the sync ignores
    created = sc.add_nav_order(
        world, customer_name="John Smith", order_date=ago(hours=1).date(), external_document_no="820001"
    )
    second = harness.run()
    assert_written(second, label, created["No"])
    assert second.metadata("shipment_matches")["waiting_rechecked"] >= 1


def test_empty_launchpad_config_replays_a_record_whose_backoff_is_hours_away(harness: SyncHarness) -> None:
    world = harness.world
    order, _ = sc.add_customer_order(world, order_number="830001", order_date=ago(hours=1), in_nav=False)
    label = sc.buy_label(world, order["orderId"])
    harness.run()
    with harness.ledger.engine.begin() as conn:
        conn.execute(
            t.records.update()
            .where(t.records.c.record_key == key(label))
            .values(next_attempt_at=datetime.now(UTC) + timedelta(hours=5), attempts=7)
        )
    created = sc.add_nav_order(
        world, customer_name="John Smith", order_date=ago(hours=1).date(), external_document_no="830001"
    )
    job = defs.resolve_job_def("shipnav_replay_job")
    result = job.execute_in_process(instance=harness.instance, raise_on_error=False, run_config=QUIET)
    assert result.success
    assert nav(world, created["No"])["Package_Tracking_No"] == label["trackingNumber"]


def test_dry_run_replay_changes_no_column_and_unknown_ids_are_errors(
    harness: SyncHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    world = harness.world
    order, _ = sc.add_customer_order(world, order_number="840001", order_date=ago(hours=1), in_nav=False)
    label = sc.buy_label(world, order["orderId"])
    harness.run()
    sc.add_nav_order(
        world, customer_name="John Smith", order_date=ago(hours=1).date(), external_document_no="840001"
    )
    before = harness.ledger.record_rows([key(label)])[key(label)]
    patches = len(world.nav.log.entries)
    capsys.readouterr()
    assert main(["replay", "--dry-run", key(label)]) == 0
    out = capsys.readouterr().out
    assert key(label) in out and "dry run" in out
    assert harness.ledger.record_rows([key(label)])[key(label)] == before
    assert not any(m == "PATCH" for m, *_ in world.nav.log.entries[patches:])
    kinds = [e["kind"] for e in harness.runs[0].events(key(label))]
    assert any(k.startswith("dry_run_") for k in kinds)

    assert main(["replay", "shipment:424242"]) == 2
    assert "shipment:424242" in capsys.readouterr().err


def test_the_retry_sensor_asks_only_for_due_records(harness: SyncHarness) -> None:
    world = harness.world
    order, _ = sc.add_customer_order(world, order_number="850001", order_date=ago(hours=1), in_nav=False)
    label = sc.buy_label(world, order["orderId"])
    harness.run()
    assert not sensor_result("shipnav_unmatched_retry_sensor", harness.instance).run_requests  # not due yet
    with harness.ledger.engine.begin() as conn:
        conn.execute(
            t.records.update()
            .where(t.records.c.record_key == key(label))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    [request] = sensor_result("shipnav_unmatched_retry_sensor", harness.instance).run_requests
    assert request.run_config["ops"]["replay_records"]["config"]["only_due"] is True


# --------------------------------------------------------------------------------------------
# Poison records, and values the database or NAV cannot take
# --------------------------------------------------------------------------------------------


def _poison(world: SandboxWorld) -> dict[str, Any]:
    """Good labels, and beside them labels and an order ShipStation should never have sent."""
    goods = [order_with_label(world, f"86{n:04d}") for n in range(3)]
    bad_date = sc.buy_label(world, goods[0][0]["orderId"])
    world.shipstation.shipments[bad_date["shipmentId"]]["shipDate"] = "not-a-date"
    bad_void = sc.buy_label(world, goods[1][0]["orderId"])
    world.shipstation.shipments[bad_void["shipmentId"]]["voidDate"] = "garbage"
    bad_order_id = sc.buy_label(world, goods[2][0]["orderId"])
    world.shipstation.shipments[bad_order_id["shipmentId"]]["orderId"] = "abc"
    odd_order = world.shipstation.orders[goods[0][0]["orderId"]]
    odd_order["customerId"] = "abc"
    odd_order["items"] = copy.deepcopy(odd_order["items"])  # the labels' items are the same dicts
    odd_order["items"][0]["quantity"] = "two"
    return {"goods": goods, "bad": [bad_date, bad_void, bad_order_id]}


@pytest.mark.parametrize("ledger_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_poison_records_are_stored_invalid_and_the_rest_is_written(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    home: Path,
    tmp_path: Path,
    ledger_kind: str,
    request: pytest.FixtureRequest,
) -> None:
    url = sqlite_ledger_url(tmp_path) if ledger_kind == "sqlite" else request.getfixturevalue("pg_schema_url")
    sc.install_shipping_agents(empty_world)
    case = _poison(empty_world)
    with (
        dg.DagsterInstance.get() as instance,
        harness_for(monkeypatch, sandbox, empty_world, instance, url) as h,
    ):
        run = h.run()
        for _o, header, label in case["goods"]:
            assert_written(run, label, header["No"])
        reasons = {
            k: run.record(key(b))["status_reason"]
            for k, b in zip(("date", "void", "order"), case["bad"], strict=True)
        }
        assert all(run.record(key(b))["status"] == "invalid" for b in case["bad"])
        assert "shipDate 'not-a-date' is not a date" in reasons["date"]
        assert "voidDate 'garbage' is not a ShipStation timestamp" in reasons["void"]
        assert "orderId 'abc' is not a whole number" in reasons["order"]
        with h.ledger.engine.connect() as conn:
            cursors = dict(conn.execute(sa.select(t.cursors.c.stream, t.cursors.c.position)).all())
        assert set(cursors) >= {"shipments_created", "orders_modified"}
        again = h.run()
        assert again.success and again.patches == 0


def test_values_nav_cannot_take_are_parked_on_postgres_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    home: Path,
    pg_schema_url: str,
) -> None:
    world = empty_world
    sc.install_shipping_agents(world)
    _o1, long_header, long_label = order_with_label(world, "870001")
    world.shipstation.shipments[long_label["shipmentId"]]["trackingNumber"] = "9" * 300
    _o2, nul_header, nul_label = order_with_label(world, "870002")
    world.shipstation.shipments[nul_label["shipmentId"]]["trackingNumber"] = "1Z\x00BAD"
    _o3, bidi_header, bidi_label = order_with_label(world, "870003")
    world.shipstation.shipments[bidi_label["shipmentId"]]["trackingNumber"] = "1Z\u202eREVERSED"
    _o4, code_header, code_label = order_with_label(world, "870004")
    world.shipstation.shipments[code_label["shipmentId"]]["carrierCode"] = "x" * 5000
    _o5, good_header, good_label = order_with_label(world, "870005")
    with (
        dg.DagsterInstance.get() as instance,
        harness_for(monkeypatch, sandbox, world, instance, pg_schema_url) as h,
    ):
        run = h.run()
        for label, header in ((long_label, long_header), (nul_label, nul_header), (bidi_label, bidi_header)):
            row = run.record(key(label))
            assert row["status"] == "parked", row["status_reason"]
            assert nav(world, header["No"])["Package_Tracking_No"] == ""
        assert "U+0000" in run.record(key(nul_label))["status_reason"]
        assert "U+202E" in run.record(key(bidi_label))["status_reason"]
        assert "300 characters" in run.record(key(long_label))["status_reason"]
        # An unknown 5,000-character carrier code is just unmapped: the tracking is written.
        assert nav(world, code_header["No"])["Package_Tracking_No"] == code_label["trackingNumber"]
        assert_written(run, good_label, good_header["No"])


# --------------------------------------------------------------------------------------------
# Two writers and a void
# --------------------------------------------------------------------------------------------


def test_two_writers_and_a_void_leave_nav_with_the_new_label(harness: SyncHarness) -> None:
    world = harness.world
    order, header, old = order_with_label(world, "880001")
    for n in range(15):  # other orders keep the first writer busy
        order_with_label(world, f"88{n + 100:04d}")
    world.nav.faults.latency_ms = 60
    proc = sync_in_a_process()
    changed = threading.Event()
    new: dict[str, Any] = {}

    def void_and_relabel_mid_write(method: str, path: str, status: int) -> None:
        if method == "PATCH" and not changed.is_set():
            changed.set()
            sc.void_label(world, old["shipmentId"])
            new.update(sc.buy_label(world, order["orderId"]))

    harness.on_nav_request(void_and_relabel_mid_write)
    assert changed.wait(timeout=60)
    second = harness.run()  # a second writer, while the first is still writing
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()[-2000:]
    world.nav.faults.latency_ms = 0
    assert second.success
    assert nav(world, header["No"])["Package_Tracking_No"] == new["trackingNumber"]
    settle = harness.run()
    assert nav(world, header["No"])["Package_Tracking_No"] == new["trackingNumber"]
    assert settle.record(key(new))["status"] in ("written", "already_correct")
    assert settle.record(key(old))["status"] == "voided"
    assert json.loads(settle.record(key(old))["record"])["voided"] is True
    time.sleep(0)  # nothing left running
