"""Issue #3: end to end through the Dagster job ``shipnav_sync_job``, over HTTP, against the sandbox.

Every case is built explicitly with the scenario helpers, the real job runs on a throwaway Dagster
instance with the environment pointing at the sandbox servers, and each test asserts the NAV
state, the NAV requests and the ledger status and reason of its records. Cases that need no fault,
hook or setting of their own share the runs of two scenarios (one run + an idempotent rerun; three
runs with changes in between); the others get their own world (``empty_world``). The seeded shop
gets one broad smoke test; the command lines (``dagster job execute``, ``shipnav demo``) run as
subprocesses.

The shared scenarios, the seeded shop and the cases about ShipStation itself (paging, its rate
limit, its server errors, the poll's metadata, dry run) run through both API generations, V1 and
V2, against the same world (issue #13); what only V2 has is in ``test_sync_e2e_v2.py``.
"""

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import dagster as dg
import pytest

from shipnav_dagster.core.planning import HEADER_STATUS_LOCKED
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import PACIFIC, SandboxWorld, pacific_now
from tests.support.sync_harness import (
    CHECK_NAME,
    Record,
    SyncHarness,
    SyncRun,
    ago,
    assert_written,
    clean_environment,
    harness_for,
    key,
    nav,
    order_with_label,
    sqlite_instance,
    sqlite_ledger_url,
)

GENERATIONS = ("v1", "v2")  # ShipStation API generations: the same world, read through each
LABELS_CREATED = {"v1": "shipments_created", "v2": "labels_created_v2"}  # their cursors


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """One throwaway instance for the module (runs are told apart by run id)."""
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


@pytest.fixture(params=GENERATIONS)
def any_harness(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> Iterator[SyncHarness]:
    """A harness reading ShipStation through V1, and one through V2."""
    sc.install_shipping_agents(empty_world)
    with harness_for(
        monkeypatch, sandbox, empty_world, instance, sqlite_ledger_url(tmp_path), request.param
    ) as h:
        yield h


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def surface(harness: SyncHarness) -> Any:
    """The ShipStation API the harness polls: its faults, limits and log."""
    state = harness.world.shipstation
    return state.v2 if harness.generation == "v2" else state


def header_fields(header: Record) -> dict[str, Any]:
    return {
        k: header[k]
        for k in (
            "Package_Tracking_No",
            "Shipping_Agent_Code",
            "Shipping_Agent_Service_Code",
            "Shipment_Date",
        )
    }


# --------------------------------------------------------------------------------------------
# Shared scenarios: many independent cases in one world, synced by the same runs
#
# Each Dagster run costs about half a second of instance bookkeeping, so the cases that need no
# fault, hook or setting of their own share one world (unique order numbers and customer names
# keep them independent) and are asserted one test per case.
# --------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    world: SandboxWorld
    runs: list[SyncRun]
    cases: dict[str, dict[str, Any]]
    ledger_after_first: dict[str, dict[str, Any]]
    nav_after_first: dict[str, Record]

    @property
    def first(self) -> SyncRun:
        return self.runs[0]


@contextmanager
def shared_harness(
    servers: SandboxServers, instance: dg.DagsterInstance, folder: Path, generation: str = "v1"
) -> Iterator[SyncHarness]:
    world = SandboxWorld()
    sc.install_shipping_agents(world)
    servers.world = world
    with (
        pytest.MonkeyPatch.context() as mp,
        harness_for(mp, servers, world, instance, sqlite_ledger_url(folder), generation) as h,
    ):
        yield h


def one_run_cases(world: SandboxWorld) -> dict[str, dict[str, Any]]:
    """Every case one sync settles, each with its own order number and customer."""
    c: dict[str, dict[str, Any]] = {}
    one = [("MUG-11OZ-BLK", 1)]

    _o, h, lb = order_with_label(world, "100201", customer_name="Tier One", items=[("MUG-11OZ-BLK", 2)])
    c["tier1"] = {"nav": h, "label": lb, "lines": copy.deepcopy(world.nav.sales_lines[h["No"]])}

    o, _ = sc.add_customer_order(
        world, order_number="#1077", customer_name="Tier Id", order_date=ago(hours=3), in_nav=False
    )
    h = sc.add_nav_order(
        world, customer_name="Tier Id", order_date=ago(hours=3).date(), external_document_no=str(o["orderId"])
    )
    c["tier1_id"] = {"nav": h, "label": sc.buy_label(world, o["orderId"], carrier_code="fedex")}

    _o, h, lb = order_with_label(
        world, "SO-20001", customer_name="Tier Two", external_document_no="", nav_no="SO-20001"
    )
    # A split-style suffix on the ShipStation number is stripped for tier 2 (20002-1 -> 20002).
    _o, h2, lb2 = order_with_label(
        world, "20002-1", customer_name="Tier Two Split", external_document_no="", nav_no="20002"
    )
    c["tier2"] = {"nav": h, "label": lb, "nav2": h2, "label2": lb2}

    o, h = sc.add_customer_order(
        world,
        order_number="WEB-5501",
        customer_name="Margarethe Müller",
        order_date=ago(days=2),
        external_document_no="",
        nav_customer_name="MARGARETHE MULLER",
    )
    c["tier3"] = {"nav": h, "label": sc.buy_label(world, o["orderId"], carrier_code="usps")}

    # 23:30 Pacific is already the next day in UTC: NAV's Order_Date is the Pacific date.
    late = datetime.combine(pacific_now().date() - timedelta(days=2), time(23, 30))
    o, h = sc.add_customer_order(
        world, order_number="WEB-5502", customer_name="Night Owl", order_date=late, external_document_no=""
    )
    # The same customer ordered again the next (Pacific) day: another NAV order.
    other = sc.add_nav_order(world, customer_name="Night Owl", order_date=late.date() + timedelta(days=1))
    c["tier3_pacific"] = {"nav": h, "label": sc.buy_label(world, o["orderId"]), "other": other, "late": late}

    o, h = sc.add_customer_order(
        world,
        order_number="30001",
        customer_name="Split Parent",
        order_date=ago(hours=5),
        items=[("MUG-11OZ-BLK", 1), ("TEE-CRW-M-NVY", 1)],
    )
    child = sc.split_order(world, o["orderId"], [("TEE-CRW-M-NVY", 1)], when=ago(hours=4))
    c["split"] = {
        "nav": h,
        "child": child,
        "parent_label": sc.buy_label(world, o["orderId"], created=ago(hours=3)),
        "child_label": sc.buy_label(world, child["orderId"], created=ago(hours=2)),
    }

    o, h = sc.add_customer_order(
        world, order_number="40001", customer_name="Amb Ext", order_date=ago(hours=2)
    )
    h2 = sc.add_nav_order(
        world, customer_name="Other Amb", order_date=ago(hours=2).date(), external_document_no="40001"
    )
    c["ambiguous_ext"] = {"nav": h, "nav2": h2, "label": sc.buy_label(world, o["orderId"])}

    placed = ago(days=1)
    o, h = sc.add_customer_order(
        world, order_number="WEB-7", customer_name="Pat Doe", order_date=placed, external_document_no=""
    )
    h2 = sc.add_nav_order(world, customer_name="Pat Doe", order_date=placed.date())
    c["ambiguous_name"] = {"nav": h, "nav2": h2, "label": sc.buy_label(world, o["orderId"])}

    o, h, old = order_with_label(world, "70002", customer_name="Early Void", created=ago(minutes=50))
    sc.void_label(world, old["shipmentId"], when=ago(minutes=45))
    c["void_before_first"] = {
        "nav": h,
        "old": old,
        "label": sc.buy_label(world, o["orderId"], created=ago(minutes=40)),
    }

    o, h = sc.add_customer_order(
        world,
        order_number="80001",
        customer_name="Multi Pack",
        order_date=ago(hours=3),
        items=[("MUG-11OZ-BLK", 2)],
    )
    # The later package is bought first (lower shipmentId): the master is the earliest createDate.
    later = sc.buy_label(world, o["orderId"], created=ago(minutes=10), items=one)
    earlier = sc.buy_label(world, o["orderId"], created=ago(minutes=20), items=one)
    c["multi"] = {"nav": h, "later": later, "earlier": earlier}

    o, h, outbound = order_with_label(world, "81001", customer_name="Returner", created=ago(minutes=30))
    returned = sc.buy_label(world, o["orderId"], is_return=True)
    o2, h2 = sc.add_customer_order(
        world, order_number="81002", customer_name="Only Return", order_date=ago(hours=2)
    )
    c["return"] = {
        "nav": h,
        "label": outbound,
        "returned": returned,
        "nav2": h2,
        "lone_return": sc.buy_label(world, o2["orderId"], is_return=True),
    }

    _o, h, lb = order_with_label(world, "90001", customer_name="Released Co", nav_status="Released")
    c["released"] = {"nav": h, "label": lb, "before": header_fields(h)}

    del world.nav.shipping_agents["DHL"]  # this company never set up a DHL Shipping Agent
    o, h = sc.add_customer_order(
        world, order_number="90003", customer_name="Dhl Fan", order_date=ago(hours=2)
    )
    c["agent_unknown"] = {"nav": h, "label": sc.buy_label(world, o["orderId"], carrier_code="dhl_express")}

    o, h = sc.add_customer_order(
        world, order_number="91001", customer_name="Long Number", order_date=ago(hours=2)
    )
    lb = sc.buy_label(world, o["orderId"], carrier_code="fedex", service_code="fedex_smartpost")
    _o, h2, lb2 = order_with_label(world, "91002", customer_name="Short Number")
    c["overlong"] = {"nav": h, "label": lb, "ok_nav": h2, "ok_label": lb2}

    o, h = sc.add_customer_order(
        world, order_number="92001", customer_name="On Trac", order_date=ago(hours=2)
    )
    c["unmapped"] = {"nav": h, "label": sc.buy_label(world, o["orderId"], carrier_code="ontrac")}

    # Tier 3 (no External Document No., another No) and tier 1 with a quote and an ampersand in
    # the order number itself ($filter quoting).
    o3, h3 = sc.add_customer_order(
        world,
        order_number="OB-3",
        customer_name="O'Brien & Sons",
        order_date=ago(days=1),
        external_document_no="",
    )
    o1, h1 = sc.add_customer_order(
        world, order_number="O'B&S-1", customer_name="O'Brien & Sons", order_date=ago(days=2)
    )
    c["quote"] = {
        "nav3": h3,
        "label3": sc.buy_label(world, o3["orderId"]),
        "nav1": h1,
        "label1": sc.buy_label(world, o1["orderId"]),
    }

    o, h = sc.add_customer_order(
        world, order_number="93001", customer_name="Fed Fan", order_date=ago(hours=4)
    )
    o2, h2 = sc.add_customer_order(
        world, order_number="93002", customer_name="Post Fan", order_date=ago(hours=4)
    )
    c["fulfillment"] = {
        "nav": h,
        "label": sc.mark_shipped(world, o["orderId"], carrier="FedEx", tracking_number="612345678901"),
        "nav2": h2,
        "label2": sc.mark_shipped(
            world, o2["orderId"], carrier="U.S.P.S.", tracking_number="9400100000000000000001"
        ),
    }

    o, h = sc.add_customer_order(
        world, order_number="94001", customer_name="Posted Once", order_date=ago(days=1)
    )
    posted = sc.post_nav_shipment(world, h["No"])
    c["posted"] = {
        "nav": h,
        "posted": posted,
        "tracking_when_posted": posted["Package_Tracking_No"],
        "label": sc.buy_label(world, o["orderId"], carrier_code="fedex"),
    }

    o, h = sc.add_customer_order(
        world,
        order_number="94002",
        customer_name="Posted Twice",
        order_date=ago(days=2),
        items=[("MUG-11OZ-BLK", 2)],
    )
    today = pacific_now().date()
    p1 = sc.post_nav_shipment(
        world, h["No"], quantities={"MUG-11OZ-BLK": 1}, posting_date=today - timedelta(days=1)
    )
    p2 = sc.post_nav_shipment(world, h["No"], quantities={"MUG-11OZ-BLK": 1}, posting_date=today)
    c["posted_twice"] = {
        "nav": h,
        "p1": p1,
        "p2": p2,
        "first": sc.buy_label(world, o["orderId"], created=ago(hours=20), items=one),
        "second": sc.buy_label(world, o["orderId"], created=ago(hours=1), items=one),
    }
    return c


@pytest.fixture(scope="module", params=GENERATIONS)
def one_run(
    request: pytest.FixtureRequest,
    sandbox_servers: SandboxServers,
    instance: dg.DagsterInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scenario]:
    """Every case of ``one_run_cases``, synced through ShipStation V1, and through V2."""
    folder = tmp_path_factory.mktemp(f"one_run_{request.param}")
    with shared_harness(sandbox_servers, instance, folder, request.param) as h:
        cases = one_run_cases(h.world)
        first = h.run()
        ledger_after_first = first.records()
        nav_after_first = copy.deepcopy(h.world.nav.sales_orders)
        h.run()
        yield Scenario(h.world, h.runs, cases, ledger_after_first, nav_after_first)


def pk(run: SyncRun, no: str) -> list[int]:
    """Statuses of the PATCHes this run sent to one sales order (or its lines)."""
    return [s for m, p, _q, s in run.nav_requests if m == "PATCH" and f"No='{no}'" in p]


def statuses_of(run: SyncRun, no: str) -> list[int]:
    """Statuses of every NAV request of this run that addressed one sales order."""
    return [s for _m, p, _q, s in run.nav_requests if f"No='{no}'" in p]


def test_one_run_succeeds_and_the_second_run_writes_nothing(one_run: Scenario) -> None:
    first, second = one_run.runs
    assert first.success and second.success
    assert first.patches > 0
    assert second.patches == 0
    assert {k: r["status"] for k, r in second.records().items()} == {
        k: r["status"] for k, r in one_run.ledger_after_first.items()
    }
    assert one_run.world.nav.sales_orders == one_run.nav_after_first
    for run in (first, second):
        checks = [e for e in run.check_evaluations() if e.check_name == CHECK_NAME]
        assert checks and all(e.passed for e in checks)


def test_tier1_external_document_no_is_the_order_number(one_run: Scenario) -> None:
    case, first, world = one_run.cases["tier1"], one_run.first, one_run.world
    no = case["nav"]["No"]
    row = assert_written(first, case["label"], no, tier=1)
    assert row["status_reason"].startswith("master tracking")
    decision = next(d for d in first.decisions() if d["record_key"] == key(case["label"]))
    assert "External_Document_No" in decision["reason"]
    after = nav(world, no)
    assert after["Shipping_Agent_Code"] == "UPS"
    assert after["Shipment_Date"] == case["label"]["shipDate"]
    assert pk(first, no) == [200]  # one PATCH with everything
    # Qty_to_Ship is left alone unless SHIPNAV_WRITE_LINE_QUANTITIES is set.
    assert [ln["Qty_to_Ship"] for ln in world.nav.sales_lines[no]] == [
        ln["Qty_to_Ship"] for ln in case["lines"]
    ]


def test_tier1_external_document_no_is_the_order_id(one_run: Scenario) -> None:
    case = one_run.cases["tier1_id"]
    assert_written(one_run.first, case["label"], case["nav"]["No"], tier=1)
    assert nav(one_run.world, case["nav"]["No"])["Shipping_Agent_Code"] == "FEDEX"


def test_tier2_no_is_the_order_number(one_run: Scenario) -> None:
    case = one_run.cases["tier2"]
    assert_written(one_run.first, case["label"], "SO-20001", tier=2)
    assert_written(one_run.first, case["label2"], "20002", tier=2)


def test_tier3_customer_name_and_order_date(one_run: Scenario) -> None:
    case = one_run.cases["tier3"]
    no = case["nav"]["No"]
    assert no != "WEB-5501"
    assert_written(one_run.first, case["label"], no, tier=3)
    decision = next(d for d in one_run.first.decisions() if d["record_key"] == key(case["label"]))
    assert "customer name" in decision["reason"]
    assert nav(one_run.world, no)["Shipping_Agent_Code"] == "USPS"


def test_tier3_order_date_is_the_pacific_calendar_date(one_run: Scenario) -> None:
    case = one_run.cases["tier3_pacific"]
    assert case["nav"]["Order_Date"] == case["late"].date().isoformat()
    assert_written(one_run.first, case["label"], case["nav"]["No"], tier=3)
    assert nav(one_run.world, case["other"]["No"])["Package_Tracking_No"] == ""


def test_split_child_label_goes_to_the_parent_nav_order(one_run: Scenario) -> None:
    case, first = one_run.cases["split"], one_run.first
    no = case["nav"]["No"]
    assert case["child"]["orderNumber"] == "30001-1"
    parent_row = assert_written(first, case["parent_label"], no)
    child_row = first.record(key(case["child_label"]))
    assert child_row["nav_order_no"] == no, child_row["status_reason"]
    assert child_row["status"] == "written"
    assert "additional package" in child_row["status_reason"]
    assert parent_row["match_tier"] == child_row["match_tier"] == 1
    assert nav(one_run.world, no)["Package_Tracking_No"] == case["parent_label"]["trackingNumber"]


def test_ambiguous_external_document_no_writes_nothing(one_run: Scenario) -> None:
    case, first = one_run.cases["ambiguous_ext"], one_run.first
    one, two = case["nav"]["No"], case["nav2"]["No"]
    row = first.record(key(case["label"]))
    assert row["status"] == "ambiguous" and row["match_tier"] == 1
    assert row["nav_order_no"] is None
    assert one in row["status_reason"] and two in row["status_reason"]
    for run in one_run.runs:
        assert not run.patched(one) and not run.patched(two)
    assert nav(one_run.world, one) == case["nav"] and nav(one_run.world, two) == case["nav2"]
    (decision,) = [d for d in first.decisions() if d["record_key"] == key(case["label"])]
    assert decision["outcome"] == "ambiguous" and sorted(decision["candidates"]) == sorted([one, two])


def test_ambiguous_name_and_date_writes_nothing(one_run: Scenario) -> None:
    case = one_run.cases["ambiguous_name"]
    row = one_run.first.record(key(case["label"]))
    assert row["status"] == "ambiguous" and row["match_tier"] == 3
    for run in one_run.runs:
        assert not run.patched(case["nav"]["No"]) and not run.patched(case["nav2"]["No"])
    assert nav(one_run.world, case["nav"]["No"])["Package_Tracking_No"] == ""
    assert nav(one_run.world, case["nav2"]["No"])["Package_Tracking_No"] == ""


def test_void_and_relabel_before_the_first_run_never_writes_the_void(one_run: Scenario) -> None:
    case, first = one_run.cases["void_before_first"], one_run.first
    assert_written(first, case["label"], case["nav"]["No"])
    assert first.record(key(case["old"]))["status"] == "voided"
    assert not any(case["old"]["trackingNumber"] in str(c["after"]) for c in first.changes())


def test_multi_package_master_is_the_earliest_label(one_run: Scenario) -> None:
    case, first = one_run.cases["multi"], one_run.first
    earlier, later = case["earlier"], case["later"]
    assert later["shipmentId"] < earlier["shipmentId"]
    no = case["nav"]["No"]
    assert nav(one_run.world, no)["Package_Tracking_No"] == earlier["trackingNumber"]
    assert first.record(key(earlier))["status_reason"].startswith("master tracking")
    later_row = first.record(key(later))
    assert later_row["status"] == "written"
    assert f"NAV holds the master {earlier['trackingNumber']}" in later_row["status_reason"]
    assert pk(first, no) == [200]


def test_return_label_is_ignored(one_run: Scenario) -> None:
    case, first = one_run.cases["return"], one_run.first
    assert_written(first, case["label"], case["nav"]["No"])
    for label in (case["returned"], case["lone_return"]):
        row = first.record(key(label))
        assert row["status"] == "ignored"
        assert "return label" in row["status_reason"]
    assert nav(one_run.world, case["nav2"]["No"])["Package_Tracking_No"] == ""
    assert not first.patched(case["nav2"]["No"])


def test_released_order_gets_tracking_only(one_run: Scenario) -> None:
    case, first = one_run.cases["released"], one_run.first
    no = case["nav"]["No"]
    row = assert_written(first, case["label"], no)
    after = header_fields(nav(one_run.world, no))
    for name in HEADER_STATUS_LOCKED:
        assert after[name] == case["before"][name]
    assert "Released" in row["status_reason"] and "Shipping_Agent_Code not written" in row["status_reason"]
    skipped = {c["field"]: c for c in first.changes() if c["status"] == "skipped" and c["nav_order_no"] == no}
    assert set(HEADER_STATUS_LOCKED) <= set(skipped)
    assert all("Released" in skipped[name]["reason"] for name in HEADER_STATUS_LOCKED)
    # NAV never had to refuse anything: the status-locked fields were never sent.
    assert pk(first, no) == [200]


def test_agent_code_nav_does_not_know_still_writes_tracking(one_run: Scenario) -> None:
    case, first = one_run.cases["agent_unknown"], one_run.first
    no = case["nav"]["No"]
    row = assert_written(first, case["label"], no)
    assert nav(one_run.world, no)["Shipping_Agent_Code"] == ""
    assert "Internal_InvalidTableRelation" in row["status_reason"]
    assert pk(first, no) == [400, 200]


def test_overlong_tracking_is_parked_while_other_orders_are_written(one_run: Scenario) -> None:
    case, first = one_run.cases["overlong"], one_run.first
    assert len(case["label"]["trackingNumber"]) == 34
    row = first.record(key(case["label"]))
    assert row["status"] == "parked"
    assert "34 characters" in row["status_reason"] and "never truncated" in row["status_reason"]
    assert nav(one_run.world, case["nav"]["No"])["Package_Tracking_No"] == ""
    # NAV was never sent the value it cannot hold.
    assert all(s < 400 for s in statuses_of(first, case["nav"]["No"]))
    assert_written(first, case["ok_label"], case["ok_nav"]["No"])


def test_unmapped_carrier_writes_tracking_without_agent(one_run: Scenario) -> None:
    case, first = one_run.cases["unmapped"], one_run.first
    no = case["nav"]["No"]
    row = assert_written(first, case["label"], no)
    assert nav(one_run.world, no)["Shipping_Agent_Code"] == ""
    assert "'ontrac' is not in the carrier mapping" in row["status_reason"]
    agent = [c for c in first.changes() if c["field"] == "Shipping_Agent_Code" and c["nav_order_no"] == no]
    assert [c["status"] for c in agent] == ["skipped"]


def test_customer_name_with_a_quote(one_run: Scenario) -> None:
    case = one_run.cases["quote"]
    assert case["nav1"]["External_Document_No"] == "O'B&S-1"
    assert_written(one_run.first, case["label3"], case["nav3"]["No"], tier=3)
    assert_written(one_run.first, case["label1"], case["nav1"]["No"], tier=1)


def test_mark_as_shipped_fulfillment_maps_the_free_text_carrier(one_run: Scenario) -> None:
    case = one_run.cases["fulfillment"]
    assert_written(one_run.first, case["label"], case["nav"]["No"], tier=1)
    assert_written(one_run.first, case["label2"], case["nav2"]["No"], tier=1)
    assert nav(one_run.world, case["nav"]["No"])["Shipping_Agent_Code"] == "FEDEX"
    assert nav(one_run.world, case["nav2"]["No"])["Shipping_Agent_Code"] == "USPS"


def test_posted_shipment_is_updated(one_run: Scenario) -> None:
    case, first = one_run.cases["posted"], one_run.first
    assert case["tracking_when_posted"] == ""
    assert_written(first, case["label"], case["nav"]["No"])
    stored = one_run.world.nav.posted_shipments[case["posted"]["No"]]
    assert stored["Package_Tracking_No"] == case["label"]["trackingNumber"]
    assert stored["Shipping_Agent_Code"] == "FEDEX"
    assert any(f"PostedSalesShipment(No='{case['posted']['No']}')" in p for p in first.patched_paths())


def test_two_posted_shipments_take_the_labels_in_order(one_run: Scenario) -> None:
    case, world = one_run.cases["posted_twice"], one_run.world
    assert nav(world, case["nav"]["No"])["Package_Tracking_No"] == case["first"]["trackingNumber"]
    assert (
        world.nav.posted_shipments[case["p1"]["No"]]["Package_Tracking_No"] == case["first"]["trackingNumber"]
    )
    assert (
        world.nav.posted_shipments[case["p2"]["No"]]["Package_Tracking_No"]
        == case["second"]["trackingNumber"]
    )


# --------------------------------------------------------------------------------------------
# Runs over time: changes between runs, in one shared three-run scenario
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=GENERATIONS)
def over_time(
    request: pytest.FixtureRequest,
    sandbox_servers: SandboxServers,
    instance: dg.DagsterInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scenario]:
    """Run 1; then labels bought, voided, late-committed, NAV edited, tokens expired; run 2; run 3.
    Through ShipStation V1, and through V2."""
    folder = tmp_path_factory.mktemp(f"over_time_{request.param}")
    with shared_harness(sandbox_servers, instance, folder, request.param) as h:
        world, c = h.world, {}
        one = [("MUG-11OZ-BLK", 1)]
        _o, h1, lb1 = order_with_label(world, "60001", customer_name="Before Runs")
        o2, h2 = sc.add_customer_order(
            world, order_number="60002", customer_name="Between Runs", order_date=ago(hours=1)
        )
        c["between"] = {"nav_first": h1, "label_first": lb1, "nav": h2}
        o_late, h_late = sc.add_customer_order(
            world, order_number="61001", customer_name="Late Commit", order_date=ago(hours=3)
        )
        c["late"] = {"nav": h_late}
        o_vr, h_vr, old_vr = order_with_label(
            world, "70001", customer_name="Void Relabel", created=ago(minutes=40)
        )
        c["void_relabel"] = {"nav": h_vr, "old": old_vr}
        _o, h_vo, lb_vo = order_with_label(world, "70003", customer_name="Void Only", created=ago(minutes=30))
        c["void_only"] = {"nav": h_vo, "label": lb_vo}
        _o, h_vn, lb_vn = order_with_label(
            world, "70004", customer_name="Void Not Held", created=ago(minutes=30)
        )
        c["void_not_held"] = {"nav": h_vn, "label": lb_vn}
        o_pr, h_pr = sc.add_customer_order(
            world,
            order_number="80002",
            customer_name="Promote",
            order_date=ago(hours=3),
            items=[("MUG-11OZ-BLK", 2)],
        )
        c["promote"] = {
            "nav": h_pr,
            "master": sc.buy_label(world, o_pr["orderId"], created=ago(minutes=50), items=one),
            "other": sc.buy_label(world, o_pr["orderId"], created=ago(minutes=40), items=one),
        }
        o_tp, h_tp = sc.add_customer_order(
            world,
            order_number="80003",
            customer_name="Third Pack",
            order_date=ago(hours=3),
            items=[("MUG-11OZ-BLK", 3)],
        )
        c["third_package"] = {
            "nav": h_tp,
            "master": sc.buy_label(world, o_tp["orderId"], created=ago(minutes=20), items=one),
        }
        o_q, _ = sc.add_customer_order(
            world, order_number="99105", customer_name="Queued Buyer", order_date=ago(hours=2), in_nav=False
        )
        c["queued"] = {"label": sc.buy_label(world, o_q["orderId"])}

        first = h.run()
        ledger_after_first = first.records()
        nav_after_first = copy.deepcopy(world.nav.sales_orders)
        cursor = first.ledger.get_cursor(LABELS_CREATED[h.generation])
        assert cursor is not None
        window_end = cursor.astimezone(PACIFIC).replace(tzinfo=None)

        c["between"]["label"] = sc.buy_label(world, o2["orderId"])
        # Committed in ShipStation only now, but stamped 30 minutes before the first window closed.
        c["late"]["label"] = sc.buy_label(
            world, o_late["orderId"], created=window_end - timedelta(minutes=30)
        )
        c["late"]["window_end"] = window_end
        sc.void_label(world, old_vr["shipmentId"], when=ago(minutes=10))
        c["void_relabel"]["new"] = sc.buy_label(world, o_vr["orderId"], carrier_code="fedex")
        sc.void_label(world, lb_vo["shipmentId"])
        # Someone in NAV typed another number after shipnav wrote the label's, then it was voided.
        sc.update_nav_order(world, h_vn["No"], Package_Tracking_No="MANUAL-123")
        sc.void_label(world, lb_vn["shipmentId"])
        sc.void_label(world, c["promote"]["master"]["shipmentId"])
        c["third_package"]["third"] = sc.buy_label(world, o_tp["orderId"], items=one)
        c["queued"]["nav"] = sc.add_nav_order(
            world, customer_name="Queued Buyer", order_date=ago(hours=2).date(), external_document_no="99105"
        )
        # The retry is due after a backoff; make it due now instead of waiting for the clock.
        with first.ledger.engine.begin() as conn:
            conn.execute(
                t.records.update()
                .where(t.records.c.record_key == key(c["queued"]["label"]))
                .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        world.nav.expire_tokens()  # every token the first run got is refused from now on

        h.run()
        h.run()
        yield Scenario(world, h.runs, c, ledger_after_first, nav_after_first)


def test_over_time_third_run_writes_nothing(over_time: Scenario) -> None:
    assert [r.success for r in over_time.runs] == [True, True, True]
    assert over_time.runs[2].patches == 0


def test_shipment_created_between_runs_is_written_by_the_second_run(over_time: Scenario) -> None:
    case = over_time.cases["between"]
    first, second = over_time.runs[:2]
    assert_written(first, case["label_first"], case["nav_first"]["No"])
    assert not first.patched(case["nav"]["No"])
    assert_written(second, case["label"], case["nav"]["No"])
    assert pk(second, case["nav"]["No"]) == [200]
    assert not second.patched(case["nav_first"]["No"])


def test_late_committed_shipment_inside_the_overlap_is_picked_up(over_time: Scenario) -> None:
    case = over_time.cases["late"]
    assert case["label"]["createDate"] < case["window_end"].isoformat()
    assert not over_time.runs[0].patched(case["nav"]["No"])
    assert_written(over_time.runs[1], case["label"], case["nav"]["No"])


def test_token_expired_between_runs(over_time: Scenario) -> None:
    second = over_time.runs[1]
    assert second.success and second.patches > 0
    assert second.nav_count("POST", "oauth2") >= 1


def test_void_and_relabel_leaves_the_new_number(over_time: Scenario) -> None:
    case, world = over_time.cases["void_relabel"], over_time.world
    no = case["nav"]["No"]
    assert over_time.nav_after_first[no]["Package_Tracking_No"] == case["old"]["trackingNumber"]
    second = over_time.runs[1]
    assert_written(second, case["new"], no)
    assert nav(world, no)["Shipping_Agent_Code"] == "FEDEX"
    assert second.record(key(case["old"]))["status"] == "voided"


def test_void_without_new_label_clears_the_number(over_time: Scenario) -> None:
    case, second = over_time.cases["void_only"], over_time.runs[1]
    no, label = case["nav"]["No"], case["label"]
    assert over_time.nav_after_first[no]["Package_Tracking_No"] == label["trackingNumber"]
    assert nav(over_time.world, no)["Package_Tracking_No"] == ""
    assert second.record(key(label))["status"] == "voided"
    cleared = [c for c in second.changes() if c["field"] == "Package_Tracking_No" and c["nav_order_no"] == no]
    assert [(c["before"], c["after"], c["status"]) for c in cleared] == [
        (label["trackingNumber"], "", "applied")
    ]


def test_void_does_not_clear_a_number_nav_no_longer_holds(over_time: Scenario) -> None:
    case, second = over_time.cases["void_not_held"], over_time.runs[1]
    no = case["nav"]["No"]
    assert over_time.nav_after_first[no]["Package_Tracking_No"] == case["label"]["trackingNumber"]
    assert nav(over_time.world, no)["Package_Tracking_No"] == "MANUAL-123"
    assert not second.patched(no)
    assert second.record(key(case["label"]))["status"] == "voided"


def test_voiding_the_master_promotes_the_next_package(over_time: Scenario) -> None:
    case, second = over_time.cases["promote"], over_time.runs[1]
    no = case["nav"]["No"]
    assert over_time.nav_after_first[no]["Package_Tracking_No"] == case["master"]["trackingNumber"]
    assert nav(over_time.world, no)["Package_Tracking_No"] == case["other"]["trackingNumber"]
    assert second.record(key(case["master"]))["status"] == "voided"


def test_a_later_package_leaves_the_master_alone(over_time: Scenario) -> None:
    case, second = over_time.cases["third_package"], over_time.runs[1]
    no = case["nav"]["No"]
    assert nav(over_time.world, no)["Package_Tracking_No"] == case["master"]["trackingNumber"]
    assert not second.patched(no)
    row = second.record(key(case["third"]))
    assert row["status"] == "already_correct" and row["nav_order_no"] == no


def test_record_queued_until_the_nav_order_exists(over_time: Scenario) -> None:
    case = over_time.cases["queued"]
    row = over_time.ledger_after_first[key(case["label"])]
    assert row["status"] == "no_order_yet" and "99105" in row["status_reason"]
    assert row["next_attempt_at"] is not None
    assert_written(over_time.runs[1], case["label"], case["nav"]["No"], tier=1)


def test_line_quantities_are_written_when_enabled(harness: SyncHarness) -> None:
    world = harness.world
    order, header = sc.add_customer_order(
        world,
        order_number="95001",
        order_date=ago(hours=2),
        items=[("MUG-11OZ-BLK", 3), ("TEE-CRW-M-NVY", 1)],
    )
    assert header is not None
    label = sc.buy_label(world, order["orderId"], items=[("MUG-11OZ-BLK", 2)])
    run = harness.run(SHIPNAV_WRITE_LINE_QUANTITIES="true")
    assert_written(run, label, header["No"])
    qty = {ln["No"]: ln["Qty_to_Ship"] for ln in world.nav.sales_lines[header["No"]]}
    assert qty == {"MUG-11OZ-BLK": 2, "TEE-CRW-M-NVY": 0}
    # Two line PATCHes and no 409: the lines are written before the header PATCH, which NAV
    # pushes to the lines (new ETags).
    assert run.nav_count("PATCH", "SalesOrderSalesLines") == 2
    assert 409 not in [s for m, _p, _q, s in run.nav_requests if m == "PATCH"]
    qty_changes = [c for c in run.changes() if c["field"] == "Qty_to_Ship"]
    assert sorted((float(c["before"]), float(c["after"]), c["status"]) for c in qty_changes) == [
        (1.0, 0.0, "applied"),
        (3.0, 2.0, "applied"),
    ]
    assert harness.run().patches == 0


# --------------------------------------------------------------------------------------------
# Faults: tokens, conflicts, paging, throttling, server errors
# --------------------------------------------------------------------------------------------


def test_token_expires_mid_run(harness: SyncHarness) -> None:
    world = harness.world
    pairs = [order_with_label(world, f"9610{n}", customer_name=f"Buyer {n}") for n in range(6)]
    expired: list[int] = []

    def expire_after_first_patch(method: str, path: str, status: int) -> None:
        if method == "PATCH" and not expired:
            world.nav.expire_tokens()
            expired.append(1)

    harness.on_nav_request(expire_after_first_patch)
    run = harness.run()
    assert expired, "no PATCH was made"
    for _o, header, label in pairs:
        assert_written(run, label, header["No"])
    assert any(s == 401 for _m, _p, _q, s in run.nav_requests), "the expired token was never refused"
    assert run.nav_count("POST", "oauth2") >= 2


def test_conflict_on_the_first_patch_is_reread_and_written(harness: SyncHarness) -> None:
    world = harness.world
    _o, header, label = order_with_label(world, "97001")
    world.nav.faults.concurrent_edit_next = 1
    run = harness.run()
    assert_written(run, label, header["No"])
    patch_statuses = [s for m, _p, _q, s in run.nav_requests if m == "PATCH"]
    assert patch_statuses == [409, 200]
    assert harness.run().patches == 0


def test_conflict_after_a_partial_write_keeps_the_whole_audit(harness: SyncHarness) -> None:
    """Header written, then the posted shipment's PATCH meets 409: the re-planned round only
    has the posted shipment left, but the ledger must show both writes."""
    world = harness.world
    order, header = sc.add_customer_order(world, order_number="97002", order_date=ago(days=1))
    assert header is not None
    posted = sc.post_nav_shipment(world, header["No"])
    label = sc.buy_label(world, order["orderId"])

    def conflict_on_the_second_patch(method: str, path: str, status: int) -> None:
        if method == "PATCH" and status == 200 and "SalesOrder(" in path:
            world.nav.faults.concurrent_edit_next = 1

    harness.on_nav_request(conflict_on_the_second_patch)
    run = harness.run()
    row = assert_written(run, label, header["No"])
    assert world.nav.posted_shipments[posted["No"]]["Package_Tracking_No"] == label["trackingNumber"]
    assert [s for m, _p, _q, s in run.nav_requests if m == "PATCH"] == [200, 409, 200]
    applied = {(c["entity"], c["field"]) for c in run.changes() if c["status"] == "applied"}
    assert ("SalesOrder", "Package_Tracking_No") in applied
    assert ("PostedSalesShipment", "Package_Tracking_No") in applied
    assert "SalesOrder" in row["status_reason"] and "PostedSalesShipment" in row["status_reason"]


def test_nav_server_driven_paging(harness: SyncHarness) -> None:
    world = harness.world
    world.nav.max_page_size = 3
    pairs = [order_with_label(world, f"9800{n:02d}", customer_name=f"Pager {n}") for n in range(11)]
    run = harness.run()
    for _o, header, label in pairs:
        assert_written(run, label, header["No"])
    paged = [q for m, _p, q, _s in run.nav_requests if m == "GET" and "skiptoken" in q]
    assert len(paged) >= 3, "NAV's nextLink was not followed"
    assert harness.run().patches == 0


def test_shipstation_paging_over_500_records(any_harness: SyncHarness) -> None:
    harness = any_harness
    world = harness.world
    count = 503
    headers = []
    for n in range(count):
        order, header = sc.add_customer_order(
            world, order_number=f"P{n:04d}", customer_name="Bulk Buyer", order_date=ago(hours=3)
        )
        assert header is not None
        sc.buy_label(world, order["orderId"], created=ago(minutes=60 - n / 10))
        headers.append(header)
    run = harness.run()
    assert run.success
    if harness.generation == "v1":
        pages = [
            q for m, p, q, _s in run.shipstation_requests if p == "/shipments" and "createDateStart" in q
        ]
        assert len(pages) == 2, pages
        assert any("page=2" in q for q in pages)
    else:  # the second page is the first one from the last label read on
        pages = [q for m, p, q, _s in run.shipstation_requests if p == "/v2/labels" and "completed" in q]
        assert len(pages) == 2, pages
        assert len({dict(parse_qsl(q))["created_at_start"] for q in pages}) == 2
    written = [r for r in run.records().values() if r["status"] == "written"]
    assert len(written) == count
    assert all(world.nav.sales_orders[h["No"]]["Package_Tracking_No"] for h in headers)


def test_shipstation_rate_limit_and_429(any_harness: SyncHarness) -> None:
    harness = any_harness
    world = harness.world
    pairs = [order_with_label(world, f"9900{n}", customer_name=f"Rate {n}") for n in range(3)]
    # A budget of 4 requests per 1-second window (ShipStation: V1 40, V2 200 per minute), and one 429.
    api = surface(harness)
    api.rate_limit_per_minute = 4
    api.rate_window_seconds = 1
    api.faults.throttle_next = 1
    api.faults.retry_after_seconds = 0
    run = harness.run()
    for _o, header, label in pairs:
        assert_written(run, label, header["No"])
    statuses = run.shipstation_statuses()
    assert len(statuses) > 4, "the run fitted in one window: the budget was never tested"
    if harness.generation == "v1":
        # The injected 429 was waited out; the client paced itself and never overran the budget.
        assert statuses.count(429) == 1
    else:
        # V2 reports no budget: every 429 (the injected one, the real limit's) waits Retry-After.
        assert statuses.count(429) >= 1
    meta = run.metadata("shipstation_shipments")
    assert meta["records_fetched"] == 3


def test_server_errors_are_retried_on_both_apis(any_harness: SyncHarness) -> None:
    harness = any_harness
    world = harness.world
    _o, header, label = order_with_label(world, "99101")
    surface(harness).faults.fail_next = 1
    world.nav.faults.fail_next = 1
    run = harness.run()
    assert_written(run, label, header["No"])
    assert 500 in run.shipstation_statuses()
    assert any(s == 500 for _m, _p, _q, s in run.nav_requests)


def test_server_error_on_a_patch_is_retried(harness: SyncHarness) -> None:
    world = harness.world
    _o, header, label = order_with_label(world, "99102")

    def fail_next_patch(method: str, path: str, status: int) -> None:
        # The lookup GETs are done once the posted-shipment query has been answered.
        if method == "GET" and "PostedSalesShipment" in path:
            world.nav.faults.fail_next = 1

    harness.on_nav_request(fail_next_patch)
    run = harness.run()
    assert_written(run, label, header["No"])
    assert [s for m, _p, _q, s in run.nav_requests if m == "PATCH"] == [500, 200]


def test_nav_throttling_is_waited_out(harness: SyncHarness) -> None:
    world = harness.world
    _o, header, label = order_with_label(world, "99103")
    world.nav.faults.throttle_next = 2
    world.nav.faults.retry_after_seconds = 0
    run = harness.run()
    assert_written(run, label, header["No"])
    assert [s for _m, _p, _q, s in run.nav_requests].count(429) == 2


def test_lost_patch_response_is_recorded_as_written(harness: SyncHarness) -> None:
    """The PATCH lands but its response is lost: the retry meets 409 (old ETag), the re-read shows
    NAV already has the values. The ledger must still say shipnav wrote them, with before/after."""
    world = harness.world
    _o, header, label = order_with_label(world, "99104")

    def drop_the_patch_response(method: str, path: str, status: int) -> None:
        if method == "GET" and "PostedSalesShipment" in path and not world.nav.faults.requests_seen > 99:
            world.nav.faults.drop_next = 1
            world.nav.faults.requests_seen = 100  # once

    harness.on_nav_request(drop_the_patch_response)
    run = harness.run()
    patches = [s for m, _p, _q, s in run.nav_requests if m == "PATCH"]
    assert patches[0] == 0, patches  # the response never arrived
    assert nav(world, header["No"])["Package_Tracking_No"] == label["trackingNumber"]
    row = assert_written(run, label, header["No"])
    assert row["status_reason"].startswith("master tracking")
    applied = [c for c in run.changes() if c["field"] == "Package_Tracking_No"]
    assert [(c["before"], c["after"], c["status"]) for c in applied] == [
        ("", label["trackingNumber"], "applied")
    ]


def test_dry_run_records_everything_and_writes_nothing(any_harness: SyncHarness) -> None:
    harness = any_harness
    world = harness.world
    _o, header, label = order_with_label(world, "99201")
    before = copy.deepcopy(world.nav.sales_orders)
    run = harness.run(SHIPNAV_DRY_RUN="true")
    assert run.patches == 0
    assert world.nav.sales_orders == before
    row = run.record(key(label))
    assert row["status"] == "matched_pending" and "dry run" in row["status_reason"]
    assert row["nav_order_no"] == header["No"] and row["match_tier"] == 1
    assert [d["outcome"] for d in run.decisions()] == ["matched"]
    planned = {c["field"]: c for c in run.changes()}
    assert planned["Package_Tracking_No"]["status"] == "dry_run"
    assert planned["Package_Tracking_No"]["after"] == label["trackingNumber"]
    assert planned["Package_Tracking_No"]["record_keys"] == [key(label)]
    assert run.metadata("nav_tracking_writeback")["dry_run"] in (True, 1)

    # Switching dry run off writes what was planned.
    live = harness.run(SHIPNAV_DRY_RUN="false")
    assert_written(live, label, header["No"])


def test_mapping_file_maps_services(harness: SyncHarness, tmp_path: Path) -> None:
    world = harness.world
    mapping = tmp_path / "carriers.yaml"
    mapping.write_text("carriers:\n  ups:\n    agent: UPS\n    services:\n      ups_next_day_air: NEXTDAY\n")
    order, header = sc.add_customer_order(world, order_number="99301", order_date=ago(hours=2))
    assert header is not None
    label = sc.buy_label(world, order["orderId"], service_code="ups_next_day_air")
    run = harness.run(SHIPNAV_MAPPING_FILE=str(mapping))
    assert_written(run, label, header["No"])
    after = nav(world, header["No"])
    assert (after["Shipping_Agent_Code"], after["Shipping_Agent_Service_Code"]) == ("UPS", "NEXTDAY")


# --------------------------------------------------------------------------------------------
# Dagster: metadata and the blocking check
# --------------------------------------------------------------------------------------------


def test_materialization_metadata_counts_and_blocking_check(any_harness: SyncHarness) -> None:
    harness = any_harness
    world = harness.world
    written = [order_with_label(world, f"99400{n}", customer_name=f"Meta {n}") for n in range(2)]
    order_amb, _ = sc.add_customer_order(world, order_number="994100", order_date=ago(hours=2))
    sc.add_nav_order(world, customer_name="X", order_date=ago(hours=2).date(), external_document_no="994100")
    sc.buy_label(world, order_amb["orderId"])
    missing, _ = sc.add_customer_order(world, order_number="994200", order_date=ago(hours=2), in_nav=False)
    sc.buy_label(world, missing["orderId"])
    order_long, _ = sc.add_customer_order(
        world, order_number="994300", order_date=ago(hours=2), customer_name="Long"
    )
    sc.buy_label(world, order_long["orderId"], carrier_code="fedex", service_code="fedex_smartpost")

    run = harness.run()
    poll = run.metadata("shipstation_shipments")
    assert poll["records_fetched"] == 5 and poll["records_new"] == 5
    matches = run.metadata("shipment_matches")
    assert matches["decided"] == 5
    assert (
        matches["outcome_matched"],
        matches["outcome_ambiguous"],
        matches["outcome_no_order_yet"],
        matches["outcome_invalid"],
    ) == (3, 1, 1, 0)
    writeback = run.metadata("nav_tracking_writeback")
    assert writeback["orders"] == 3
    assert writeback["nav_patches"] == run.patches == 3  # the parked order still gets agent + date
    assert writeback["ledger_status"] == {"written": 2, "ambiguous": 1, "no_order_yet": 1, "parked": 1}
    for _o, header, label in written:
        assert_written(run, label, header["No"])

    (evaluation,) = [e for e in run.check_evaluations() if e.check_name == CHECK_NAME]
    assert evaluation.passed
    assert evaluation.asset_key == dg.AssetKey("shipment_matches")
    stored = run.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("shipment_matches"), CHECK_NAME)]
    )
    assert stored, "the check evaluation is not in the instance"


# --------------------------------------------------------------------------------------------
# The seeded shop
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_seeded_shop_smoke(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    generation: str,
) -> None:
    world = seeded_world
    before = copy.deepcopy(world.nav.sales_orders)
    with harness_for(monkeypatch, sandbox, world, instance, sqlite_ledger_url(tmp_path), generation) as h:
        first = h.run()
        records = first.records()
        counts: dict[str, int] = {}
        for row in records.values():
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        for status in ("written", "ambiguous", "no_order_yet", "parked", "voided", "ignored"):
            assert counts.get(status), f"no {status} record in the seeded shop: {counts}"
        assert not counts.get("failed"), counts

        # Every NAV order that changed is one an unambiguous match pointed at.
        matched = {r["nav_order_no"] for r in records.values() if r["nav_order_no"]}
        changed = {
            no for no, o in world.nav.sales_orders.items() if header_fields(o) != header_fields(before[no])
        }
        assert changed and changed <= matched
        # ... and holds the earliest live outbound label of that order as its tracking number.
        for no in changed:
            labels = sorted(
                (
                    r
                    for r in records.values()
                    if r["nav_order_no"] == no
                    and not r["voided"]
                    and not r["is_return"]
                    and r["tracking_number"]
                ),
                key=lambda r: (r["created_at"], r["source"] != "shipment", r["source_id"]),
            )
            tracking = world.nav.sales_orders[no]["Package_Tracking_No"]
            if labels and labels[0]["status"] != "parked":
                assert tracking == labels[0]["tracking_number"], no

        second = h.run()
        assert second.patches == 0
        check = [e for e in first.check_evaluations() if e.check_name == CHECK_NAME]
        assert check and check[0].passed


# --------------------------------------------------------------------------------------------
# The command lines: dagster job execute, shipnav demo
# --------------------------------------------------------------------------------------------


def _subprocess_env(sandbox: SandboxServers, home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPSTATION_", "NAV_", "SHIPNAV_", "DAGSTER_"))
    }
    env.update(sandbox.env())
    env["DAGSTER_HOME"] = str(home)
    return env


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}"
    return str(path)


def test_dagster_job_execute_performs_a_complete_sync(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServers, empty_world: SandboxWorld, tmp_path: Path
) -> None:
    clean_environment(monkeypatch)
    world = empty_world
    world.shipstation.rate_limit_per_minute = 10_000
    sc.install_shipping_agents(world)
    pairs = [order_with_label(world, f"CLI-{n}", customer_name=f"Cli {n}") for n in range(3)]
    home = tmp_path / "home"
    home.mkdir()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    command = [
        _bin("dagster"),
        "job",
        "execute",
        "-m",
        "shipnav_dagster.definitions",
        "-j",
        "shipnav_sync_job",
    ]
    env = _subprocess_env(sandbox, home)

    def execute() -> int:
        before = world.nav.log.count("PATCH")
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return world.nav.log.count("PATCH") - before

    assert execute() == 3
    for _o, header, label in pairs:
        assert nav(world, header["No"])["Package_Tracking_No"] == label["trackingNumber"]
    # The ledger defaults to SQLite beside the instance.
    assert (home / "shipnav-ledger.db").exists()
    assert execute() == 0


def test_shipnav_demo_command(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHIPSTATION_", "NAV_", "SHIPNAV_", "DAGSTER_"))
    }
    done = subprocess.run(
        [_bin("shipnav"), "demo", "--home", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout.lower()
    for word in ("written", "queued", "ambiguous", "parked"):
        assert word in text, f"the demo summary does not mention {word!r}:\n{done.stdout[-2000:]}"
    assert "0 nav patch requests" in text  # the second run writes nothing
