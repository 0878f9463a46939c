"""The three matching tiers, normalisation, split children and ambiguity (pure functions)."""

from datetime import UTC, date, datetime

import pytest

from shipnav_dagster.core.matching import NavIndex, match_record, normalize_name, record_keys, split_base
from shipnav_dagster.core.model import NavOrder, OrderInfo, ShipRecord

T0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


def label(
    order_id: int = 1,
    number: str | None = "100001",
    key: str | None = "k-1",
    ship_to: str | None = None,
    sid: int = 10,
) -> ShipRecord:
    return ShipRecord(
        record_key=f"shipment:{sid}",
        source="shipment",
        source_id=sid,
        order_id=order_id,
        order_key=key,
        order_number=number,
        tracking_number="1Z999",
        carrier_code="ups",
        created_at=T0,
        ship_to_name=ship_to,
    )


def nav(no: str, ext: str = "", name: str = "", day: date | None = None) -> NavOrder:
    return NavOrder(no=no, external_document_no=ext, customer_name=name, order_date=day)


def decide(record: ShipRecord, orders: list[NavOrder], infos: dict[int, OrderInfo] | None = None):
    infos = infos if infos is not None else {1: OrderInfo(order_id=1, order_number="100001", order_key="k-1")}
    return match_record(record, record_keys(record, infos), NavIndex.build(orders))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("O'Brien & Sons", "obrien and sons"),
        ("  O’BRIEN   and sons ", "obrien and sons"),
        ("Acme, Inc.", "acme"),
        ("ACME INC", "acme"),
        ("Zoë Müller", "zoe muller"),
        ("José Peña LLC", "jose pena"),
        ("Inc", "inc"),  # a name that is only a suffix keeps it
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_name(raw: str | None, expected: str) -> None:
    assert normalize_name(raw) == expected


def test_split_base() -> None:
    assert split_base("100038-1") == "100038"
    assert split_base("100038") is None
    assert split_base(None) is None


def test_tier1_external_document_no_by_order_number() -> None:
    d = decide(label(), [nav("SO-1", ext="100001"), nav("SO-2", ext="100002")])
    assert (d.outcome, d.tier, d.nav_order_no) == ("matched", 1, "SO-1")


def test_tier1_by_order_key_and_id_case_insensitive() -> None:
    assert decide(label(), [nav("SO-9", ext="K-1")]).nav_order_no == "SO-9"
    assert decide(label(), [nav("SO-8", ext="1")]).nav_order_no == "SO-8"


def test_tier1_two_candidates_is_ambiguous_and_stops() -> None:
    d = decide(label(), [nav("SO-1", ext="100001"), nav("SO-2", ext="100001"), nav("100001")])
    assert d.outcome == "ambiguous"
    assert d.tier == 1
    assert set(d.candidates) == {"SO-1", "SO-2"}
    assert d.nav_order_no is None


def test_tier2_no_equals_order_number() -> None:
    d = decide(label(), [nav("100001"), nav("100002")])
    assert (d.outcome, d.tier, d.nav_order_no) == ("matched", 2, "100001")


def test_split_child_resolves_to_parent() -> None:
    infos = {
        1: OrderInfo(order_id=1, order_number="100001", order_key="k-1"),
        2: OrderInfo(order_id=2, order_number="100001-1", order_key="k-2", parent_id=1),
    }
    child = label(order_id=2, number="100001-1", key="k-2", sid=11)
    assert decide(child, [nav("SO-1", ext="100001")], infos).nav_order_no == "SO-1"
    assert decide(child, [nav("100001")], infos).nav_order_no == "100001"


def test_tier3_name_and_pacific_order_date() -> None:
    infos = {
        1: OrderInfo(order_id=1, order_number="W-1", order_date=date(2026, 11, 20), ship_to_name="ACME INC")
    }
    rec = label(number="W-1", key=None)
    orders = [
        nav("SO-5", name="Acme, Inc.", day=date(2026, 11, 20)),
        nav("SO-6", name="Acme, Inc.", day=date(2026, 11, 19)),
    ]
    d = decide(rec, orders, infos)
    assert (d.outcome, d.tier, d.nav_order_no) == ("matched", 3, "SO-5")


def test_tier3_duplicate_names_same_day_is_ambiguous() -> None:
    infos = {
        1: OrderInfo(order_id=1, order_number="W-1", order_date=date(2026, 11, 20), ship_to_name="John Smith")
    }
    orders = [
        nav("SO-5", name="John Smith", day=date(2026, 11, 20)),
        nav("SO-7", name="JOHN  SMITH", day=date(2026, 11, 20)),
    ]
    d = decide(label(number="W-1", key=None), orders, infos)
    assert d.outcome == "ambiguous" and d.tier == 3


def test_nothing_found_is_no_order_yet_with_reason() -> None:
    d = decide(label(), [nav("SO-1", ext="999")])
    assert d.outcome == "no_order_yet"
    assert "100001" in d.reason


def test_record_without_any_identifier_is_invalid() -> None:
    rec = ShipRecord(record_key="shipment:5", source="shipment", source_id=5, created_at=T0)
    d = match_record(rec, record_keys(rec, {}), NavIndex.build([]))
    assert d.outcome == "invalid"


def test_tier3_ignores_nav_orders_that_belong_to_another_order() -> None:
    infos = {
        1: OrderInfo(order_id=1, order_number="W-2", order_date=date(2026, 11, 20), ship_to_name="Ann Lee")
    }
    taken = nav("SO-5", ext="W-1", name="Ann Lee", day=date(2026, 11, 20))  # her other order that day
    assert decide(label(number="W-2", key=None), [taken], infos).outcome == "no_order_yet"
    free = nav("SO-6", name="Ann Lee", day=date(2026, 11, 20))
    assert decide(label(number="W-2", key=None), [taken, free], infos).nav_order_no == "SO-6"
