"""The desired NAV state of an order from all its labels (pure), including property-based tests."""

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from shipnav_dagster.core.carriers import MappingError, load_mapping
from shipnav_dagster.core.model import NavOrder, NavPostedShipment, NavSalesLine, ShippedItem, ShipRecord
from shipnav_dagster.core.planning import plan_order

MAPPING = load_mapping()
T0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


def lbl(
    sid: int,
    tracking: str,
    minutes: int = 0,
    *,
    carrier: str = "ups",
    service: str | None = "ups_ground",
    voided: bool = False,
    ret: bool = False,
    items: tuple[ShippedItem, ...] = (),
) -> ShipRecord:
    return ShipRecord(
        record_key=f"shipment:{sid}",
        source="shipment",
        source_id=sid,
        order_id=1,
        order_number="100001",
        tracking_number=tracking,
        carrier_code=carrier,
        service_code=service,
        ship_date=date(2026, 11, 20),
        created_at=T0 + timedelta(minutes=minutes),
        voided=voided,
        is_return=ret,
        items=items,
    )


def order(**kw: object) -> NavOrder:
    base = {"no": "SO-1", "etag": 'W/"1"'}
    base.update(kw)
    return NavOrder(**base)  # type: ignore[arg-type]


def header(plan) -> dict:
    return next((p.changes for p in plan.patches if p.entity == "SalesOrder"), {})


def test_master_is_earliest_non_voided_non_return_label() -> None:
    records = [lbl(3, "1ZLATER", 10), lbl(1, "1ZRETURN", 0, ret=True), lbl(2, "1ZFIRST", 5)]
    plan = plan_order(order(), records, MAPPING, tracking_max_length=30)
    assert header(plan) == {
        "Package_Tracking_No": "1ZFIRST",
        "Shipping_Agent_Code": "UPS",
        "Shipment_Date": "2026-11-20",
    }
    assert plan.master_key == "shipment:2"
    # Built-in default maps agents only: the service skip is recorded with its reason.
    assert any(
        s.field == "Shipping_Agent_Service_Code" and "not in the carrier mapping" in s.reason
        for s in plan.skips
    )


def test_equal_values_are_not_written() -> None:
    current = order(
        package_tracking_no="1ZFIRST", shipping_agent_code="UPS", shipment_date=date(2026, 11, 20)
    )
    assert plan_order(current, [lbl(2, "1ZFIRST")], MAPPING, tracking_max_length=30).patches == []


def test_void_replaces_only_where_nav_holds_the_voided_number() -> None:
    records = [lbl(1, "1ZVOID", 0, voided=True), lbl(2, "1ZNEW", 30)]
    plan = plan_order(order(package_tracking_no="1ZVOID"), records, MAPPING, tracking_max_length=30)
    assert header(plan)["Package_Tracking_No"] == "1ZNEW"
    # Only a voided label left: clear the number NAV still holds ...
    plan = plan_order(order(package_tracking_no="1ZVOID"), records[:1], MAPPING, tracking_max_length=30)
    assert header(plan) == {"Package_Tracking_No": ""}
    # ... but never touch a number NAV holds that is not the voided one.
    plan = plan_order(order(package_tracking_no="MANUAL-7"), records[:1], MAPPING, tracking_max_length=30)
    assert plan.patches == []


def test_released_order_gets_tracking_only_with_reasons() -> None:
    plan = plan_order(order(status="Released"), [lbl(1, "1ZABC")], MAPPING, tracking_max_length=30)
    assert header(plan) == {"Package_Tracking_No": "1ZABC"}
    skipped = {s.field: s.reason for s in plan.skips}
    assert {"Shipping_Agent_Code", "Shipping_Agent_Service_Code", "Shipment_Date"} <= set(skipped)
    assert "Released" in skipped["Shipment_Date"]


def test_over_long_tracking_is_parked_not_truncated() -> None:
    long_number = "9" * 34
    plan = plan_order(order(), [lbl(1, long_number)], MAPPING, tracking_max_length=30)
    assert "Package_Tracking_No" not in header(plan)
    assert "34 characters" in plan.parked["shipment:1"]
    assert header(plan)["Shipping_Agent_Code"] == "UPS"  # other fields still written


def test_unknown_carrier_writes_tracking_and_records_the_skip() -> None:
    plan = plan_order(
        order(), [lbl(1, "OT123", carrier="ontrac", service="ontrac_ground")], MAPPING, tracking_max_length=30
    )
    assert header(plan)["Package_Tracking_No"] == "OT123"
    assert "Shipping_Agent_Code" not in header(plan)
    assert any("ontrac" in s.reason for s in plan.skips if s.field == "Shipping_Agent_Code")


def test_fulfillment_free_text_carrier_is_mapped_through_aliases() -> None:
    ful = ShipRecord(
        record_key="fulfillment:7",
        source="fulfillment",
        source_id=7,
        order_id=1,
        tracking_number="7712345",
        carrier_code="Fed-Ex ",
        created_at=T0,
        ship_date=date(2026, 11, 21),
    )
    plan = plan_order(order(), [ful], MAPPING, tracking_max_length=30)
    assert header(plan)["Shipping_Agent_Code"] == "FEDEX"


def test_operator_mapping_file_with_services(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("carriers:\n  ups:\n    agent: ups\n    services:\n      ups_ground: ground\n")
    mapping = load_mapping(path)
    plan = plan_order(order(), [lbl(1, "1ZA")], mapping, tracking_max_length=30)
    assert header(plan)["Shipping_Agent_Service_Code"] == "GROUND"
    path.write_text("carriers:\n  ups: {}\n")
    try:
        load_mapping(path)
    except MappingError as exc:
        assert "agent" in str(exc)
    else:
        raise AssertionError("a carrier without agent must be refused")


def test_posted_shipments_get_their_label() -> None:
    posted = [
        NavPostedShipment(no="PS-2", order_no="SO-1", posting_date=date(2026, 11, 21), etag="e2"),
        NavPostedShipment(
            no="PS-1",
            order_no="SO-1",
            posting_date=date(2026, 11, 20),
            etag="e1",
            package_tracking_no="1ZSECOND",
        ),
    ]
    plan = plan_order(
        order(), [lbl(1, "1ZFIRST", 0), lbl(2, "1ZSECOND", 5)], MAPPING, tracking_max_length=30, posted=posted
    )
    by_key = {p.key: p.changes for p in plan.patches if p.entity == "PostedSalesShipment"}
    assert by_key["PS-2"]["Package_Tracking_No"] == "1ZFIRST"
    assert "Package_Tracking_No" not in by_key.get("PS-1", {})


def test_header_and_posted_shipment_follow_one_agent_rule() -> None:
    """An unmapped service is left alone and recorded as a skip on the header and the posted
    shipment alike; a refused agent code leaves both agents alone, tracking is still written."""
    posted = [NavPostedShipment(no="PS-1", order_no="SO-1", posting_date=date(2026, 11, 20), etag="e1")]
    plan = plan_order(
        order(), [lbl(1, "1ZFIRST", service="ups_weird")], MAPPING, tracking_max_length=30, posted=posted
    )
    service_skips = {s.entity for s in plan.skips if s.field == "Shipping_Agent_Service_Code"}
    assert service_skips == {"SalesOrder", "PostedSalesShipment"}
    assert {p.entity: p.changes.get("Shipping_Agent_Code") for p in plan.patches} == {
        "SalesOrder": "UPS",
        "PostedSalesShipment": "UPS",
    }

    refused = plan_order(
        order(),
        [lbl(1, "1ZFIRST")],
        MAPPING,
        tracking_max_length=30,
        posted=posted,
        agent_refused="NAV said no",
    )
    assert all("Shipping_Agent_Code" not in p.changes for p in refused.patches)
    assert {p.entity for p in refused.patches if p.changes.get("Package_Tracking_No") == "1ZFIRST"} == {
        "SalesOrder",
        "PostedSalesShipment",
    }
    assert {
        s.entity for s in refused.skips if s.field == "Shipping_Agent_Code" and s.reason == "NAV said no"
    } == {
        "SalesOrder",
        "PostedSalesShipment",
    }


def test_line_quantities_never_above_outstanding() -> None:
    lines = [
        NavSalesLine(line_no=10000, no="SKU-1", quantity=5, quantity_shipped=3, qty_to_ship=2, etag="l1"),
        NavSalesLine(line_no=20000, no="SKU-2", quantity=1, qty_to_ship=1, etag="l2"),
    ]
    records = [lbl(1, "1ZA", items=(ShippedItem(sku="sku-1", quantity=10),))]
    plan = plan_order(
        order(), records, MAPPING, tracking_max_length=30, lines=lines, write_line_quantities=True
    )
    by_line = {p.key: p.changes["Qty_to_Ship"] for p in plan.patches if p.entity == "SalesLine"}
    assert by_line == {"SO-1/20000": 0}  # SKU-1 already 2 = outstanding; SKU-2 not shipped


# Property-based: the plan never targets another order, never emits a value longer than NAV
# holds, and does not depend on the order in which records arrive.

trackings = st.text(alphabet="0123456789ABCDEFZ", min_size=1, max_size=40)
label_strategy = st.builds(
    lambda sid, tr, minutes, voided, ret, carrier: lbl(
        sid, tr, minutes, voided=voided, ret=ret, carrier=carrier
    ),
    sid=st.integers(1, 10_000),
    tr=trackings,
    minutes=st.integers(0, 600),
    voided=st.booleans(),
    ret=st.booleans(),
    carrier=st.sampled_from(["ups", "fedex", "usps", "stamps_com", "ontrac", "dhl_express"]),
)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(label_strategy, max_size=8, unique_by=lambda r: r.source_id),
    current=trackings | st.just(""),
    status=st.sampled_from(["Open", "Released"]),
    max_len=st.sampled_from([20, 30, 50]),
    seed=st.integers(0, 1000),
)
def test_plan_properties(
    records: list[ShipRecord], current: str, status: str, max_len: int, seed: int
) -> None:
    nav_order = order(package_tracking_no=current, status=status)
    plan = plan_order(nav_order, records, MAPPING, tracking_max_length=max_len)
    for patch in plan.patches:
        assert patch.entity == "SalesOrder" and patch.key == "SO-1"  # one order, and only this one
        tracking = patch.changes.get("Package_Tracking_No")
        if tracking is not None:
            assert len(tracking) <= max_len
            assert tracking == "" or any(r.tracking_number == tracking for r in records)  # never altered
        if status != "Open":
            assert set(patch.changes) == {"Package_Tracking_No"}
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    again = plan_order(nav_order, shuffled, MAPPING, tracking_max_length=max_len)
    assert [(p.entity, p.key, p.changes) for p in again.patches] == [
        (p.entity, p.key, p.changes) for p in plan.patches
    ]
    assert again.parked == plan.parked
