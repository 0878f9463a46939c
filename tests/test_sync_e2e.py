"""End to end through the Dagster job ``shipnav_sync_job``, over HTTP, against the sandbox."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld, pacific_now
from tests.sync_harness import SyncHarness, harness_for, sqlite_instance, sqlite_ledger_url


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with sqlite_instance() as inst:
        yield inst


@pytest.fixture
def harness(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> Iterator[SyncHarness]:
    sc.install_shipping_agents(empty_world)
    with harness_for(monkeypatch, sandbox, empty_world, instance, sqlite_ledger_url(tmp_path)) as h:
        yield h


def test_tier1_external_document_no(harness: SyncHarness) -> None:
    world = harness.world
    order, nav = sc.add_customer_order(world, order_number="100201")
    label = sc.buy_label(world, order["orderId"], carrier_code="ups")
    run = harness.run()
    header = world.nav.sales_orders[nav["No"]]
    assert header["Package_Tracking_No"] == label["trackingNumber"]
    rec = run.record(f"shipment:{label['shipmentId']}")
    print(rec)
    print(run.metadata("nav_tracking_writeback"))
    second = harness.run()
    print(second.nav_requests)
