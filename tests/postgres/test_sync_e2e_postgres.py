"""Issue #3 on PostgreSQL: the ledger in a fresh PostgreSQL schema AND the Dagster instance on
PostgreSQL, running ``shipnav_sync_job`` over HTTP against the sandbox.

The same core cases as ``test_sync_e2e.py`` (tiers, ambiguity, voids, multi-package, idempotent
second run, late shipments inside the poll overlap, conflicts), plus what only PostgreSQL can
show: the runs and materializations are in the PostgreSQL instance, timestamps round-trip
through ``timestamptz`` cursors, and a PostgreSQL-configured instance loads the definitions.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import PACIFIC, SandboxWorld
from tests.support.sync_harness import (
    ASSETS,
    SyncHarness,
    ago,
    assert_written,
    harness_for,
    key,
    nav,
    order_with_label,
    postgres_instance,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg_instance(pg_url: str) -> Iterator[dg.DagsterInstance]:
    assert pg_url.startswith("postgresql+psycopg2://")
    with postgres_instance(pg_url) as instance:
        yield instance


@pytest.fixture
def harness(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    pg_instance: dg.DagsterInstance,
    pg_schema_url: str,
) -> Iterator[SyncHarness]:
    sc.install_shipping_agents(empty_world)
    with harness_for(monkeypatch, sandbox, empty_world, pg_instance, pg_schema_url) as h:
        yield h


def test_pg_core_sync_and_idempotent_second_run(harness: SyncHarness, pg_schema_url: str) -> None:
    world = harness.world
    _o1, tier1, label1 = order_with_label(world, "PG-1001")
    order3, tier3 = sc.add_customer_order(
        world,
        order_number="PG-1003",
        customer_name="O'Brien & Sons",
        order_date=ago(days=1),
        external_document_no="",
    )
    assert tier3 is not None
    label3 = sc.buy_label(world, order3["orderId"], carrier_code="fedex")
    order_amb, amb = sc.add_customer_order(world, order_number="PG-1004", order_date=ago(hours=2))
    assert amb is not None
    amb2 = sc.add_nav_order(
        world, customer_name="X", order_date=ago(hours=2).date(), external_document_no="PG-1004"
    )
    label_amb = sc.buy_label(world, order_amb["orderId"])
    order_multi, multi = sc.add_customer_order(
        world, order_number="PG-1005", order_date=ago(hours=3), items=[("MUG-11OZ-BLK", 2)]
    )
    assert multi is not None
    later = sc.buy_label(world, order_multi["orderId"], created=ago(minutes=5), items=[("MUG-11OZ-BLK", 1)])
    first_pkg = sc.buy_label(
        world, order_multi["orderId"], created=ago(minutes=25), items=[("MUG-11OZ-BLK", 1)]
    )

    first = harness.run()
    assert first.ledger.is_postgres
    assert_written(first, label1, tier1["No"], tier=1)
    assert_written(first, label3, tier3["No"], tier=3)
    assert_written(first, first_pkg, multi["No"])
    assert first.record(key(later))["status"] == "written"
    amb_row = first.record(key(label_amb))
    assert amb_row["status"] == "ambiguous"
    assert not first.patched(amb["No"]) and not first.patched(amb2["No"])
    assert first.patches == 3

    second = harness.run()
    assert second.patches == 0
    assert {k: r["status"] for k, r in second.records().items()} == {
        k: r["status"] for k, r in first.records().items()
    }

    # The runs and their materializations are in the PostgreSQL instance.
    instance = harness.instance
    assert "postgres" in type(instance.run_storage).__module__
    runs = {r.run_id: r for r in instance.get_runs(dg.RunsFilter(run_ids=[first.run_id, second.run_id]))}
    assert set(runs) == {first.run_id, second.run_id}
    assert all(
        r.status == dg.DagsterRunStatus.SUCCESS and r.job_name == "shipnav_sync_job" for r in runs.values()
    )
    for asset in ASSETS:
        assert second.metadata(asset), asset
    assert first.check_evaluations() and all(e.passed for e in first.check_evaluations())

    # The ledger lives in the test's own schema (search_path), not in public.
    schema = pg_schema_url.rsplit("search_path%3D", 1)[1]
    engine = sa.create_engine(pg_schema_url)
    try:
        with engine.connect() as conn:
            tables = set(
                conn.execute(
                    sa.text("select table_name from information_schema.tables where table_schema = :s"),
                    {"s": schema},
                ).scalars()
            )
    finally:
        engine.dispose()
    assert {"shipnav_records", "shipnav_cursors", "shipnav_events"} <= tables


def test_pg_shipments_between_runs_and_late_inside_the_overlap(harness: SyncHarness) -> None:
    world = harness.world
    order_late, nav_late = sc.add_customer_order(world, order_number="PG-2001", order_date=ago(hours=3))
    order_new, nav_new = sc.add_customer_order(
        world, order_number="PG-2002", order_date=ago(hours=3), customer_name="New Buyer"
    )
    assert nav_late is not None and nav_new is not None
    first = harness.run()
    cursor = first.ledger.get_cursor("shipments_created")
    assert cursor is not None and cursor.tzinfo is not None  # timestamptz round trip
    assert first.patches == 0

    window_end = cursor.astimezone(PACIFIC).replace(tzinfo=None)
    late = sc.buy_label(world, order_late["orderId"], created=window_end - timedelta(minutes=30))
    new = sc.buy_label(world, order_new["orderId"])
    second = harness.run()
    assert_written(second, late, nav_late["No"])
    assert_written(second, new, nav_new["No"])
    assert harness.run().patches == 0


def test_pg_void_relabel_and_conflict(harness: SyncHarness) -> None:
    world = harness.world
    order, header, old = order_with_label(world, "PG-3001", created=ago(minutes=30))
    harness.run()
    sc.void_label(world, old["shipmentId"])
    new = sc.buy_label(world, order["orderId"], carrier_code="usps")
    world.nav.faults.concurrent_edit_next = 1
    run = harness.run()
    assert_written(run, new, header["No"])
    assert nav(world, header["No"])["Shipping_Agent_Code"] == "USPS"
    assert run.record(key(old))["status"] == "voided"
    assert [s for m, _p, _q, s in run.nav_requests if m == "PATCH"] == [409, 200]
    assert harness.run().patches == 0


def test_pg_instance_loads_the_definitions(pg_url: str, tmp_path: Path) -> None:
    """``dagster definitions validate`` on an instance whose storage is PostgreSQL (the checkout's
    dagster.yaml with DAGSTER_PG_URL set)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPNAV_", "NAV_", "SHIPSTATION_", "DAGSTER_"))
    }
    env.update(DAGSTER_HOME=str(home), DAGSTER_PG_URL=pg_url)
    dagster = str(Path(sys.executable).parent / "dagster")

    info = subprocess.run(
        [dagster, "instance", "info"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert info.returncode == 0, info.stdout[-2000:] + info.stderr[-2000:]
    assert "Postgres" in info.stdout, info.stdout[-2000:]

    validate = subprocess.run(
        [dagster, "definitions", "validate", "-m", "shipnav_dagster.definitions"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-3000:]
    assert "Validation successful" in validate.stdout + validate.stderr
