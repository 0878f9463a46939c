"""Issue #13 end to end through ShipStation API V2: ``shipnav_sync_job`` and the webhook path over
HTTP against the sandbox, with what only V2 has (its key, its webhooks, its paging) and what a
switch from V1 to V2 must keep (one record per label, nothing written twice, the cursors).

The cases V1 and V2 share (every tier, voids, re-labels, fulfillments, splits, several labels per
order, posted shipments...) run through both generations in ``test_sync_e2e.py``.
"""

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from shipnav_dagster.definitions import defs
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.ledger import inbox
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.seed import build_world_with_manifest
from shipnav_dagster.sandbox.server import SandboxServers, ThreadedServer
from shipnav_dagster.sandbox.state import SandboxWorld, pacific_now
from shipnav_dagster.settings import load_settings
from shipnav_dagster.webhooks.app import SECRET_HEADER, create_app
from shipnav_dagster.webhooks.subscribe import run_subscribe
from tests.contract.test_webhooks import Listener
from tests.support.sync_harness import (
    QUIET,
    CountingLog,
    SyncHarness,
    ago,
    assert_written,
    harness_for,
    key,
    order_with_label,
    sqlite_instance,
    sqlite_ledger_url,
)

TOKEN = "hook-token-0123456789abcdef"


@pytest.fixture(scope="module")
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
    with harness_for(monkeypatch, sandbox, empty_world, instance, sqlite_ledger_url(tmp_path), "v2") as h:
        yield h


def nav_state(world: SandboxWorld) -> dict[str, Any]:
    """NAV's orders, lines and posted shipments without row versions (the order of writes may
    differ between two runs; what they wrote may not)."""

    def bare(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k != "_version"}

    return {
        "orders": {no: bare(o) for no, o in world.nav.sales_orders.items()},
        "lines": {no: [bare(ln) for ln in lines] for no, lines in world.nav.sales_lines.items()},
        "posted": {no: bare(p) for no, p in world.nav.posted_shipments.items()},
    }


# --------------------------------------------------------------------------------------------
# SHIPSTATION_API_VERSION=v2 with only SHIPSTATION_API_KEY
# --------------------------------------------------------------------------------------------


def test_only_an_api_key_means_v2_and_a_sync_writes(harness: SyncHarness) -> None:
    world = harness.world
    harness.monkeypatch.delenv("SHIPSTATION_API_VERSION")  # the default: no secret, so V2
    assert "SHIPSTATION_API_SECRET" not in harness.sandbox.env(shipstation_api_version="v2")
    _o, header, label = order_with_label(world, "V2-1001", customer_name="Only A Key")
    run = harness.run()
    assert_written(run, label, header["No"], tier=1)
    assert run.metadata("shipstation_shipments")["shipstation_api_version"] == "v2"
    assert world.shipstation.log.entries == [], "V1 was asked"
    paths = {p for _m, p, _q, _s in run.shipstation_requests}
    assert {"/v2/labels", "/v2/shipments", "/v2/fulfillments"} <= paths
    assert harness.run().patches == 0


def test_wrong_key_fails_clearly_and_writes_nothing(harness: SyncHarness) -> None:
    world = harness.world
    order_with_label(world, "V2-1002")
    before = copy.deepcopy(world.nav.sales_orders)
    run = harness.run(expect_success=False, SHIPSTATION_API_KEY="not-the-v2-key")
    assert not run.success
    failure = next(e for e in run.result.all_events if e.is_step_failure)
    text = failure.event_specific_data.error.to_string()  # type: ignore[union-attr]
    assert "ShipStation rejected the API key: check SHIPSTATION_API_KEY" in text
    assert "not-the-v2-key" not in text
    assert run.patches == 0 and world.nav.sales_orders == before
    assert run.records() == {}
    assert [s for _m, _p, _q, s in run.shipstation_requests] == [401]  # not retried


def test_a_v1_key_pair_against_v2_says_which_generation_it_is(harness: SyncHarness) -> None:
    world = harness.world
    run = harness.run(
        expect_success=False,
        SHIPSTATION_API_KEY=world.shipstation.api_key,
        SHIPSTATION_API_SECRET=world.shipstation.api_secret,
    )
    failure = next(e for e in run.result.all_events if e.is_step_failure)
    text = failure.event_specific_data.error.to_string()  # type: ignore[union-attr]
    assert "a V1 key + secret pair does not work with V2" in text
    assert world.shipstation.api_secret not in text


# --------------------------------------------------------------------------------------------
# Paging across pages while new labels arrive
# --------------------------------------------------------------------------------------------


def test_paging_across_pages_while_new_labels_arrive(harness: SyncHarness) -> None:
    world = harness.world
    world.shipstation.v2.max_page_size = 3
    pairs = [
        order_with_label(world, f"V2P-{n:02d}", customer_name=f"Pager {n}", created=ago(minutes=50 - n))
        for n in range(10)
    ]
    late: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []
    v2 = world.shipstation.v2

    def meanwhile(method: str, path: str, status: int) -> None:
        # After the first page of labels: a label is voided, two are bought (one stamped inside the
        # list, a late commit), so the list changes under the scan in both directions.
        if path == "/v2/labels" and not late:
            sc.void_label(world, pairs[0][2]["shipmentId"])
            late.append(order_with_label(world, "V2P-L1", customer_name="Late One", created=ago(minutes=45)))
            late.append(order_with_label(world, "V2P-L2", customer_name="Late Two"))

    v2.log = CountingLog(v2.log.entries, meanwhile)
    first = harness.run()
    pages = [q for _m, p, q, _s in first.shipstation_requests if p == "/v2/labels" and "completed" in q]
    assert len(pages) >= 4, pages
    for _o, header, label in pairs[1:] + late[:1]:
        assert_written(first, label, header["No"])
    second = harness.run()
    # The label bought after the window closed comes with the next run; the void is seen too.
    assert_written(second, late[1][2], late[1][1]["No"])
    assert second.record(key(pairs[0][2]))["status"] == "voided"
    written = [r for r in second.records().values() if r["status"] == "written"]
    assert len(written) == 11
    assert harness.run().patches == 0


# --------------------------------------------------------------------------------------------
# One seeded shop, through V1 and through V2: the same NAV
# --------------------------------------------------------------------------------------------


def test_the_same_shop_synced_through_v1_and_v2_ends_with_identical_nav(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    """The seeded shop (every case the generator makes) built twice at the same instant, synced
    once through each generation: NAV ends the same, and so does every record's outcome but one
    kind. A split-off box keyed into NAV as an order of its own, under the V1 child number
    ``…-1``, makes V1 find two NAV orders (ambiguous); V2 shows split shipments under their
    order's number only, so through V2 the box is one more package of that order (written to
    nothing: the order's master label is unchanged).

    V2 has no order date: tier 3 (customer name + order date) compares the Pacific date the
    shipment was created, i.e. imported into ShipStation. An order placed before midnight and
    imported after it is therefore found by name and date through V1 only; through V2 it waits for
    an operator (never a guess at the day before). Whether the seed makes such an order depends
    on the time of day the test runs."""
    now = pacific_now()
    states, children, next_day = {}, set(), set()
    for generation in ("v1", "v2"):
        world, manifest = build_world_with_manifest(seed=11, orders=120, now=now)
        children = set(manifest.categories["marketplace_split_child"])
        # V1 timestamps are Pacific wall-clock: the date is their first ten characters.
        next_day = {
            o["orderNumber"]
            for o in world.shipstation.orders.values()
            if o["orderDate"][:10] != o["createDate"][:10]
        }
        sandbox.world = world
        folder = tmp_path / generation
        folder.mkdir()
        with harness_for(monkeypatch, sandbox, world, instance, sqlite_ledger_url(folder), generation) as h:
            first = h.run()
            assert first.patches > 0
            assert h.run().patches == 0
            numbers = {o["orderId"]: o["orderNumber"] for o in world.shipstation.orders.values()}
            outcomes = {
                k: (r["status"], r["nav_order_no"], numbers.get(r["order_id"]))
                for k, r in first.records().items()
            }
        states[generation] = (nav_state(world), outcomes)
    v1, v2 = states["v1"][1], states["v2"][1]
    assert v1.keys() == v2.keys()
    differ = {k for k in v1 if v1[k] != v2[k]}
    late = {k for k in differ if v1[k][2] in next_day and v1[k][0] in ("written", "already_correct")}
    assert all(v2[k][0] in ("no_order_yet", "needs_attention") for k in late)
    untouched = {v1[k][1] for k in late}  # NAV orders V1 wrote and V2 left alone

    def without(state: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {
            part: {no: v for no, v in rows.items() if no not in untouched} for part, rows in state.items()
        }

    assert without(states["v1"][0]) == without(states["v2"][0])
    rest = differ - late
    assert children and {v1[k][2] for k in rest} <= children
    assert all(v1[k][0] == "ambiguous" and v2[k][0] in ("written", "already_correct") for k in rest)


# --------------------------------------------------------------------------------------------
# A shop that moves from V1 to V2
# --------------------------------------------------------------------------------------------


def test_a_ledger_that_switches_from_v1_to_v2_writes_nothing_twice(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    world = empty_world
    sc.install_shipping_agents(world)
    with harness_for(monkeypatch, sandbox, world, instance, sqlite_ledger_url(tmp_path), "v1") as h:
        before = [order_with_label(world, f"SW-{n}", customer_name=f"Switch {n}") for n in range(3)]
        _o, h_void, to_void = order_with_label(world, "SW-V", customer_name="Switch Void")
        first = h.run()
        for _o, header, label in before:
            assert_written(first, label, header["No"])
        after_v1 = first.records()
        v1_cursor = h.ledger.get_cursor("shipments_created")
        assert v1_cursor is not None

        h.use_generation("v2")
        _o, h_new, new = order_with_label(world, "SW-NEW", customer_name="Switch New")
        sc.void_label(world, to_void["shipmentId"])
        second = h.run()
        # The new generation starts where the old one stopped: no look back over a week of labels.
        windows = {
            r.data["stream"]: r.data["from_utc"]
            for r in second.metadata("shipstation_shipments")["windows"].records
        }
        overlap = timedelta(minutes=load_settings().shipnav_poll_overlap_minutes)
        assert windows["labels_created_v2"] == (v1_cursor - overlap).isoformat(timespec="seconds")
        # Only what changed is written: the new label, and the void cleared from its order.
        assert_written(second, new, h_new["No"])
        assert second.record(key(to_void))["status"] == "voided"
        assert world.nav.sales_orders[h_void["No"]]["Package_Tracking_No"] == ""
        patched = {p.split("No='")[1].split("'")[0] for p in second.patched_paths()}
        assert patched == {h_new["No"], h_void["No"]}
        # The labels V1 wrote are the same records, untouched (same status, version and payload).
        records = second.records()
        for _o, _header, label in before:
            row, old = records[key(label)], after_v1[key(label)]
            assert (row["status"], row["version"], row["payload"]) == (
                old["status"],
                old["version"],
                old["payload"],
            )
        assert len(records) == len(after_v1) + 1
        assert h.run().patches == 0


# --------------------------------------------------------------------------------------------
# Webhooks: subscribe, deliver, receive, run, write
# --------------------------------------------------------------------------------------------


def sensor_tick(instance: dg.DagsterInstance) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("shipnav_webhook_sensor")
    with dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"shipnav": ShipnavResource()}
    ) as context:
        return sensor(context)


def replay_from(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    config = request.run_config
    run_config = config.to_config_dict() if hasattr(config, "to_config_dict") else dict(config)
    job = defs.resolve_job_def("shipnav_replay_job")
    return job.execute_in_process(instance=instance, run_config={**run_config, **QUIET}, raise_on_error=False)


def test_v2_webhook_subscribe_deliver_run_written(harness: SyncHarness) -> None:
    world, sandbox = harness.world, harness.sandbox
    harness.apply_env(SHIPNAV_WEBHOOK_TOKEN=TOKEN)
    app = create_app(token=TOKEN, api_url=sandbox.shipstation_v2_url, ledger=harness.ledger, generation="v2")
    with ThreadedServer(app) as base:
        target = f"{base}/webhooks/shipstation/{TOKEN}"
        assert run_subscribe(load_settings(), target) == 0
        hooks = list(world.shipstation.v2.webhooks.values())
        assert sorted(h["event"] for h in hooks) == ["FULFILLMENT_SHIPPED_V2", "LABEL_CREATED_V2"]
        assert all(h["headers"] == [{"key": SECRET_HEADER, "value": TOKEN}] for h in hooks)
        assert run_subscribe(load_settings(), target) == 0  # twice: nothing new
        assert len(world.shipstation.v2.webhooks) == 2

        order, header = sc.add_customer_order(world, order_number="V2W-1", order_date=ago(hours=3))
        label = sc.buy_label(world, order["orderId"])
        order2, header2 = sc.add_customer_order(world, order_number="V2W-2", order_date=ago(hours=3))
        marked = sc.mark_shipped(world, order2["orderId"], carrier="FedEx", tracking_number="794600000099")
        deliveries = sandbox.deliver_v2_webhooks()
        assert [d.status for d in deliveries] == [200, 200]
        # ShipStation delivers at least once: the same notification again is stored once.
        again = httpx.post(target, json=deliveries[0].body, headers={SECRET_HEADER: TOKEN})
        assert again.json() == {"status": "duplicate"}
    tick = sensor_tick(harness.instance)
    assert len(tick.run_requests) == 1
    assert replay_from(harness.instance, tick.run_requests[0]).success
    assert header is not None and header2 is not None
    assert world.nav.sales_orders[header["No"]]["Package_Tracking_No"] == label["trackingNumber"]
    assert world.nav.sales_orders[header2["No"]]["Package_Tracking_No"] == "794600000099"
    rows = harness.ledger.record_rows([key(label), key(marked)])
    assert {r["seen_via"] for r in rows.values()} == {"webhook"}
    assert {r["status"] for r in rows.values()} == {"written"}
    assert inbox.counts_by_status(harness.ledger) == {"done": 2}
    # The poll then reads the same records: nothing new, nothing written.
    assert harness.run().patches == 0


def test_v2_notification_with_an_off_host_url_is_never_requested(harness: SyncHarness) -> None:
    """Refused by the receiver, and (stored by an older receiver) refused again by the drain: the
    listener standing in for a foreign host never sees a connection."""
    listener = Listener()
    try:
        off_host = f"http://127.0.0.1:{listener.port}/v2/labels?batch_id=se-1"
        app = create_app(
            token=TOKEN, api_url=harness.sandbox.shipstation_v2_url, ledger=harness.ledger, generation="v2"
        )
        with ThreadedServer(app) as base:
            answer = httpx.post(
                f"{base}/webhooks/shipstation/{TOKEN}",
                json={"resource_url": off_host, "resource_type": "LABEL_CREATED_V2"},
                headers={SECRET_HEADER: TOKEN},
            )
        assert answer.status_code == 400 and "/v2/labels" in answer.json()["error"]
        assert inbox.pending_count(harness.ledger) == 0
        inbox.store_notification(harness.ledger, "LABEL_CREATED_V2", off_host)
        tick = sensor_tick(harness.instance)
        assert replay_from(harness.instance, tick.run_requests[0]).success
        assert listener.connections == 0
        assert inbox.counts_by_status(harness.ledger) == {"failed": 1}
    finally:
        listener.close()


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def test_shipnav_demo_on_v2(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPSTATION_", "NAV_", "SHIPNAV_", "DAGSTER_"))
    }
    shipnav = Path(sys.executable).parent / "shipnav"
    done = subprocess.run(
        [str(shipnav), "demo", "--shipstation", "v2", "--orders", "80", "--home", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "read through ShipStation API V2" in done.stdout
    assert "written to NAV" in done.stdout
    assert "ShipStation V2 requests:" in done.stdout
    assert "0 NAV PATCH requests (nothing new to write)" in done.stdout
