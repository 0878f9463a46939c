"""The generated shop (seed.py) and the world-mutation helpers (scenario.py), in memory."""

import json
import re
import time
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.seed import (
    SeedManifest,
    build_bulk_world,
    build_world,
    build_world_with_manifest,
)
from shipnav_dagster.sandbox.state import SandboxWorld, format_pacific, pacific_now

NOW = datetime(2026, 3, 12, 14, 30, 5, 123456)  # naive Pacific
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")
ITEM_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
MIDNIGHT = re.compile(r"^\d{4}-\d\d-\d\dT00:00:00\.0000000$")


@pytest.fixture(scope="module")
def seeded() -> tuple[SandboxWorld, SeedManifest]:
    return build_world_with_manifest(seed=7, now=NOW)


@pytest.fixture(scope="module")
def world(seeded: tuple[SandboxWorld, SeedManifest]) -> SandboxWorld:
    return seeded[0]


@pytest.fixture(scope="module")
def manifest(seeded: tuple[SandboxWorld, SeedManifest]) -> SeedManifest:
    return seeded[1]


def snapshot(world: SandboxWorld) -> str:
    """Everything a client could see, as canonical JSON."""
    ss, nav = world.shipstation, world.nav
    return json.dumps(
        {
            "stores": ss.stores,
            "orders": ss.orders,
            "shipments": ss.shipments,
            "fulfillments": ss.fulfillments,
            "sales_orders": nav.sales_orders,
            "sales_lines": nav.sales_lines,
            "posted": nav.posted_shipments,
            "agents": {k: sorted(v) for k, v in nav.shipping_agents.items()},
            "tracking_max_length": nav.tracking_max_length,
        },
        sort_keys=True,
    )


def normalize(name: str) -> str:
    """A plausible tier-3 normalisation: case, accents, punctuation and whitespace ignored."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9& ]+", " ", text).split())


def order(world: SandboxWorld, number: str) -> dict[str, Any]:
    return sc.order_by_number(world, number)


def outbound(world: SandboxWorld, order_id: int) -> list[dict[str, Any]]:
    return [s for s in sc.labels_of(world, order_id) if not s["isReturnLabel"]]


def nav_by_ext(world: SandboxWorld, value: str) -> list[dict[str, Any]]:
    return sc.nav_order_for(world, value)


def pacific_date(timestamp: str) -> str:
    return timestamp[:10]


# --------------------------------------------------------------------------------------------
# Determinism, speed, size
# --------------------------------------------------------------------------------------------


def test_same_seed_and_now_give_identical_worlds() -> None:
    assert snapshot(build_world(seed=7, now=NOW)) == snapshot(build_world(seed=7, now=NOW))
    assert snapshot(build_world(seed=8, now=NOW)) != snapshot(build_world(seed=7, now=NOW))


def test_aware_now_is_converted_to_pacific() -> None:
    from zoneinfo import ZoneInfo

    aware = NOW.replace(tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(ZoneInfo("UTC"))
    assert snapshot(build_world(seed=7, now=aware)) == snapshot(build_world(seed=7, now=NOW))


def test_build_is_fast() -> None:
    started = time.perf_counter()
    build_world(seed=7)
    assert time.perf_counter() - started < 1.0


def test_default_now_puts_everything_inside_a_first_poll() -> None:
    world = build_world(seed=7)
    now = pacific_now()
    earliest = format_pacific(now - timedelta(hours=168))
    latest = format_pacific(now + timedelta(minutes=1))
    for shipment in world.shipstation.shipments.values():
        assert earliest <= shipment["createDate"] <= latest
    for record in world.shipstation.fulfillments.values():
        assert earliest <= record["createDate"] <= latest


def test_sizes(world: SandboxWorld) -> None:
    ss = world.shipstation
    assert 2 <= len(ss.stores) <= 3
    assert 300 <= len(ss.orders) <= 320  # 300 customer orders plus split children
    assert 240 <= len(ss.shipments) <= 320
    assert 250 <= len(world.nav.sales_orders) <= 330


@pytest.mark.parametrize("orders", [0, 1, 5, 20, 60])
def test_small_worlds_build(orders: int) -> None:
    world = build_world(seed=3, orders=orders, now=NOW)
    customer_orders = [o for o in world.shipstation.orders.values() if not o["advancedOptions"]["parentId"]]
    assert len(customer_orders) == orders


def test_tracking_max_length_is_configurable() -> None:
    assert build_world(seed=7, orders=5, now=NOW, tracking_max_length=50).nav.tracking_max_length == 50


def test_platform_is_configurable() -> None:
    nav2018 = build_world(seed=7, orders=5, now=NOW).nav
    assert (nav2018.platform, nav2018.tracking_max_length, nav2018.max_page_size) == ("nav2018", 30, 1000)
    bc = build_world(seed=7, orders=5, now=NOW, platform="bc").nav
    assert (bc.platform, bc.tracking_max_length, bc.max_page_size) == ("bc", 50, 20_000)
    assert (
        build_world(seed=7, orders=5, now=NOW, platform="bc", tracking_max_length=30).nav.tracking_max_length
        == 30
    )
    with pytest.raises(ValueError, match="unknown NAV platform"):
        build_world(seed=7, orders=5, now=NOW, platform="nav2009")


# --------------------------------------------------------------------------------------------
# Shapes and referential integrity
# --------------------------------------------------------------------------------------------


def test_timestamps_have_shipstation_format(world: SandboxWorld) -> None:
    ss = world.shipstation
    for store in ss.stores.values():
        assert TIMESTAMP.match(store["createDate"])
    for o in ss.orders.values():
        for name in ("orderDate", "createDate", "modifyDate"):
            assert TIMESTAMP.match(o[name]), (name, o[name])
        assert o["paymentDate"] is None or TIMESTAMP.match(o["paymentDate"])
        assert o["shipDate"] is None or DATE.match(o["shipDate"])
        assert o["createDate"] <= o["modifyDate"]
        for item in o["items"]:
            assert ITEM_TIMESTAMP.match(item["createDate"])
    for s in ss.shipments.values():
        assert TIMESTAMP.match(s["createDate"])
        assert DATE.match(s["shipDate"])
        assert s["voidDate"] is None or TIMESTAMP.match(s["voidDate"])
    for f in ss.fulfillments.values():
        assert TIMESTAMP.match(f["createDate"])
        assert MIDNIGHT.match(f["shipDate"])


def test_labels_belong_to_existing_orders(world: SandboxWorld) -> None:
    ss = world.shipstation
    for s in ss.shipments.values():
        o = ss.orders[s["orderId"]]
        assert (s["orderNumber"], s["orderKey"]) == (o["orderNumber"], o["orderKey"])
        assert s["advancedOptions"]["storeId"] == o["advancedOptions"]["storeId"]
        assert s["createDate"] >= o["createDate"]
        assert s["shipmentItems"], "labels carry their items"
        order_item_ids = {i["orderItemId"] for i in o["items"]}
        for item in s["shipmentItems"]:
            assert item["orderItemId"] in order_item_ids or o["advancedOptions"]["mergedOrSplit"]
            assert not item["adjustment"]
    for f in ss.fulfillments.values():
        assert ss.orders[f["orderId"]]["orderStatus"] == "shipped"
        assert not sc.labels_of(world, f["orderId"]), "mark-as-shipped orders have no labels"


def test_voids_are_after_creation(world: SandboxWorld) -> None:
    voided = [s for s in world.shipstation.shipments.values() if s["voided"]]
    assert voided
    for s in voided:
        assert s["voidDate"] >= s["createDate"]


def test_ids_and_tracking_numbers_are_unique(world: SandboxWorld) -> None:
    ss = world.shipstation
    ids = [*ss.orders, *ss.shipments, *ss.fulfillments, *ss.stores]
    assert len(ids) == len(set(ids))
    assert len({o["orderKey"] for o in ss.orders.values()}) == len(ss.orders)
    assert len({o["orderNumber"] for o in ss.orders.values()}) == len(ss.orders)
    tracking = [s["trackingNumber"] for s in ss.shipments.values()]
    assert len(tracking) == len(set(tracking))


def test_tracking_numbers_look_like_the_carriers(world: SandboxWorld) -> None:
    patterns = {
        "ups": r"1Z[0-9A-Z]{16}",
        "fedex": r"\d{12}|\d{34}",
        "stamps_com": r"\d{22}",
        "usps": r"\d{22}",
        "dhl_express": r"\d{10}",
        "ontrac": r"C\d{14}",
    }
    seen = Counter()
    for s in world.shipstation.shipments.values():
        assert re.fullmatch(patterns[s["carrierCode"]], s["trackingNumber"]), s
        seen[s["carrierCode"]] += 1
    assert set(seen) == set(patterns)


def test_orders_are_numbered_in_time_order(world: SandboxWorld) -> None:
    manual = sorted(
        (o for o in world.shipstation.orders.values() if re.fullmatch(r"1\d{5}", o["orderNumber"])),
        key=lambda o: o["orderNumber"],
    )
    assert [o["orderDate"] for o in manual] == sorted(o["orderDate"] for o in manual)


def test_nav_lines_reference_existing_orders(world: SandboxWorld) -> None:
    nav = world.nav
    assert set(nav.sales_lines) == set(nav.sales_orders)
    for no, lines in nav.sales_lines.items():
        assert lines, f"{no} has lines"
        assert [line["Line_No"] for line in lines] == [10_000 * (n + 1) for n in range(len(lines))]
        for line in lines:
            assert line["Document_No"] == no and line["Document_Type"] == "Order"
            assert line["Type"] == "Item" and line["No"] == line["No"].upper()
            assert 0 <= line["Quantity_Shipped"] <= line["Quantity"]
            assert line["Qty_to_Ship"] == line["Quantity"] - line["Quantity_Shipped"]
            assert "_version" in line
    for header in nav.sales_orders.values():
        assert header["Document_Type"] == "Order"
        assert DATE.match(header["Order_Date"]) and DATE.match(header["Shipment_Date"])
        assert header["External_Document_No"] == header["External_Document_No"].upper()
        assert header["Status"] in ("Open", "Released")
        assert len(header["Sell_to_Customer_Name"]) <= 50
    for posted in nav.posted_shipments.values():
        assert posted["Order_No"] in nav.sales_orders


def test_nav_shipping_agents(world: SandboxWorld) -> None:
    assert world.nav.shipping_agents == {
        "UPS": {"GROUND", "NEXTDAY", "2DAY"},
        "FEDEX": {"GROUND", "EXPRESS", "2DAY"},
        "USPS": {"PRIORITY", "FIRST"},
        "DHL": {"EXPRESS"},
    }


def test_split_children_point_at_their_parent(world: SandboxWorld, manifest: SeedManifest) -> None:
    ss = world.shipstation
    children = [o for o in ss.orders.values() if o["advancedOptions"]["parentId"] is not None]
    assert len(children) == len(manifest.categories["split_child"]) >= 3
    for child in children:
        parent = ss.orders[child["advancedOptions"]["parentId"]]
        assert child["orderNumber"] == parent["orderNumber"] + "-1"
        assert child["advancedOptions"]["mergedOrSplit"] and parent["advancedOptions"]["mergedOrSplit"]
        assert outbound(world, child["orderId"]) and outbound(world, parent["orderId"])
        parent_skus = {i["sku"] for i in parent["items"]}
        assert parent_skus.isdisjoint(i["sku"] for i in child["items"])


# --------------------------------------------------------------------------------------------
# Every category is present, and is what the manifest says it is
# --------------------------------------------------------------------------------------------

MINIMUMS = {
    "label_single": 150,
    "multi_package": 10,
    "void_relabel": 5,
    "void_only": 2,
    "return_label": 3,
    "split": 3,
    "split_child": 3,
    "unmapped_carrier": 2,
    "overlong_tracking": 2,
    "fulfillment": 4,
    "unshipped": 40,
    "recent_label": 5,
    "adjustment_lines": 3,
    "international": 3,
    "special_names": 8,
    "nav_by_external_document_no": 150,
    "nav_by_order_key": 5,
    "nav_by_no": 10,
    "nav_by_name_date": 10,
    "nav_ambiguous_external": 2,
    "nav_ambiguous_name": 2,
    "nav_missing": 8,
    "nav_released": 15,
    "nav_posted_partial": 3,
    "nav_posted_with_tracking": 1,
    "nav_only": 5,
    "marketplace_split_child": 2,
    "order_number_over_no_length": 2,
    "order_key_over_external_length": 30,
}


def test_manifest_counts(manifest: SeedManifest) -> None:
    counts = manifest.counts()
    for category, minimum in MINIMUMS.items():
        assert counts.get(category, 0) >= minimum, (category, counts.get(category))


def test_multi_package(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["multi_package"]:
        labels = outbound(world, order(world, number)["orderId"])
        assert 2 <= len(labels) <= 3
        assert len({s["trackingNumber"] for s in labels}) == len(labels)
        first = datetime.fromisoformat(labels[0]["createDate"][:26])
        last = datetime.fromisoformat(labels[-1]["createDate"][:26])
        assert timedelta(0) < last - first < timedelta(minutes=20)


def test_void_and_relabel(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["void_relabel"]:
        o = order(world, number)
        voided, live = outbound(world, o["orderId"])
        assert voided["voided"] and not live["voided"]
        assert voided["createDate"] <= voided["voidDate"] <= live["createDate"]
        assert voided["trackingNumber"] != live["trackingNumber"]
        assert o["orderStatus"] == "shipped"
    for number in manifest.categories["void_only"]:
        o = order(world, number)
        (voided,) = outbound(world, o["orderId"])
        assert voided["voided"] and o["orderStatus"] == "awaiting_shipment"


def test_some_voids_are_recent(world: SandboxWorld) -> None:
    cutoff = format_pacific(NOW - timedelta(hours=2))
    assert any(s["voidDate"] and s["voidDate"] >= cutoff for s in world.shipstation.shipments.values())


def test_return_labels(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["return_label"]:
        labels = sc.labels_of(world, order(world, number)["orderId"])
        assert [s["isReturnLabel"] for s in labels] == [False, True]
        assert order(world, number)["orderStatus"] == "shipped"


def test_unmapped_and_overlong(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["unmapped_carrier"]:
        assert {s["carrierCode"] for s in sc.labels_of(world, order(world, number)["orderId"])} == {"ontrac"}
    for number in manifest.categories["overlong_tracking"]:
        (label,) = sc.labels_of(world, order(world, number)["orderId"])
        assert len(label["trackingNumber"]) > 30


def test_fulfillments(world: SandboxWorld, manifest: SeedManifest) -> None:
    fulfillments = list(world.shipstation.fulfillments.values())
    assert len(fulfillments) == len(manifest.categories["fulfillment"])
    assert {"FedEx", "UPS", "USPS", "Royal Mail"} <= {f["carrierCode"] for f in fulfillments}
    assert all(f["trackingNumber"] for f in fulfillments)


def test_unshipped_statuses(world: SandboxWorld) -> None:
    statuses = Counter(o["orderStatus"] for o in world.shipstation.orders.values())
    assert {"shipped", "awaiting_shipment", "awaiting_payment", "on_hold", "cancelled"} <= set(statuses)


def test_recent_labels(world: SandboxWorld, manifest: SeedManifest) -> None:
    cutoff = format_pacific(NOW - timedelta(hours=2))
    recent = [s for s in world.shipstation.shipments.values() if s["createDate"] >= cutoff]
    assert len(recent) == len(manifest.categories["recent_label"]) >= 5
    assert all(s["createDate"] <= format_pacific(NOW) for s in world.shipstation.shipments.values())


def test_stores_and_channels(world: SandboxWorld) -> None:
    ss = world.shipstation
    marketplaces = {s["marketplaceName"] for s in ss.stores.values()}
    assert {"ShipStation", "Shopify"} <= marketplaces
    shopify = next(s["storeId"] for s in ss.stores.values() if s["marketplaceName"] == "Shopify")
    shopify_orders = [o for o in ss.orders.values() if o["advancedOptions"]["storeId"] == shopify]
    assert shopify_orders and all(o["orderNumber"].startswith("#") for o in shopify_orders)
    assert all(i["lineItemKey"] for o in shopify_orders for i in o["items"] if not i["adjustment"])


def test_adjustment_lines(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["adjustment_lines"]:
        adjustments = [i for i in order(world, number)["items"] if i["adjustment"]]
        assert adjustments and all(i["unitPrice"] < 0 for i in adjustments)


def test_customer_names(world: SandboxWorld, manifest: SeedManifest) -> None:
    ss_names = {o["shipTo"]["name"] for o in world.shipstation.orders.values()}
    nav_names = {h["Sell_to_Customer_Name"] for h in world.nav.sales_orders.values()}
    assert {"O'Brien & Sons", "Marco D'Angelo", "Zoë Müller", "José Peña", "ACME INC"} <= ss_names
    assert "  Mary   Ellen Carter " in ss_names and "li wei" in ss_names
    assert {"Acme, Inc.", "JOSÉ PEÑA", "Mary Ellen Carter"} <= nav_names
    johns = [o for o in world.shipstation.orders.values() if o["shipTo"]["name"] == "John Smith"]
    assert len(johns) == 2 and johns[0]["orderId"] != johns[1]["orderId"]
    assert pacific_date(johns[0]["orderDate"]) == pacific_date(johns[1]["orderDate"])


# NAV matching categories: each checked against the three documented tiers.


def tier_candidates(world: SandboxWorld, o: dict[str, Any]) -> tuple[list, list, list]:
    nav = world.nav.sales_orders.values()
    ids = {o["orderNumber"].upper(), o["orderKey"].upper(), str(o["orderId"])}
    tier1 = [h for h in nav if h["External_Document_No"] and h["External_Document_No"] in ids]
    base = re.sub(r"-\d+$", "", o["orderNumber"]).upper()
    tier2 = [h for h in nav if h["No"] == base]
    names = {normalize(o["shipTo"]["name"]), normalize(o["billTo"]["name"])}
    day = pacific_date(o["orderDate"])
    tier3 = [h for h in nav if normalize(h["Sell_to_Customer_Name"]) in names and h["Order_Date"] == day]
    return tier1, tier2, tier3


def test_nav_by_external_document_no(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["nav_by_external_document_no"]:
        o = order(world, number)
        (hit,) = nav_by_ext(world, number)
        assert hit["Order_Date"] == pacific_date(o["orderDate"])
        assert [line["No"] for line in world.nav.sales_lines[hit["No"]]] == [
            sku for sku, _q in _goods(o, world)
        ]


def _goods(o: dict[str, Any], world: SandboxWorld) -> list[tuple[str, int]]:
    """The order's items as first placed (split children's items folded back into the parent)."""
    items = [(i["sku"], i["quantity"]) for i in o["items"] if not i["adjustment"]]
    children = [
        c for c in world.shipstation.orders.values() if c["advancedOptions"]["parentId"] == o["orderId"]
    ]
    for child in children:
        items += [(i["sku"], i["quantity"]) for i in child["items"]]
    return items


def test_nav_by_order_key(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["nav_by_order_key"]:
        o = order(world, number)
        assert not nav_by_ext(world, number)
        assert len(nav_by_ext(world, o["orderKey"])) == 1


def test_nav_by_no(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["nav_by_no"]:
        tier1, tier2, _ = tier_candidates(world, order(world, number))
        assert not tier1 and len(tier2) == 1 and tier2[0]["External_Document_No"] == ""


def test_nav_by_name_and_date_only(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["nav_by_name_date"]:
        tier1, tier2, tier3 = tier_candidates(world, order(world, number))
        assert not tier1 and not tier2 and len(tier3) == 1, number


def test_nav_ambiguous(world: SandboxWorld, manifest: SeedManifest) -> None:
    for number in manifest.categories["nav_ambiguous_external"]:
        assert len(nav_by_ext(world, number)) == 2
    for number in manifest.categories["nav_ambiguous_name"]:
        tier1, tier2, tier3 = tier_candidates(world, order(world, number))
        assert not tier1 and not tier2 and len(tier3) == 2


def test_nav_missing(world: SandboxWorld, manifest: SeedManifest) -> None:
    missing = manifest.categories["nav_missing"]
    shipped = [o for o in world.shipstation.orders.values() if o["orderStatus"] == "shipped"]
    assert 0.03 <= len(missing) / len(shipped) <= 0.08
    for number in missing:
        o = order(world, number)
        assert o["orderStatus"] == "shipped"
        assert tier_candidates(world, o) == ([], [], [])


def test_nav_released(world: SandboxWorld, manifest: SeedManifest) -> None:
    released = [h for h in world.nav.sales_orders.values() if h["Status"] == "Released"]
    assert len(released) >= len(manifest.categories["nav_released"])


def test_nav_posted_partial_shipments(world: SandboxWorld, manifest: SeedManifest) -> None:
    nav = world.nav
    posted_by_order = {p["Order_No"]: p for p in nav.posted_shipments.values()}
    assert len(posted_by_order) == len(manifest.categories["nav_posted_partial"])
    for number in manifest.categories["nav_posted_partial"]:
        (header,) = nav_by_ext(world, number)
        posted = posted_by_order[header["No"]]
        lines = nav.sales_lines[header["No"]]
        assert any(line["Quantity_Shipped"] for line in lines), "something was shipped"
        assert not header["Completely_Shipped"], "but not everything"
        assert posted["Package_Tracking_No"] == header["Package_Tracking_No"]
        assert posted["External_Document_No"] == header["External_Document_No"]
    with_tracking = [p for p in nav.posted_shipments.values() if p["Package_Tracking_No"]]
    assert len(with_tracking) == len(manifest.categories["nav_posted_with_tracking"]) >= 1


def test_nav_only_orders(world: SandboxWorld, manifest: SeedManifest) -> None:
    numbers = {o["orderNumber"].upper() for o in world.shipstation.orders.values()}
    for no in manifest.categories["nav_only"]:
        assert world.nav.sales_orders[no]["External_Document_No"] not in numbers


# --------------------------------------------------------------------------------------------
# The bulk world
# --------------------------------------------------------------------------------------------


def test_bulk_world() -> None:
    world = build_bulk_world(3_000, seed=7, now=NOW)
    ss = world.shipstation
    assert len(ss.shipments) == 3_000
    per_order = Counter(s["orderId"] for s in ss.shipments.values())
    assert set(per_order.values()) == {1, 2}
    assert set(per_order) == set(ss.orders)
    ext = Counter(h["External_Document_No"] for h in world.nav.sales_orders.values())
    for o in ss.orders.values():
        assert ext[o["orderNumber"]] == 1
    earliest = format_pacific(NOW - timedelta(hours=168))
    assert all(earliest <= s["createDate"] <= format_pacific(NOW) for s in ss.shipments.values())
    assert snapshot(world) == snapshot(build_bulk_world(3_000, seed=7, now=NOW))


# --------------------------------------------------------------------------------------------
# Scenario helpers
# --------------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 10, 9, 0, 0)


def test_add_customer_order_defaults() -> None:
    world = SandboxWorld()
    o, nav = sc.add_customer_order(
        world, order_number="5001", customer_name="D'Angelo", order_date=T0, items=[("mug-11oz-blk", 2)]
    )
    assert nav is not None
    assert o["orderStatus"] == "awaiting_shipment" and o["shipTo"]["name"] == "D'Angelo"
    assert o["items"][0]["quantity"] == 2 and TIMESTAMP.match(o["orderDate"])
    assert nav["External_Document_No"] == "5001" and nav["No"].startswith("SO-")
    assert nav["Order_Date"] == "2026-03-10" and nav["Sell_to_Customer_Name"] == "D'Angelo"
    (line,) = world.nav.sales_lines[nav["No"]]
    assert (line["No"], line["Quantity"], line["Qty_to_Ship"], line["Line_No"]) == (
        "MUG-11OZ-BLK",
        2,
        2,
        10_000,
    )

    _o2, blank = sc.add_customer_order(world, order_number="5002", external_document_no="", nav_no="5002")
    assert blank is not None and blank["No"] == "5002" and blank["External_Document_No"] == ""
    _o3, none = sc.add_customer_order(world, order_number="5003", in_nav=False)
    assert none is None and len(world.nav.sales_orders) == 2
    with pytest.raises(ValueError):
        sc.add_nav_order(world, "5002", customer_name="x", order_date=T0.date())


def test_buy_label_ships_the_order() -> None:
    world = SandboxWorld()
    o, _ = sc.add_customer_order(world, order_date=T0, items=[("MUG-11OZ-BLK", 1), ("CAP-5P-OLV", 1)])
    label = sc.buy_label(world, o["orderId"], created=T0 + timedelta(hours=2))
    assert label["carrierCode"] == "ups" and label["serviceCode"] == "ups_ground"
    assert re.fullmatch(r"1Z[0-9A-Z]{16}", label["trackingNumber"])
    assert label["shipDate"] == "2026-03-10" and not label["voided"] and label["voidDate"] is None
    assert [i["sku"] for i in label["shipmentItems"]] == ["MUG-11OZ-BLK", "CAP-5P-OLV"]
    assert label["advancedOptions"]["storeId"] == o["advancedOptions"]["storeId"]
    assert (o["orderStatus"], o["shipDate"], o["carrierCode"]) == ("shipped", "2026-03-10", "ups")
    assert o["modifyDate"] == label["createDate"]

    box = sc.buy_label(
        world,
        o["orderId"],
        carrier_code="fedex",
        tracking_number="123456789012",
        items=[("CAP-5P-OLV", 1)],
        created=T0 + timedelta(hours=2, minutes=3),
        ship_date=date(2026, 3, 11),
    )
    assert box["trackingNumber"] == "123456789012" and box["shipDate"] == "2026-03-11"
    assert [i["sku"] for i in box["shipmentItems"]] == ["CAP-5P-OLV"]

    before = o["modifyDate"]
    ret = sc.buy_label(world, o["orderId"], is_return=True, created=T0 + timedelta(days=3))
    assert ret["isReturnLabel"] and o["modifyDate"] == before


def test_void_label() -> None:
    world = SandboxWorld()
    o, _ = sc.add_customer_order(world, order_date=T0)
    label = sc.buy_label(world, o["orderId"], created=T0 + timedelta(hours=1))
    with pytest.raises(ValueError):
        sc.void_label(world, label["shipmentId"], T0)  # before the label existed
    sc.void_label(world, label["shipmentId"], T0 + timedelta(hours=2))
    assert label["voided"] and label["voidDate"] == format_pacific(T0 + timedelta(hours=2))
    assert label["createDate"] == format_pacific(T0 + timedelta(hours=1))
    assert o["orderStatus"] == "awaiting_shipment" and o["modifyDate"] == label["voidDate"]
    with pytest.raises(ValueError):
        sc.void_label(world, label["shipmentId"], T0 + timedelta(hours=3))
    again = sc.buy_label(world, o["orderId"], created=T0 + timedelta(hours=4))
    assert again["trackingNumber"] != label["trackingNumber"] and o["orderStatus"] == "shipped"


def test_void_keeps_order_shipped_while_another_label_lives() -> None:
    world = SandboxWorld()
    o, _ = sc.add_customer_order(world, order_date=T0)
    first = sc.buy_label(world, o["orderId"], created=T0 + timedelta(hours=1))
    sc.buy_label(world, o["orderId"], created=T0 + timedelta(hours=1, minutes=2))
    sc.void_label(world, first["shipmentId"], T0 + timedelta(hours=2))
    assert o["orderStatus"] == "shipped"


def test_mark_shipped() -> None:
    world = SandboxWorld()
    o, _ = sc.add_customer_order(world, order_date=T0)
    f = sc.mark_shipped(
        world,
        o["orderId"],
        carrier="Royal Mail",
        tracking_number="RM123456785GB",
        created=T0 + timedelta(days=1),
    )
    assert f["carrierCode"] == "Royal Mail" and f["trackingNumber"] == "RM123456785GB"
    assert f["shipDate"] == "2026-03-11T00:00:00.0000000" and TIMESTAMP.match(f["createDate"])
    assert f["orderNumber"] == o["orderNumber"] and not f["voided"]
    assert o["orderStatus"] == "shipped" and not world.shipstation.shipments


def test_split_order() -> None:
    world = SandboxWorld()
    o, _ = sc.add_customer_order(
        world, order_number="7000", order_date=T0, items=[("MUG-11OZ-BLK", 2), ("CAP-5P-OLV", 1)]
    )
    early = sc.buy_label(world, o["orderId"], items=[("MUG-11OZ-BLK", 1)], created=T0 + timedelta(hours=1))
    child = sc.split_order(world, o["orderId"], [("MUG-11OZ-BLK", 1)], when=T0 + timedelta(hours=2))
    second = sc.split_order(world, o["orderId"], [("CAP-5P-OLV", 1)], when=T0 + timedelta(hours=3))
    assert (child["orderNumber"], second["orderNumber"]) == ("7000-1", "7000-2")
    assert child["advancedOptions"]["parentId"] == o["orderId"] and child["advancedOptions"]["mergedOrSplit"]
    assert o["advancedOptions"]["mergedOrSplit"] and o["advancedOptions"]["parentId"] is None
    assert [(i["sku"], i["quantity"]) for i in o["items"]] == [("MUG-11OZ-BLK", 1)]
    assert [(i["sku"], i["quantity"]) for i in child["items"]] == [("MUG-11OZ-BLK", 1)]
    assert child["items"][0]["orderItemId"] != o["items"][0]["orderItemId"]
    assert child["orderKey"] != o["orderKey"] and child["shipTo"] == o["shipTo"]
    assert early["shipmentItems"][0]["quantity"] == 1, "earlier labels are not rewritten"
    with pytest.raises(ValueError):
        sc.split_order(world, o["orderId"], [("CAP-5P-OLV", 1)])


def test_touch_order_only_moves_forward() -> None:
    world = SandboxWorld()
    o, _ = sc.add_customer_order(world, order_date=T0)
    sc.touch_order(world, o["orderId"], T0 + timedelta(days=1))
    assert o["modifyDate"] == format_pacific(T0 + timedelta(days=1))
    sc.touch_order(world, o["orderId"], T0)
    assert o["modifyDate"] == format_pacific(T0 + timedelta(days=1))


def test_release_and_update_nav_order_change_the_row_version() -> None:
    world = SandboxWorld()
    header = sc.add_nav_order(
        world, "so-1", customer_name="Acme, Inc.", order_date=T0.date(), lines=[("X", 1)]
    )
    assert header["No"] == "SO-1" and header["Status"] == "Open"
    etag = world.nav.etag(header)
    sc.release_nav_order(world, "SO-1")
    assert header["Status"] == "Released" and world.nav.etag(header) != etag
    sc.reopen_nav_order(world, "SO-1")
    assert header["Status"] == "Open"


def test_post_nav_shipment_copies_the_header() -> None:
    """Sales-Post does TransferFields: the posted shipment gets the order's tracking as it is now."""
    world = SandboxWorld()
    sc.add_nav_order(
        world,
        "SO-9",
        customer_name="Zoë Müller",
        order_date=T0.date(),
        external_document_no="#1001",
        lines=[("MUG-11OZ-BLK", 2), ("CAP-5P-OLV", 1)],
        shipping_agent_code="ups",
        shipping_agent_service_code="ground",
        package_tracking_no="1ZFIRST",
    )
    first = sc.post_nav_shipment(world, "SO-9", quantities={"mug-11oz-blk": 1}, posting_date=T0.date())
    assert first["Order_No"] == "SO-9" and first["No"] == "102001"
    assert (
        first["Package_Tracking_No"],
        first["Shipping_Agent_Code"],
        first["Shipping_Agent_Service_Code"],
    ) == (
        "1ZFIRST",
        "UPS",
        "GROUND",
    )
    assert first["External_Document_No"] == "#1001" and first["Sell_to_Customer_Name"] == "Zoë Müller"
    assert first["Posting_Date"] == "2026-03-10"
    mug, cap = world.nav.sales_lines["SO-9"]
    assert (mug["Quantity_Shipped"], mug["Qty_to_Ship"]) == (1, 1) and cap["Quantity_Shipped"] == 0
    header = world.nav.sales_orders["SO-9"]
    assert header["Package_Tracking_No"] == "1ZFIRST" and not header["Completely_Shipped"]

    # The next partial shipment inherits the old number unless someone changes the order first.
    second = sc.post_nav_shipment(world, "SO-9", posted_no="PS-2")
    assert second["No"] == "PS-2" and second["Package_Tracking_No"] == "1ZFIRST"
    assert header["Completely_Shipped"] and mug["Qty_to_Ship"] == 0 and cap["Quantity_Shipped"] == 1
    with pytest.raises(ValueError):
        sc.post_nav_shipment(world, "SO-9", quantities={"CAP-5P-OLV": 1})


def test_tracking_number_for_is_deterministic_and_shaped() -> None:
    assert sc.tracking_number_for("ups", 42) == sc.tracking_number_for("ups", 42)
    assert sc.tracking_number_for("ups", 42) != sc.tracking_number_for("ups", 43)
    assert len(sc.tracking_number_for("fedex", 1, "fedex_ground_economy")) == 34
    assert len(sc.tracking_number_for("stamps_com", 1)) == 22


# --------------------------------------------------------------------------------------------
# Identifier shapes near NAV's field lengths (No Code[20], External Document No. Code[35])
# --------------------------------------------------------------------------------------------


def _store_of(world: SandboxWorld, o: dict[str, Any]) -> str:
    return world.shipstation.stores[o["advancedOptions"]["storeId"]]["marketplaceName"]


def test_order_key_shapes(world: SandboxWorld) -> None:
    shapes: dict[str, set[str]] = {}
    for o in world.shipstation.orders.values():
        if o["advancedOptions"]["parentId"] is not None:
            continue
        key, store = o["orderKey"], _store_of(world, o)
        if store == "ShipStation":
            shape = "guid36" if re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", key) else "hex32"
            assert shape == "guid36" or re.fullmatch(r"[0-9a-f]{32}", key), key
        elif store == "Amazon":
            assert key == o["orderNumber"] and re.fullmatch(r"11\d-\d{7}-\d{7}", key), key
            shape = "amazon19"
        else:
            assert re.fullmatch(r"\d{13}", key), key
            shape = "shopify13"
        shapes.setdefault(store, set()).add(shape)
    assert shapes == {"ShipStation": {"guid36", "hex32"}, "Amazon": {"amazon19"}, "Shopify": {"shopify13"}}


def test_marketplace_split_children_fit_only_external_document_no(
    world: SandboxWorld, manifest: SeedManifest
) -> None:
    for number in manifest.categories["marketplace_split_child"]:
        child = order(world, number)
        parent = world.shipstation.orders[child["advancedOptions"]["parentId"]]
        assert (
            re.fullmatch(r"11\d-\d{7}-\d{7}", parent["orderNumber"])
            and number == parent["orderNumber"] + "-1"
        )
        assert len(number) == 21 > 20  # NAV's No is Code[20]: a No filter on it is refused
        (hit,) = nav_by_ext(world, number)  # External Document No. is Code[35]: it fits
        assert [line["No"] for line in world.nav.sales_lines[hit["No"]]] == [i["sku"] for i in child["items"]]
        assert not [h for h in world.nav.sales_orders.values() if h["No"] == number]
        assert number in manifest.categories["nav_by_external_document_no"]


def test_length_categories_are_exact(world: SandboxWorld, manifest: SeedManifest) -> None:
    orders = world.shipstation.orders.values()
    assert set(manifest.categories["order_number_over_no_length"]) == {
        o["orderNumber"] for o in orders if len(o["orderNumber"]) > 20
    }
    assert set(manifest.categories["order_key_over_external_length"]) == {
        o["orderNumber"] for o in orders if len(o["orderKey"]) > 35
    }
