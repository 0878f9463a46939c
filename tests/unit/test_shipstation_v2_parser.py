"""The V2 parser: the same records as V1's from V2 payloads, strict by field, tolerant by record;
and the ledger keeping one record per label whichever generation it was read through."""

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.shipstation.v2 import convert
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.shipstation.records import RecordError
from shipnav_dagster.shipstation.v1.parser import parse_shipment as parse_v1_shipment
from shipnav_dagster.shipstation.v2.parser import parse_fulfillment, parse_label, parse_shipment
from shipnav_dagster.shipstation.v2.timeutil import calendar_date
from shipnav_dagster.sync.intake import store_records
from tests.support.shipstation_v2_support import pacific

BASE = "https://api.shipstation.com"


def label(**fields: Any) -> dict[str, Any]:
    """A V2 label as the API returns it (the fields shipnav reads, spelled as captured)."""
    body: dict[str, Any] = {
        "label_id": "se-123456",
        "status": "completed",
        "shipment_id": "se-777",
        "external_shipment_id": "3f2a-order-key",
        "ship_date": "2026-09-03T07:00:00Z",
        "created_at": "2026-09-03T19:46:28.8Z",
        "tracking_number": "1Z999AA10123456784",
        "is_return_label": False,
        "voided": False,
        "voided_at": None,
        "carrier_code": "ups",
        "service_code": "ups_ground",
        "packages": [{"package_id": 1, "tracking_number": "1Z999AA10123456784", "sequence": 1}],
        "ship_to": {"name": "Ada Lovelace"},
    }
    body.update(fields)
    return body


def test_a_label_is_the_v1_shipment_of_the_same_number() -> None:
    got = parse_label(label())
    record = got.record
    assert record is not None and got.problem is None
    assert got.record_key == "shipment:123456" and record.source_id == 123456 and record.api == "v2"
    assert (record.order_id, record.order_ref, record.order_key) == (777, "se-777", "3f2a-order-key")
    assert record.order_number is None  # labels carry none: the shipment (order context) does
    assert record.tracking_number == "1Z999AA10123456784" and record.package_tracking_numbers == ()
    assert (record.carrier_code, record.service_code) == ("ups", "ups_ground")
    assert record.created_at == datetime(2026, 9, 3, 19, 46, 28, 800000, tzinfo=UTC)
    assert record.ship_date == date(2026, 9, 3)
    assert record.ship_to_name == "Ada Lovelace" and record.items == ()


def test_a_multi_package_label_is_one_record_that_keeps_every_number() -> None:
    packages = [{"tracking_number": n} for n in ("794600000001", "794600000002", "794600000003")]
    record = parse_label(label(tracking_number="794600000001", packages=packages)).record
    assert record is not None
    assert record.tracking_number == "794600000001"
    assert record.package_tracking_numbers == ("794600000001", "794600000002", "794600000003")
    # Without a label-level number the first package's is the label's.
    record = parse_label(label(tracking_number=None, packages=packages)).record
    assert record is not None and record.tracking_number == "794600000001"
    # A label-level number listed later is still put first (it is the master).
    record = parse_label(label(tracking_number="794600000002", packages=packages)).record
    assert record is not None and record.package_tracking_numbers[0] == "794600000002"


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2026-09-03T07:00:00Z", date(2026, 9, 3)),  # Pacific midnight (PDT) in UTC, as captured
        ("2026-01-03T08:00:00Z", date(2026, 1, 3)),  # Pacific midnight (PST) in UTC
        ("2026-09-03T00:00:00Z", date(2026, 9, 3)),  # UTC midnight, as the spec's examples write it
        ("2026-09-03T00:00:00-07:00", date(2026, 9, 3)),
        ("2026-09-03", date(2026, 9, 3)),
        ("2026-09-03T06:59:59Z", date(2026, 9, 2)),  # an instant: the Pacific calendar decides
    ],
)
def test_ship_date_is_the_calendar_day_in_the_account_zone(value: str, day: date) -> None:
    assert calendar_date(value) == day
    record = parse_label(label(ship_date=value)).record
    assert record is not None and record.ship_date == day


@pytest.mark.parametrize(
    ("fields", "key", "problem"),
    [
        ({"label_id": "se-abc"}, "shipment:invalid-", "label_id 'se-abc' is not a ShipStation id"),
        ({"label_id": 123456}, "shipment:invalid-", "label_id 123456 is not a ShipStation id"),
        ({"label_id": None}, "shipment:invalid-", "label_id is missing"),
        ({"shipment_id": "ord-77"}, "shipment:123456", "shipment_id 'ord-77' is not a ShipStation id"),
        ({"created_at": "yesterday"}, "shipment:123456", "created_at 'yesterday' is not an ISO-8601"),
        ({"ship_date": "soon"}, "shipment:123456", "ship_date 'soon' is not a date"),
        ({"voided": "perhaps"}, "shipment:123456", "voided 'perhaps' is not true or false"),
        ({"packages": [{"tracking_number": ["x"]}]}, "shipment:123456", "packages[0].tracking_number"),
    ],
)  # fmt: skip
def test_an_unreadable_label_is_kept_with_the_reason(fields: dict[str, Any], key: str, problem: str) -> None:
    got = parse_label(label(**fields))
    assert got.record is None and got.record_key.startswith(key)
    assert got.problem is not None and problem in got.problem
    assert got.payload == label(**fields)  # kept raw


def test_a_fulfillment_is_the_v1_fulfillment_of_the_same_number() -> None:
    record = parse_fulfillment(
        {
            "fulfillment_id": "se-5501",
            "shipment_id": "se-777",
            "shipment_number": "1003",
            "tracking_number": "794600000001",
            "created_at": "2024-09-17T20:00:00Z",
            "ship_date": "2024-09-16T07:00:00Z",
            "voided": False,
            "voided_at": None,
            "fulfillment_carrier_friendly_name": "FedEx",
            "fulfillment_provider_code": "external",
            "ship_to": {"name": "Bob"},
        }
    ).record
    assert record is not None and record.record_key == "fulfillment:5501" and record.source == "fulfillment"
    assert (record.order_id, record.order_number, record.carrier_code) == (777, "1003", "FedEx")
    assert record.ship_date == date(2024, 9, 16) and not record.is_return


def test_a_shipment_is_the_order_context() -> None:
    info = parse_shipment(
        {
            "shipment_id": "se-777",
            "shipment_number": "1007",
            "external_shipment_id": None,
            # 23:30 Pacific on the 17th is the 18th in UTC: the order date is the Pacific one.
            "created_at": "2024-09-18T06:30:00Z",
            "modified_at": "2024-09-18T07:00:00Z",
            "shipment_status": "label_purchased",
            "ship_to": {"name": "Ada Lovelace"},
            "store_id": "se-1",
        }
    )
    assert (info.order_id, info.order_number, info.order_key) == (777, "1007", None)
    assert info.order_date == date(2024, 9, 17) and info.ship_to_name == "Ada Lovelace"
    assert info.status == "label_purchased" and info.parent_id is None
    with pytest.raises(RecordError, match="shipment_id is missing"):
        parse_shipment({"shipment_number": "1"})


def test_split_shipments_share_their_number() -> None:
    """V2 keeps the order's number on the shipments split off it (V1 numbers them 1007-1)."""
    world = SandboxWorld()
    parent = sc.add_ss_order(world, order_number="1007", items=(("MUG-11OZ-BLK", 1), ("TEE-CRW-M-NVY", 1)))
    child = sc.split_order(world, parent["orderId"], [("TEE-CRW-M-NVY", 1)])
    orders = world.shipstation.orders
    infos = [parse_shipment(convert.shipment(o, orders)) for o in (parent, child)]
    assert [i.order_number for i in infos] == ["1007", "1007"]
    assert [i.order_id for i in infos] == [parent["orderId"], child["orderId"]]


def test_a_label_read_through_both_generations_is_one_record(tmp_path: Path) -> None:
    """V1 shipmentId N and V2 label_id se-N: one ledger record; the same facts through V2 change
    nothing (status, payload and the V1 items stay), a void seen through V2 changes it."""
    world = SandboxWorld()
    order = sc.add_ss_order(world, order_number="2001", order_date=pacific(17, 9))
    shipment = sc.buy_label(world, order["orderId"], created=pacific(17, 10))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}").create_all()
    try:
        first = store_records(ledger, parse_v1_shipment, [shipment], run_id="r1", seen_via="poll")
        key = f"shipment:{shipment['shipmentId']}"
        assert first.new == [key]
        again = store_records(
            ledger, parse_label, [convert.label(shipment, BASE)], run_id="r2", seen_via="poll"
        )
        assert (again.new, again.changed, again.unchanged) == ([], [], 1)
        [record] = ledger.load_records([key])
        assert record.api == "v1" and record.items  # the V1 reading is kept
        sc.void_label(world, shipment["shipmentId"], pacific(17, 11))
        voided = store_records(
            ledger, parse_label, [convert.label(shipment, BASE)], run_id="r3", seen_via="poll"
        )
        assert voided.changed == [key]
        [record] = ledger.load_records([key])
        assert record.api == "v2" and record.voided
    finally:
        ledger.dispose()
