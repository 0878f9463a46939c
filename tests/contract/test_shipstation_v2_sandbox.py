"""The ShipStation V2 emulator's own rules, checked over real HTTP with a plain httpx client.

They pin documented V2 behaviour (official spec "ShipStation API v2" 2.0.0 and
docs.shipstation.com), independent of shipnav's client, and that V1 and V2 show one account.
"""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time

import httpx
import pytest

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import PACIFIC, SANDBOX_SHIPSTATION_V2_KEY, SandboxWorld
from tests.support.shipstation_v2_support import (
    Record,
    Shop,
    build_shop,
    pacific,
    v1_client,
    v2_client,
    validate,
)


@pytest.fixture
def shop(empty_world: SandboxWorld) -> Shop:
    return build_shop(empty_world)


@pytest.fixture
def client(sandbox: SandboxServers, empty_world: SandboxWorld) -> Iterator[httpx.Client]:
    with v2_client(sandbox, empty_world) as http:
        yield http


def label_ids(body: Record) -> list[str]:
    return [label["label_id"] for label in body["labels"]]


def se(record: Record, key: str) -> str:
    return f"se-{record[key]}"


def assert_error(response: httpx.Response, status: int, error_type: str, error_code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    validate(body, "error_response_body")
    (error,) = body["errors"]
    assert (error["error_source"], error["error_type"], error["error_code"]) == (
        "ShipStation",
        error_type,
        error_code,
    )
    assert error["message"]


# -- authentication ------------------------------------------------------------------------------


def test_api_key_header_is_required(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    base = sandbox.shipstation_v2_url
    assert_error(httpx.get(f"{base}/v2/labels"), 401, "security", "unauthorized")
    assert_error(httpx.get(f"{base}/v2/labels", headers={"API-Key": "nope"}), 401, "security", "unauthorized")
    # A V1 key+secret pair is another kind of credential: refused, and told why.
    v1 = httpx.get(
        f"{base}/v2/labels", auth=(empty_world.shipstation.api_key, empty_world.shipstation.api_secret)
    )
    assert_error(v1, 401, "security", "unauthorized")
    assert "API-Key" in v1.json()["errors"][0]["message"]
    # Header names are case-insensitive.
    assert httpx.get(f"{base}/v2/labels", headers={"api-key": SANDBOX_SHIPSTATION_V2_KEY}).status_code == 200
    # And the V2 key opens nothing on the V1 server.
    assert httpx.get(f"{sandbox.shipstation_url}/shipments", headers={"API-Key": "x"}).status_code == 401


# -- labels ---------------------------------------------------------------------------------------


def test_label_fields_map_the_v1_shipment(client: httpx.Client, shop: Shop) -> None:
    record = shop.labels["single"]
    label = client.get(f"/v2/labels/{se(record, 'shipmentId')}").json()
    validate(label, "label")
    order = shop.orders["1001"]
    assert label["label_id"] == se(record, "shipmentId")
    assert label["shipment_id"] == se(order, "orderId")
    assert label["external_shipment_id"] == order["orderKey"]
    assert (label["tracking_number"], label["carrier_code"], label["service_code"]) == (
        record["trackingNumber"],
        "ups",
        "ups_ground",
    )
    assert [p["tracking_number"] for p in label["packages"]] == [record["trackingNumber"]]
    # 10:00 PDT is 17:00 UTC; the ship date is Pacific midnight expressed in UTC.
    assert label["created_at"] == "2024-09-17T17:00:00Z"
    assert label["ship_date"] == "2024-09-17T07:00:00Z"
    assert (label["status"], label["voided"], label["voided_at"]) == ("completed", False, None)
    assert label["ship_to"]["name"] == order["shipTo"]["name"]
    assert label["batch_id"] == se(record, "shipmentId")  # bought alone: a batch of its own
    assert label["shipment_cost"] == {"currency": "usd", "amount": record["shipmentCost"]}


def test_label_ship_date_in_winter_is_eight_utc(client: httpx.Client, empty_world: SandboxWorld) -> None:
    order = sc.add_ss_order(empty_world, order_number="W1", created=pacific(5, 9, month=12))
    label = sc.buy_label(empty_world, order["orderId"], created=pacific(5, 9, 30, month=12))
    body = client.get(f"/v2/labels/{se(label, 'shipmentId')}").json()
    assert (body["ship_date"], body["created_at"]) == ("2024-12-05T08:00:00Z", "2024-12-05T17:30:00Z")


def test_unknown_label_is_404_with_an_empty_body(client: httpx.Client, shop: Shop) -> None:
    missing = client.get("/v2/labels/se-1")
    assert missing.status_code == 404 and missing.content == b""
    assert_error(client.get("/v2/labels/123"), 400, "validation", "invalid_field_value")


def test_labels_default_newest_first_25_a_page(client: httpx.Client, empty_world: SandboxWorld) -> None:
    order = sc.add_ss_order(empty_world, order_number="P1", created=pacific(1, 6))
    made = [sc.buy_label(empty_world, order["orderId"], created=pacific(2, 0, n)) for n in range(30)]
    first = client.get("/v2/labels").json()
    validate(first, "list_labels_response_body")
    newest_first = [se(s, "shipmentId") for s in reversed(made)]
    assert label_ids(first) == newest_first[:25]
    assert (first["total"], first["page"], first["pages"]) == (30, 1, 2)
    links = first["links"]
    assert links["prev"] == {} and links["next"]["href"].endswith("/v2/labels?page=2&page_size=25")
    assert links["first"]["href"].endswith("page=1&page_size=25")
    assert links["last"]["href"].endswith("page=2&page_size=25")
    second = client.get(links["next"]["href"]).json()
    assert label_ids(second) == newest_first[25:]
    assert second["links"]["next"] == {} and second["links"]["prev"]["href"].endswith("page=1&page_size=25")
    # Past the last page: an empty page, not an error.
    beyond = client.get("/v2/labels", params={"page": 9}).json()
    assert beyond["labels"] == [] and beyond["total"] == 30
    ascending = client.get("/v2/labels", params={"sort_dir": "asc", "page_size": 100}).json()
    assert label_ids(ascending) == [se(s, "shipmentId") for s in made]
    assert ascending["pages"] == 1 and ascending["links"]["next"] == {}


def test_links_repeat_the_query(client: httpx.Client, shop: Shop) -> None:
    body = client.get(
        "/v2/labels", params={"label_status": "completed", "page_size": 2, "noise": "kept"}
    ).json()
    href = body["links"]["next"]["href"]
    assert "label_status=completed" in href and "noise=kept" in href and href.endswith("page=2&page_size=2")
    assert client.get(href).json()["page"] == 2


def test_page_size_has_no_maximum_unless_configured(
    client: httpx.Client, sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    order = sc.add_ss_order(empty_world, order_number="P1", created=pacific(1, 6))
    for n in range(12):
        sc.buy_label(empty_world, order["orderId"], created=pacific(2, 0, n))
    assert len(client.get("/v2/labels", params={"page_size": 100000}).json()["labels"]) == 12
    with httpx.Client(base_url=sandbox.shipstation_v2_url) as admin:
        assert admin.post("/_sandbox/config", json={"max_page_size": 5}).json()["max_page_size"] == 5
    capped = client.get("/v2/labels", params={"page_size": 100}).json()
    assert (len(capped["labels"]), capped["pages"]) == (5, 3)
    assert capped["links"]["next"]["href"].endswith("page=2&page_size=5")


def test_label_filters(client: httpx.Client, shop: Shop) -> None:
    def ids(**params: str | int) -> set[str]:
        body = client.get("/v2/labels", params={"page_size": 100, **params}).json()
        return set(label_ids(body))

    labels = {name: se(record, "shipmentId") for name, record in shop.labels.items()}
    assert ids(label_status="voided") == {labels["voided"]}
    assert labels["voided"] not in ids(label_status="completed")
    assert ids(label_status="COMPLETED") == ids(label_status="completed")  # enums bind case-insensitively
    assert ids(label_status="processing") == set()
    assert ids(shipment_id=se(shop.orders["1002"], "orderId")) == {labels["voided"], labels["relabel"]}
    assert ids(tracking_number=shop.labels["relabel"]["trackingNumber"]) == {labels["relabel"]}
    assert ids(batch_id="se-555") == {labels["batch_a"], labels["batch_b"]}
    assert ids(carrier_code_is_not_a_filter="usps") == set(labels.values())
    usps = client.get(f"/v2/labels/{labels['relabel']}").json()["carrier_id"]
    assert ids(carrier_id=usps) == {labels["relabel"]}
    assert ids(service_code="usps_priority_mail") == {labels["relabel"]}
    assert ids(warehouse_id="se-88001") == set(labels.values())
    assert ids(warehouse_id="se-1") == set()
    # Inclusive bounds, in UTC: 10:00 PDT is 17:00Z.
    assert ids(created_at_start="2024-09-17T17:00:00Z", created_at_end="2024-09-17T17:00:00Z") == {
        labels["single"]
    }
    assert ids(created_at_start="2024-09-17T10:00:00-07:00", created_at_end="2024-09-17T11:00:00-07:00") == {
        labels["single"],
        labels["voided"],
    }


def test_voided_labels_sort_by_modified_at(
    client: httpx.Client, shop: Shop, empty_world: SandboxWorld
) -> None:
    sc.void_label(empty_world, shop.labels["single"]["shipmentId"], pacific(17, 18))
    body = client.get("/v2/labels", params={"label_status": "voided", "sort_by": "modified_at"}).json()
    assert label_ids(body) == [
        se(shop.labels["single"], "shipmentId"),
        se(shop.labels["voided"], "shipmentId"),
    ]
    voided = body["labels"][0]
    assert (voided["status"], voided["voided"], voided["voided_at"]) == (
        "voided",
        True,
        "2024-09-18T01:00:00Z",
    )
    # Sorted on creation instead, the older label (10:00) comes last, newest first.
    by_creation = client.get("/v2/labels", params={"label_status": "voided"}).json()
    assert label_ids(by_creation) == [
        se(shop.labels["voided"], "shipmentId"),
        se(shop.labels["single"], "shipmentId"),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"label_status": "lost"},
        {"created_at_start": "yesterday"},
        {"created_at_end": "2024-02-30T00:00:00Z"},
        {"page": "0"},
        {"page": "first"},
        {"page_size": "0"},
        {"page_size": "1.5"},
        {"sort_dir": "sideways"},
        {"sort_by": "tracking_number"},
        {"shipment_id": "12345"},
        {"batch_id": "batch 7"},
    ],
)
def test_malformed_values_of_known_params_get_400(client: httpx.Client, params: dict[str, str]) -> None:
    assert_error(client.get("/v2/labels", params=params), 400, "validation", "invalid_field_value")


def test_unknown_params_are_ignored(client: httpx.Client, shop: Shop) -> None:
    everything = client.get("/v2/labels", params={"page_size": 100}).json()["total"]
    noisy = client.get("/v2/labels", params={"page_size": 100, "void": "False", "createDateStart": "x"})
    assert noisy.status_code == 200 and noisy.json()["total"] == everything
    # Empty values mean "not given".
    assert (
        client.get("/v2/labels", params={"label_status": "", "created_at_start": ""}).json()["total"]
        == everything
    )
    assert client.get("/v2/shipments", params={"orderStatus": "shipped"}).status_code == 200


# -- void -----------------------------------------------------------------------------------------


def test_void_label(client: httpx.Client, shop: Shop, empty_world: SandboxWorld) -> None:
    label = se(shop.labels["single"], "shipmentId")
    answer = client.put(f"/v2/labels/{label}/void")
    assert answer.status_code == 200
    validate(answer.json(), "void_label_response_body")
    assert answer.json()["approved"] is True
    voided = client.get(f"/v2/labels/{label}").json()
    assert (voided["status"], voided["voided"]) == ("voided", True)
    assert voided["voided_at"].endswith("Z")
    # The same change as a V1 void: the V1 record is voided and the order is open again.
    assert empty_world.shipstation.shipments[shop.labels["single"]["shipmentId"]]["voided"] is True
    shipment = client.get(f"/v2/shipments/{se(shop.orders['1001'], 'orderId')}").json()
    assert shipment["shipment_status"] == "pending"
    again = client.put(f"/v2/labels/{label}/void").json()
    validate(again, "void_label_response_body")
    assert (again["approved"], again["reason_code"]) == (False, "label_already_voided")
    assert_error(client.put("/v2/labels/se-1/void"), 404, "validation", "invalid_identifier")
    # The spec's void is a PUT.
    assert client.post(f"/v2/labels/{label}/void").status_code == 405


# -- shipments ------------------------------------------------------------------------------------


def test_shipment_fields_map_the_v1_order(client: httpx.Client, shop: Shop) -> None:
    order = shop.orders["1002"]
    body = client.get(f"/v2/shipments/{se(order, 'orderId')}").json()
    validate(body, "shipment")
    assert body["shipment_number"] == "1002"
    assert body["external_shipment_id"] == order["orderKey"]
    assert body["store_id"] == f"se-{shop.stores['web']}"
    assert body["shipment_status"] == "label_purchased"
    assert body["created_at"] == "2024-09-17T17:30:00Z"
    assert body["modified_at"] == "2024-09-17T19:30:00Z"  # the relabel at 12:30 PDT
    assert body["ship_to"]["name"] == order["shipTo"]["name"]
    assert [i["sku"] for i in body["items"]] == ["MUG-11OZ-BLK", "TEE-CRW-M-NVY"]
    by_key = client.get(f"/v2/shipments/external_shipment_id/{order['orderKey']}").json()
    assert by_key == body
    assert_error(client.get("/v2/shipments/se-1"), 404, "validation", "invalid_identifier")
    assert_error(
        client.get("/v2/shipments/external_shipment_id/none"), 404, "validation", "invalid_identifier"
    )


def test_split_shipments_share_the_shipment_number(client: httpx.Client, shop: Shop) -> None:
    body = client.get("/v2/shipments", params={"shipment_number": "1007"}).json()
    assert body["total"] == 2
    assert {s["shipment_number"] for s in body["shipments"]} == {"1007"}
    assert {s["shipment_id"] for s in body["shipments"]} == {
        se(shop.orders["1007"], "orderId"),
        se(shop.orders["1007-1"], "orderId"),
    }


def test_shipment_filters(client: httpx.Client, shop: Shop) -> None:
    def numbers(**params: str | int) -> list[str]:
        body = client.get("/v2/shipments", params={"page_size": 100, **params}).json()
        validate(body, "list_shipments_response_body")
        return [s["shipment_number"] for s in body["shipments"]]

    assert numbers(shipment_status="pending") == ["1004"]
    assert numbers(store_id=f"se-{shop.stores['market']}") == ["1006", "1005"]
    assert numbers(external_shipment_id=shop.orders["1003"]["orderKey"]) == ["1003"]
    assert numbers(modified_at_start="2024-09-17T22:00:00Z", sort_dir="asc") == [
        "1005",
        "1006",
        "1007",
        "1007",
    ]
    assert numbers(created_at_end="2024-09-17T16:30:00Z") == ["1001"]  # created 09:30 PDT, inclusive
    assert numbers(sort_by="created_at", sort_dir="asc")[:3] == ["1001", "1002", "1003"]
    # batch_id silently ignores the status and date filters.
    assert numbers(batch_id="se-555", shipment_status="pending", created_at_end="2000-01-01T00:00:00Z") == [
        "1006",
        "1005",
    ]
    assert numbers(batch_id="se-555", shipment_number="1005") == ["1005"]
    assert numbers(pickup_id="pik-1") == []
    assert numbers(ship_to_name="customer 100") == [f"100{n}" for n in (7, 7, 6, 5, 4, 3, 2, 1)]
    assert numbers(ship_to_name="Customer 1004") == ["1004"]
    assert numbers(item_keyword="crew tee") == numbers()  # every order has the tee (by name)
    assert numbers(item_keyword="BOTTLE") == []
    # Paid when placed: 09:00 PDT for order 1001 (16:00Z).
    assert numbers(payment_date_start="2024-09-17T16:00:00Z", payment_date_end="2024-09-17T16:00:00Z") == [
        "1001"
    ]
    empty = client.get("/v2/shipments", params={"shipment_number": "nope"}).json()
    validate(empty, "list_shipments_response_body")
    assert (empty["total"], empty["pages"]) == (0, 1)  # the spec's pages minimum for shipments


# -- fulfillments ---------------------------------------------------------------------------------


def test_fulfillments_filter_on_create_date_not_created_at(client: httpx.Client, shop: Shop) -> None:
    marked = shop.fulfillments["marked"]
    body = client.get(
        "/v2/fulfillments",
        params={"create_date_start": "2024-09-17T20:00:00Z", "create_date_end": "2024-09-17T20:00:00Z"},
    ).json()
    validate(body, "list_fulfillments_response_body")
    (fulfillment,) = body["fulfillments"]
    assert fulfillment["fulfillment_id"] == se(marked, "fulfillmentId")
    assert fulfillment["shipment_id"] == se(shop.orders["1003"], "orderId")
    assert fulfillment["shipment_number"] == "1003"
    assert fulfillment["tracking_number"] == "794600000001"
    assert fulfillment["created_at"] == "2024-09-17T20:00:00Z"
    assert fulfillment["ship_date"] == "2024-09-16T07:00:00Z"
    assert (fulfillment["voided"], fulfillment["voided_at"]) == (False, None)
    assert fulfillment["fulfillment_carrier_friendly_name"] == "FedEx"
    assert fulfillment["fulfillment_provider_code"] == "external"
    outside = {"create_date_start": "2024-09-17T20:00:01Z"}
    assert client.get("/v2/fulfillments", params=outside).json()["total"] == 0
    # created_at_* is not a fulfillment filter: ignored, so everything comes back.
    ignored = client.get("/v2/fulfillments", params={"created_at_start": "2030-01-01T00:00:00Z"}).json()
    assert ignored["total"] == 1


def test_fulfillment_filters(client: httpx.Client, shop: Shop) -> None:
    def total(**params: str | int) -> int:
        return client.get("/v2/fulfillments", params=params).json()["total"]

    marked = shop.fulfillments["marked"]
    assert total(fulfillment_id=se(marked, "fulfillmentId")) == 1
    assert total(fulfillment_id="se-1") == 0
    assert total(shipment_id=se(shop.orders["1003"], "orderId"), shipment_number="1003") == 1
    assert total(tracking_number="794600000001") == 1
    assert total(ship_date_start="2024-09-16T07:00:00Z", ship_date_end="2024-09-16T07:00:00Z") == 1
    assert total(ship_date_start="2024-09-17T00:00:00Z") == 0
    assert total(order_source_id=f"se-{shop.stores['web']}") == 1
    assert total(order_source_id=f"se-{shop.stores['market']}") == 0
    assert total(ship_to_name="customer 1003", ship_to_country_code="us") == 1
    assert total(fulfillment_provider_code="external") == 1
    assert total(fulfillment_provider_code="amazon_fba") == 0
    assert total(batch_id="se-555") == 0


def test_create_fulfillments_marks_shipped_with_partial_success(
    client: httpx.Client, shop: Shop, empty_world: SandboxWorld
) -> None:
    waiting = shop.orders["1004"]
    answer = client.post(
        "/v2/fulfillments",
        json={
            "fulfillments": [
                {
                    "shipment_id": se(waiting, "orderId"),
                    "tracking_number": "1Z999AA10123456784",
                    "carrier_code": "ups",
                    "ship_date": "2024-09-18T16:00:00Z",
                    "notify_order_source": True,
                },
                {"shipment_id": "se-1", "tracking_number": "X", "carrier_code": "ups"},
                {
                    "shipment_id": se(shop.orders["1001"], "orderId"),
                    "tracking_number": "Y",
                    "carrier_code": "ups",
                },
            ]
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    validate(body, "create_fulfillments_response_body")
    assert body["has_errors"] is True
    ok, missing, shipped = body["fulfillments"]
    assert (ok["shipment_number"], ok["error_message"]) == ("1004", None)
    assert missing["error_message"] and shipped["error_message"]
    made = client.get("/v2/fulfillments", params={"shipment_id": se(waiting, "orderId")}).json()[
        "fulfillments"
    ]
    assert [(f["tracking_number"], f["fulfillment_carrier_friendly_name"]) for f in made] == [
        ("1Z999AA10123456784", "UPS")
    ]
    assert made[0]["ship_date"] == "2024-09-18T07:00:00Z" and made[0]["order_source_notified"] is True
    assert (
        client.get(f"/v2/shipments/{se(waiting, 'orderId')}").json()["shipment_status"] == "label_purchased"
    )
    # The same records V1 shows for a mark-as-shipped.
    (v1_record,) = [
        f for f in empty_world.shipstation.fulfillments.values() if f["orderId"] == waiting["orderId"]
    ]
    assert (v1_record["carrierCode"], v1_record["shipDate"]) == ("UPS", "2024-09-18T00:00:00.0000000")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"fulfillments": []},
        {"fulfillments": [{"shipment_id": "se-1", "carrier_code": "ups"}]},
        {"fulfillments": [{"shipment_id": "se-1", "tracking_number": "1", "carrier_code": 5}]},
        {
            "fulfillments": [
                {"shipment_id": "se-1", "tracking_number": "1", "carrier_code": "ups", "ship_date": "x"}
            ]
        },
    ],
)
def test_create_fulfillments_refuses_malformed_requests(client: httpx.Client, body: Record) -> None:
    response = client.post("/v2/fulfillments", json=body)
    assert response.status_code == 400
    validate(response.json(), "error_response_body")


# -- one account, two APIs ------------------------------------------------------------------------


def test_v1_and_v2_show_the_same_seeded_shop(sandbox: SandboxServers, seeded_world: SandboxWorld) -> None:
    with v1_client(sandbox, seeded_world) as v1, v2_client(sandbox, seeded_world) as v2:
        shipments = v1.get("/shipments", params={"pageSize": 500}).json()["shipments"]
        labels = v2.get("/v2/labels", params={"page_size": 1000}).json()["labels"]
        orders = v1.get("/orders", params={"pageSize": 500}).json()["orders"]
        v2_shipments = v2.get("/v2/shipments", params={"page_size": 1000}).json()["shipments"]
        fulfillments = v1.get("/fulfillments", params={"pageSize": 500}).json()["fulfillments"]
        v2_fulfillments = v2.get("/v2/fulfillments", params={"page_size": 1000}).json()["fulfillments"]
    assert len(labels) == len(shipments) > 0
    by_id = {label["label_id"]: label for label in labels}
    for shipment in shipments:
        label = by_id[se(shipment, "shipmentId")]
        assert label["shipment_id"] == se(shipment, "orderId")
        assert label["tracking_number"] == shipment["trackingNumber"]
        assert label["external_shipment_id"] == shipment["orderKey"]
        assert label["voided"] is shipment["voided"]
        assert label["is_return_label"] is shipment["isReturnLabel"]
        assert label["carrier_code"] == shipment["carrierCode"]
    by_order = {o["orderId"]: o for o in orders}
    assert {s["shipment_id"] for s in v2_shipments} == {f"se-{n}" for n in by_order}
    splits = 0
    for shipment in v2_shipments:
        order = by_order[int(shipment["shipment_id"].removeprefix("se-"))]
        parent = order["advancedOptions"]["parentId"]
        # Split children (V1 "<number>-N") share their parent's number in V2.
        expected = by_order[parent]["orderNumber"] if parent else order["orderNumber"]
        assert shipment["shipment_number"] == expected
        assert shipment["external_shipment_id"] == order["orderKey"]
        splits += parent is not None
    assert splits > 0
    assert {f["fulfillment_id"] for f in v2_fulfillments} == {se(f, "fulfillmentId") for f in fulfillments}


def test_a_v1_void_shows_in_v2_and_a_v2_void_in_v1(
    sandbox: SandboxServers, empty_world: SandboxWorld, shop: Shop
) -> None:
    single, batch = shop.labels["single"]["shipmentId"], shop.labels["batch_a"]["shipmentId"]
    with v1_client(sandbox, empty_world) as v1, v2_client(sandbox, empty_world) as v2:
        assert v1.post("/shipments/voidlabel", json={"shipmentId": single}).json()["approved"] is True
        assert v2.get(f"/v2/labels/se-{single}").json()["status"] == "voided"
        assert v2.put(f"/v2/labels/se-{batch}/void").json()["approved"] is True
        (record,) = v1.get("/shipments", params={"orderNumber": "1005"}).json()["shipments"]
        assert record["voided"] is True and record["voidDate"]


# -- rate limit and faults --------------------------------------------------------------------------


def test_rate_limit_is_200_a_minute_with_retry_after(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    v2 = empty_world.shipstation.v2
    assert (v2.rate_limit_per_minute, v2.rate_window_seconds) == (200, 60.0)
    v2.rate_limit_per_minute, v2.rate_window_seconds = 3, 1.0
    with v2_client(sandbox, empty_world) as http:
        for _ in range(3):
            ok = http.get("/v2/labels")
            assert ok.status_code == 200 and "Retry-After" not in ok.headers
        over = http.get("/v2/shipments")
        assert_error(over, 429, "system", "rate_limit_exceeded")
        retry_after = int(over.headers["Retry-After"])
        assert 1 <= retry_after <= 1
        # Bad keys do not spend the account's budget.
        assert (
            httpx.get(f"{sandbox.shipstation_v2_url}/v2/labels", headers={"API-Key": "x"}).status_code == 401
        )
        threading.Event().wait(retry_after + 0.05)
        assert http.get("/v2/labels").status_code == 200
    # V1 keeps its own budget.
    with v1_client(sandbox, empty_world) as v1:
        assert v1.get("/stores").status_code == 200


def test_faults(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    faults = empty_world.shipstation.v2.faults
    with v2_client(sandbox, empty_world) as http:
        faults.fail_next = 1
        failed = http.get("/v2/labels")
        assert failed.status_code == 500 and failed.content == b""  # the spec's ServerError body
        faults.fail_next, faults.fail_status, faults.fail_paths = 1, 503, ("/v2/fulfillments",)
        assert http.get("/v2/labels").status_code == 200
        gateway = http.get("/v2/fulfillments")
        assert gateway.status_code == 503 and gateway.headers["content-type"].startswith("text/html")
        faults.throttle_next, faults.retry_after_seconds = 1, 4
        throttled = http.get("/v2/labels")
        assert_error(throttled, 429, "system", "rate_limit_exceeded")
        assert throttled.headers["Retry-After"] == "4"
        faults.drop_next = 1
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/v2/labels")
        assert http.get("/v2/labels").status_code == 200
    statuses = [entry[3] for entry in empty_world.shipstation.v2.log.entries]
    assert statuses == [500, 200, 503, 429, 0, 200]
    assert empty_world.shipstation.log.entries == []  # V1 saw none of it


def test_latency_lets_requests_overlap(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.v2.faults.latency_ms = 300
    inside = threading.Barrier(3, timeout=5)
    statuses: list[int] = []

    def call() -> None:
        with v2_client(sandbox, empty_world) as http:
            inside.wait()
            statuses.append(http.get("/v2/labels").status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200, 200, 200]
    assert empty_world.shipstation.v2.max_in_flight == 3


def test_admin_endpoints(sandbox: SandboxServers, empty_world: SandboxWorld, shop: Shop) -> None:
    with httpx.Client(base_url=sandbox.shipstation_v2_url) as admin, v2_client(sandbox, empty_world) as http:
        assert (
            admin.post("/_sandbox/faults", json={"fail_next": 1, "fail_paths": "/v2/shipments"}).status_code
            == 200
        )
        assert http.get("/v2/shipments").status_code == 500
        assert http.get("/v2/labels").status_code == 200
        stats = admin.get("/_sandbox/stats").json()
        assert stats["by_endpoint"] == {"GET /v2/labels": 1, "GET /v2/shipments": 1}
        assert stats["records"]["labels"] == len(shop.labels)
        assert stats["rate_limit"] == {"limit": 200, "window_seconds": 60.0}
        assert admin.post("/_sandbox/faults", json={"explode": 1}).status_code == 400
        assert admin.post("/_sandbox/config", json={"rate_limit_per_minute": "many"}).status_code == 400
        config = admin.post("/_sandbox/config", json={"rate_limit_per_minute": 20, "max_page_size": None})
        assert config.json() == {
            "rate_limit_per_minute": 20,
            "rate_window_seconds": 60.0,
            "max_page_size": None,
        }
        assert admin.post("/_sandbox/reset").status_code == 200
        assert admin.get("/_sandbox/stats").json()["requests"] == 0


def test_unknown_routes_answer_the_v2_error_body(client: httpx.Client) -> None:
    assert_error(client.get("/v2/orders"), 404, "validation", "invalid_identifier")
    assert client.delete("/v2/labels").status_code == 405
    assert client.get("/shipments").status_code == 404  # V1 paths live on the V1 server


# -- environment -----------------------------------------------------------------------------------


def test_env_for_v1_is_unchanged_and_v2_has_its_own(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    v1 = sandbox.env()
    assert "SHIPSTATION_API_VERSION" not in v1
    assert (v1["SHIPSTATION_API_URL"], v1["SHIPSTATION_API_KEY"], v1["SHIPSTATION_API_SECRET"]) == (
        sandbox.shipstation_url,
        empty_world.shipstation.api_key,
        empty_world.shipstation.api_secret,
    )
    v2 = sandbox.env(shipstation_api_version="v2")
    assert v2["SHIPSTATION_API_VERSION"] == "v2"
    assert v2["SHIPSTATION_API_URL"] == sandbox.shipstation_v2_url and not v2["SHIPSTATION_API_URL"].endswith(
        "/v2"
    )
    assert v2["SHIPSTATION_API_KEY"] == SANDBOX_SHIPSTATION_V2_KEY
    assert "SHIPSTATION_API_SECRET" not in v2
    assert {k: v for k, v in v2.items() if k.startswith("NAV_")} == {
        k: v for k, v in v1.items() if k.startswith("NAV_")
    }
    with pytest.raises(ValueError):
        sandbox.env(shipstation_api_version="v3")
    assert httpx.get(
        f"{v2['SHIPSTATION_API_URL']}/v2/labels", headers={"API-Key": v2["SHIPSTATION_API_KEY"]}
    ).is_success


def test_fulfillment_ship_date_defaults_to_today_in_pacific(
    client: httpx.Client, empty_world: SandboxWorld
) -> None:
    order = sc.add_ss_order(empty_world, order_number="D1", created=pacific(3, 9))
    item = {"shipment_id": se(order, "orderId"), "tracking_number": "T1", "carrier_code": "dhl_express"}
    assert client.post("/v2/fulfillments", json={"fulfillments": [item]}).json()["has_errors"] is False
    (made,) = client.get("/v2/fulfillments").json()["fulfillments"]
    created = datetime.fromisoformat(made["created_at"]).astimezone(PACIFIC)
    midnight = datetime.combine(created.date(), time(), PACIFIC).astimezone(UTC)
    assert made["ship_date"] == midnight.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert made["fulfillment_carrier_friendly_name"] == "DHL Express"
