"""Issue #9 end to end through ``shipnav_sync_job``: NAV and Business Central as they really behave.

Field lengths (values that cannot fit never sent; a value NAV still refuses isolated), Business
Central's read-only posted shipments (header written, run green, nothing retried, the next label
on the header), orders deleted by posting (their posted shipments are the target), permanent
refusals parked once, and Windows (NTLM) authentication.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from tests.support.sync_harness import (
    SyncHarness,
    ago,
    assert_written,
    harness_for,
    key,
    nav,
    order_with_label,
    sqlite_instance,
    sqlite_ledger_url,
)


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
    with harness_for(monkeypatch, sandbox, empty_world, instance, sqlite_ledger_url(tmp_path)) as h:
        yield h


def no_unavailable(run: object, keys: list[str]) -> None:
    rows = run.records()  # type: ignore[attr-defined]  # SyncRun
    for k in keys:
        assert rows[k]["status"] != "failed", rows[k]["status_reason"]
        assert "unavailable" not in (rows[k]["status_reason"] or "").lower()


# --------------------------------------------------------------------------------------------
# Field lengths
# --------------------------------------------------------------------------------------------


def test_guid_order_keys_and_long_split_children_are_matched_without_refusals(harness: SyncHarness) -> None:
    world = harness.world
    # A manual order: ShipStation's orderKey is a 36-character GUID (External_Document_No holds 35).
    guid = "9f1c2d3e-4b5a-6789-abcd-ef0123456789"
    _manual, manual_nav, manual_label = order_with_label(world, "100501", order_key=guid)
    # A marketplace order number split by ShipStation: the child's number has 21 characters
    # (No holds 20), the parent's 19 (External_Document_No in NAV).
    parent, parent_nav = sc.add_customer_order(
        world, order_number="113-1234567-1234567", order_date=ago(hours=3)
    )
    assert parent_nav is not None
    child = sc.split_order(world, parent["orderId"], [("MUG-11OZ-BLK", 1)])
    assert len(child["orderNumber"]) == 21
    child_label = sc.buy_label(world, child["orderId"])
    _o, plain_nav, plain_label = order_with_label(world, "100502")

    run = harness.run()
    assert_written(run, manual_label, manual_nav["No"], tier=1)
    assert_written(run, child_label, parent_nav["No"])
    assert_written(run, plain_label, plain_nav["No"], tier=1)
    no_unavailable(run, [key(manual_label), key(child_label), key(plain_label)])
    # Values that cannot fit were never sent: NAV refused nothing.
    assert all(status != 400 for _m, _p, _q, status in run.nav_requests)
    sent = " ".join(q for m, _p, q, _s in run.nav_requests if m == "GET")
    assert guid.upper() not in sent.upper()
    decision = next(d for d in run.decisions() if d["record_key"] == key(manual_label))
    assert "not sent" in decision["reason"]


def test_a_value_nav_still_refuses_affects_only_its_records(harness: SyncHarness) -> None:
    world = harness.world
    # $metadata says External_Document_No holds 35; this NAV enforces 10 on filters.
    world.nav.filter_length_overrides = {"External_Document_No": 10}
    long_order, long_nav = sc.add_customer_order(
        world,
        order_number="LONGNUMBER-001",
        nav_no="LONGNUMBER-001",
        external_document_no="",
        order_date=ago(hours=2),
    )
    assert long_nav is not None
    long_label = sc.buy_label(world, long_order["orderId"])
    _o, short_nav, short_label = order_with_label(world, "100601")

    run = harness.run()
    refused = [s for m, _p, _q, s in run.nav_requests if m == "GET" and s == 400]
    assert refused, "NAV refused the over-long literal at least once"
    assert_written(run, long_label, long_nav["No"], tier=2)
    decision = next(d for d in run.decisions() if d["record_key"] == key(long_label))
    assert "NAV refused 'LONGNUMBER-001'" in decision["reason"]
    assert_written(run, short_label, short_nav["No"], tier=1)
    no_unavailable(run, [key(long_label), key(short_label)])


# --------------------------------------------------------------------------------------------
# Business Central: posted shipments are read-only
# --------------------------------------------------------------------------------------------


def test_business_central_header_written_posted_shipments_never_patched(harness: SyncHarness) -> None:
    world = harness.world
    sc.set_nav_platform(world, "bc")
    order, header = sc.add_customer_order(
        world, order_number="200701", items=[("MUG-11OZ-BLK", 1), ("TEE-M-NAVY", 1)], order_date=ago(hours=5)
    )
    assert header is not None
    first = sc.buy_label(world, order["orderId"], items=[("MUG-11OZ-BLK", 1)], created=ago(hours=2))
    run1 = harness.run(NAV_PLATFORM="bc")
    assert_written(run1, first, header["No"])

    # NAV posts the first box: posting copies the header's tracking onto the posted shipment.
    posted = sc.post_nav_shipment(world, header["No"], quantities={"MUG-11OZ-BLK": 1})
    assert posted["Package_Tracking_No"] == first["trackingNumber"]
    second = sc.buy_label(world, order["orderId"], items=[("TEE-M-NAVY", 1)])
    run2 = harness.run()
    # The header now carries the label the next posting will copy; the run is green.
    assert nav(world, header["No"])["Package_Tracking_No"] == second["trackingNumber"]
    assert run2.record(key(second))["status"] == "written"
    assert run2.nav_count("PATCH", "PostedSalesShipment") == 0
    assert world.nav.posted_shipments[posted["No"]]["Package_Tracking_No"] == first["trackingNumber"]

    run3 = harness.run()
    assert run3.patches == 0, "nothing is retried: BC's read-only posted shipments are known now"


def test_business_central_refusal_is_learned_once(harness: SyncHarness) -> None:
    world = harness.world
    sc.set_nav_platform(world, "bc")
    order, header = sc.add_customer_order(world, order_number="200801", order_date=ago(hours=5))
    assert header is not None
    label = sc.buy_label(world, order["orderId"], created=ago(hours=1))
    # Posted before shipnav saw the label: the posted shipment has no tracking.
    sc.post_nav_shipment(world, header["No"])
    run1 = harness.run(NAV_PLATFORM="auto", NAV_BATCH="off")  # tries page 130 once: refused, read-only
    assert run1.success
    assert run1.nav_count("PATCH", "PostedSalesShipment") == 1
    assert run1.record(key(label))["status"] == "written"
    skipped = [c for c in run1.changes() if c["entity"] == "PostedSalesShipment" and c["status"] == "skipped"]
    assert any("read-only" in c["reason"] for c in skipped)
    # Learned: from now on the header carries the label the next posting copies.
    later = sc.buy_label(world, order["orderId"])
    run2 = harness.run()
    assert run2.nav_count("PATCH", "PostedSalesShipment") == 0
    assert nav(world, header["No"])["Package_Tracking_No"] == later["trackingNumber"]


# --------------------------------------------------------------------------------------------
# Orders deleted by posting
# --------------------------------------------------------------------------------------------


def _deleted_order(world: SandboxWorld, number: str) -> tuple[dict, dict]:
    order, header = sc.add_customer_order(world, order_number=number, order_date=ago(hours=6))
    assert header is not None
    posted = sc.ship_and_invoice_nav_order(world, header["No"])
    assert header["No"] not in world.nav.sales_orders  # deleted by posting
    label = sc.buy_label(world, order["orderId"])
    return posted, label


def test_order_deleted_by_posting_nav_writes_its_posted_shipment(harness: SyncHarness) -> None:
    posted, label = _deleted_order(harness.world, "300101")
    run = harness.run(NAV_PLATFORM="nav")
    row = run.record(key(label))
    assert row["status"] == "written", row["status_reason"]
    assert row["nav_order_no"] == posted["Order_No"]
    assert "deleted by posting" in (run.decisions()[0]["reason"])
    assert harness.world.nav.posted_shipments[posted["No"]]["Package_Tracking_No"] == label["trackingNumber"]
    assert harness.run().patches == 0


def test_order_deleted_by_posting_business_central_parks_with_the_reason(harness: SyncHarness) -> None:
    sc.set_nav_platform(harness.world, "bc")
    _posted, label = _deleted_order(harness.world, "300201")
    run = harness.run(NAV_PLATFORM="bc")
    assert run.success
    row = run.record(key(label))
    assert row["status"] == "parked"
    assert "read-only" in row["status_reason"] and "codeunit 391" in row["status_reason"]
    assert run.patches == 0
    assert harness.run().patches == 0


# --------------------------------------------------------------------------------------------
# Permanent refusals
# --------------------------------------------------------------------------------------------


def test_a_permanent_refusal_is_parked_once_and_never_retried(harness: SyncHarness) -> None:
    world = harness.world
    _o, header, label = order_with_label(world, "400101")
    _o2, other, other_label = order_with_label(world, "400102")
    world.nav.faults.fail_status = 400
    world.nav.faults.fail_paths = (f"No='{header['No']}'",)
    world.nav.faults.fail_next = 5
    run1 = harness.run()
    assert run1.patches_to(header["No"]) == 1
    row = run1.record(key(label))
    assert row["status"] == "parked" and "NAV refused the change" in row["status_reason"]
    assert_written(run1, other_label, other["No"])
    world.nav.faults.fail_next = 0
    run2 = harness.run()
    assert run2.patches_to(header["No"]) == 0
    assert run2.record(key(label))["status"] == "parked"


# --------------------------------------------------------------------------------------------
# Windows authentication
# --------------------------------------------------------------------------------------------


def test_ntlm_sync_end_to_end(harness: SyncHarness) -> None:
    world = harness.world
    sc.use_windows_auth(world)
    _o, header, label = order_with_label(world, "500101")
    run = harness.run(
        NAV_AUTH="ntlm", NAV_USERNAME=world.nav.windows_username, NAV_PASSWORD=world.nav.windows_password
    )
    assert_written(run, label, header["No"])
    assert harness.run().patches == 0

    order_with_label(world, "500102")
    wrong = harness.run(expect_success=False, NAV_PASSWORD="not-the-password")
    assert not wrong.success
    assert "not-the-password" not in str(wrong.result.all_events)


# --------------------------------------------------------------------------------------------
# Business Central $batch
# --------------------------------------------------------------------------------------------


def test_business_central_batches_patches_and_settles_each_operation_on_its_own(harness: SyncHarness) -> None:
    world = harness.world
    sc.set_nav_platform(world, "bc")
    written = [order_with_label(world, f"90{n:04d}") for n in range(230)]
    _o, released, released_label = order_with_label(world, "909998")
    world.nav.faults.concurrent_edit_next = 1  # the first PATCH meets "another user" (409)
    run = harness.run(NAV_PLATFORM="bc")
    for _o2, header, label in [*written, (None, released, released_label)]:
        assert_written(run, label, header["No"])
    operations = world.nav.batch_log.count("PATCH")
    assert run.nav_count("PATCH") == 0, "every PATCH went inside a $batch"
    batches = run.nav_count("POST", "$batch")
    assert 3 <= batches <= 8, batches
    assert operations >= 231  # one per order, plus the re-sent conflict
    assert run.metadata("nav_tracking_writeback")["nav_batches"] == batches
    calls = len(run.nav_requests)
    assert calls / 231 <= 0.1, f"{calls} NAV requests for 231 orders"
    assert harness.run().nav_count("POST", "$batch") == 0


def test_nav_2018_has_no_batch_and_auto_falls_back_to_single_patches(harness: SyncHarness) -> None:
    world = harness.world
    labels = [order_with_label(world, f"91{n:04d}") for n in range(5)]
    run = harness.run(NAV_PLATFORM="auto")
    for _o, header, label in labels:
        assert_written(run, label, header["No"])
    assert run.nav_count("POST", "$batch") == 1  # tried once, refused as an unknown segment
    assert run.nav_count("PATCH") == 5
