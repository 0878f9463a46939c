"""The ShipStation V1 emulator's own rules, checked over real HTTP with a plain httpx client.

These pin the documented V1 behaviour (docs.shipstation.com/apis/shipstation-v1 and the historic
V1 API reference), independent of shipnav's client.
The record builders here are also used by tests/contract/test_shipstation_client.py.
"""

import base64
import threading
from typing import Any

import httpx
import pytest

from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld

Record = dict[str, Any]


# -- record builders: the exact JSON ShipStation returns ---------------------------------------


def address(name: str = "Ana Núñez") -> Record:
    return {
        "name": name,
        "company": None,
        "street1": "1 Main St",
        "street2": "",
        "street3": None,
        "city": "Austin",
        "state": "TX",
        "postalCode": "78701",
        "country": "US",
        "phone": None,
        "residential": True,
        "addressVerified": "Address validated successfully",
    }


def item(sku: str = "SKU-1", quantity: int = 1) -> Record:
    return {
        "orderItemId": 5001,
        "lineItemKey": None,
        "sku": sku,
        "name": f"Widget {sku}",
        "imageUrl": None,
        "weight": {"value": 8.0, "units": "ounces", "WeightUnits": 1},
        "quantity": quantity,
        "unitPrice": 9.99,
        "taxAmount": None,
        "shippingAmount": None,
        "warehouseLocation": None,
        "options": [],
        "productId": 77,
        "fulfillmentSku": None,
        "adjustment": False,
        "upc": None,
        "createDate": "2024-09-17T10:00:01.37",
        "modifyDate": "2024-09-17T10:00:01.37",
    }


def shipment_record(
    shipment_id: int,
    create_date: str,
    *,
    ship_date: str | None = None,
    void_date: str | None = None,
    order_id: int | None = None,
    store_id: int = 1,
    recipient: str = "Ana Núñez",
    **extra: Any,
) -> Record:
    order = order_id if order_id is not None else 10_000 + shipment_id
    return {
        "shipmentId": shipment_id,
        "orderId": order,
        "orderKey": f"key-{order}",
        "userId": "3a3e2b0c-4a44-4d2b-9a8d-000000000001",
        "customerEmail": None,
        "orderNumber": f"SO-{order}",
        "createDate": create_date,
        "shipDate": ship_date or create_date[:10],
        "shipmentCost": 7.45,
        "insuranceCost": 0.0,
        "trackingNumber": f"1Z999AA1{shipment_id:010d}",
        "isReturnLabel": False,
        "batchNumber": None,
        "carrierCode": "ups",
        "serviceCode": "ups_ground",
        "packageCode": "package",
        "confirmation": None,
        "warehouseId": 1,
        "voided": void_date is not None,
        "voidDate": void_date,
        "marketplaceNotified": False,
        "notifyErrorMessage": None,
        "shipTo": address(recipient),
        "weight": {"value": 16.0, "units": "ounces", "WeightUnits": 1},
        "dimensions": None,
        "insuranceOptions": {"provider": None, "insureShipment": False, "insuredValue": 0.0},
        "advancedOptions": {
            "billToParty": None,
            "billToAccount": None,
            "billToPostalCode": None,
            "billToCountryCode": None,
            "storeId": store_id,
        },
        "shipmentItems": [item()],
        "labelData": None,
        "formData": None,
        **extra,
    }


def order_record(
    order_id: int,
    *,
    number: str | None = None,
    status: str = "awaiting_shipment",
    modify_date: str = "2024-09-17T09:00:00.0000000",
    order_date: str = "2024-09-16T18:00:00.0000000",
    store_id: int = 1,
) -> Record:
    return {
        "orderId": order_id,
        "orderNumber": number or f"SO-{order_id}",
        "orderKey": f"key-{order_id}",
        "orderDate": order_date,
        "createDate": "2024-09-16T18:00:05.1230000",
        "modifyDate": modify_date,
        "paymentDate": order_date,
        "shipByDate": None,
        "orderStatus": status,
        "customerId": 42,
        "customerUsername": "ana@example.com",
        "customerEmail": "ana@example.com",
        "billTo": address(),
        "shipTo": address(),
        "items": [item()],
        "orderTotal": 9.99,
        "amountPaid": 9.99,
        "taxAmount": 0.0,
        "shippingAmount": 0.0,
        "customerNotes": None,
        "internalNotes": None,
        "gift": False,
        "giftMessage": None,
        "paymentMethod": None,
        "requestedShippingService": None,
        "carrierCode": None,
        "serviceCode": None,
        "packageCode": None,
        "confirmation": "none",
        "shipDate": None,
        "holdUntilDate": None,
        "weight": {"value": 8.0, "units": "ounces", "WeightUnits": 1},
        "dimensions": None,
        "insuranceOptions": {"provider": None, "insureShipment": False, "insuredValue": 0.0},
        "internationalOptions": {"contents": None, "customsItems": None, "nonDelivery": None},
        "advancedOptions": {"storeId": store_id, "mergedOrSplit": False, "mergedIds": [], "parentId": None},
        "tagIds": None,
        "userId": None,
        "externallyFulfilled": False,
        "externallyFulfilledBy": None,
    }


def fulfillment_record(fulfillment_id: int, create_date: str, *, order_id: int = 20_001) -> Record:
    return {
        "fulfillmentId": fulfillment_id,
        "orderId": order_id,
        "orderNumber": f"SO-{order_id}",
        "userId": "3a3e2b0c-4a44-4d2b-9a8d-000000000001",
        "customerEmail": None,
        "trackingNumber": f"9400{fulfillment_id:018d}",
        "createDate": create_date,
        "shipDate": create_date[:10] + "T00:00:00.0000000",
        "voidDate": None,
        "deliveryDate": None,
        "carrierCode": "USPS",
        "sellerFillProviderId": None,
        "sellerFillProviderName": None,
        "fulfillmentProviderCode": None,
        "fulfillmentServiceCode": None,
        "fulfillmentFee": 0.0,
        "voidRequested": False,
        "voided": False,
        "marketplaceNotified": False,
        "notifyErrorMessage": None,
        "shipTo": address(),
    }


def add_shipments(world: SandboxWorld, *records: Record) -> None:
    for record in records:
        world.shipstation.shipments[record["shipmentId"]] = record


# -- HTTP helpers -------------------------------------------------------------------------------


def api(sandbox: SandboxServers, world: SandboxWorld, **kwargs: Any) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.shipstation_url,
        auth=(world.shipstation.api_key, world.shipstation.api_secret),
        timeout=10,
        **kwargs,
    )


def ids(body: Record, collection: str = "shipments", key: str = "shipmentId") -> list[int]:
    return [r[key] for r in body[collection]]


@pytest.fixture
def client(sandbox: SandboxServers, empty_world: SandboxWorld) -> httpx.Client:
    with api(sandbox, empty_world) as http:
        yield http


# -- auth -------------------------------------------------------------------------------------


def test_missing_or_wrong_credentials_get_401_without_echo(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    with httpx.Client(base_url=sandbox.shipstation_url) as anonymous:
        response = anonymous.get("/shipments")
    assert response.status_code == 401
    assert "message" in response.json()

    wrong_secret = "wrong-secret-value"
    with httpx.Client(base_url=sandbox.shipstation_url, auth=("sandbox-api-key", wrong_secret)) as bad:
        response = bad.get("/shipments")
    assert response.status_code == 401
    assert wrong_secret not in response.text
    assert empty_world.shipstation.api_secret not in response.text

    garbage = {"Authorization": "Basic !!!not-base64"}
    with httpx.Client(base_url=sandbox.shipstation_url, headers=garbage) as broken:
        assert broken.get("/orders").status_code == 401
    assert [e[3] for e in empty_world.shipstation.log.entries] == [401, 401, 401]


def test_valid_credentials_get_the_envelope(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(empty_world, shipment_record(1, "2024-09-17T10:51:14.5030000"))
    response = client.get("/shipments")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1 and body["page"] == 1 and body["pages"] == 1
    assert body["shipments"][0]["createDate"] == "2024-09-17T10:51:14.5030000"
    assert body["shipments"][0]["shipDate"] == "2024-09-17"


# -- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"createDateStart": "yesterday"},
        {"voidDateEnd": "2024-02-30 10:00:00"},
        {"shipDateStart": "17/09/2024"},
        {"pageSize": "lots"},
        {"sortBy": "Carrier"},
        {"sortDir": "sideways"},
        {"page": "0"},
    ],
)
def test_malformed_params_get_400(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/shipments", params=params)
    assert response.status_code == 400
    assert response.json()["message"]


def test_unknown_params_are_ignored(client: httpx.Client, empty_world: SandboxWorld) -> None:
    """ASP.NET binds only the parameters an action declares; the rest never reach it."""
    add_shipments(empty_world, shipment_record(1, "2024-09-17T10:00:00.0000000"))
    # The Singer taps send void=False with every /shipments request.
    tap = client.get("/shipments", params={"void": "False", "includeShipmentItems": "true"})
    assert tap.status_code == 200 and ids(tap.json()) == [1]
    assert ids(client.get("/shipments", params={"noSuchFilter": "x", "orderId": "10001"}).json()) == [1]
    assert client.get("/orders", params={"whatever": "1"}).status_code == 200
    assert client.get("/fulfillments", params={"void": "False"}).status_code == 200
    assert client.get("/stores", params={"noSuchFilter": "1"}).status_code == 200


def test_param_names_are_case_insensitive_and_empty_means_absent(
    client: httpx.Client, empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-09-17T10:00:00.0000000", store_id=7),
        shipment_record(2, "2024-09-17T11:00:00.0000000", store_id=8),
    )
    # SHIP_NOTIFY resource_urls use "storeID"; ASP.NET binds parameter names case-insensitively.
    assert ids(client.get("/shipments", params={"storeID": "7"}).json()) == [1]
    assert ids(client.get("/shipments", params={"createDateStart": ""}).json()) == [1, 2]


def test_page_size_is_clamped_to_500_and_defaults_to_100(
    client: httpx.Client, empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        *(shipment_record(i, f"2024-09-17T10:{i // 60:02d}:{i % 60:02d}.0000000") for i in range(1, 601)),
    )
    body = client.get("/shipments", params={"pageSize": "1000"}).json()
    assert len(body["shipments"]) == 500
    assert (body["total"], body["pages"]) == (600, 2)
    assert len(client.get("/shipments").json()["shipments"]) == 100
    last = client.get("/shipments", params={"pageSize": "500", "page": "2"}).json()
    assert len(last["shipments"]) == 100 and last["page"] == 2
    beyond = client.get("/shipments", params={"pageSize": "500", "page": "3"}).json()
    assert beyond["shipments"] == [] and beyond["total"] == 600


def test_zero_pages_quirk(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(empty_world, shipment_record(1, "2024-09-17T10:00:00.0000000"))
    empty_world.shipstation.report_zero_pages = True
    body = client.get("/shipments").json()
    assert (body["total"], body["pages"], len(body["shipments"])) == (1, 0, 1)


def test_default_sort_is_create_date_ascending_and_sort_options(
    client: httpx.Client, empty_world: SandboxWorld
) -> None:
    add_shipments(
        empty_world,
        shipment_record(3, "2024-09-17T09:00:00.0000000", ship_date="2024-09-20"),
        shipment_record(1, "2024-09-17T11:00:00.0000000", ship_date="2024-09-18"),
        shipment_record(2, "2024-09-17T10:00:00.0000000", ship_date="2024-09-19"),
    )
    assert ids(client.get("/shipments").json()) == [3, 2, 1]
    assert ids(client.get("/shipments", params={"sortDir": "DESC"}).json()) == [1, 2, 3]
    assert ids(client.get("/shipments", params={"sortBy": "ShipDate"}).json()) == [1, 2, 3]
    assert ids(client.get("/shipments", params={"sortBy": "shipdate", "sortDir": "desc"}).json()) == [3, 2, 1]


def test_orders_default_to_order_id_order(client: httpx.Client, empty_world: SandboxWorld) -> None:
    for order_id, modified in ((30, "2024-09-17T08:00:00.0000000"), (10, "2024-09-17T09:00:00.0000000")):
        empty_world.shipstation.orders[order_id] = order_record(order_id, modify_date=modified)
    empty_world.shipstation.orders[20] = order_record(20, modify_date="2024-09-17T07:00:00.0000000")
    assert ids(client.get("/orders").json(), "orders", "orderId") == [10, 20, 30]
    by_modify = client.get("/orders", params={"sortBy": "ModifyDate", "sortDir": "ASC"}).json()
    assert ids(by_modify, "orders", "orderId") == [20, 30, 10]


# -- date filters -----------------------------------------------------------------------------


def test_create_date_bounds_are_inclusive_wall_clock(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-09-17T09:59:59.9990000"),
        shipment_record(2, "2024-09-17T10:00:00.0000000"),
        shipment_record(3, "2024-09-17T10:30:00.1230000"),
        shipment_record(4, "2024-09-17T11:00:00.0000000"),
        shipment_record(5, "2024-09-17T11:00:00.0010000"),
    )
    window = {"createDateStart": "2024-09-17 10:00:00", "createDateEnd": "2024-09-17 11:00:00"}
    assert ids(client.get("/shipments", params=window).json()) == [2, 3, 4]
    # The ISO "T" form and fractional seconds are accepted too.
    iso = {"createDateStart": "2024-09-17T10:00:00.0000000", "createDateEnd": "2024-09-17T11:00:00.001"}
    assert ids(client.get("/shipments", params=iso).json()) == [2, 3, 4, 5]


def test_void_date_window_finds_only_voids_in_it(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-09-01T10:00:00.0000000", void_date="2024-09-17T12:00:00.0000000"),
        shipment_record(2, "2024-09-17T10:00:00.0000000"),
        shipment_record(3, "2024-09-02T10:00:00.0000000", void_date="2024-09-18T12:00:00.0000000"),
    )
    window = {"voidDateStart": "2024-09-17 00:00:00", "voidDateEnd": "2024-09-17 23:59:59"}
    assert ids(client.get("/shipments", params=window).json()) == [1]


def test_ship_date_filters_are_dates(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-09-17T10:00:00.0000000", ship_date="2024-09-17"),
        shipment_record(2, "2024-09-17T11:00:00.0000000", ship_date="2024-09-18"),
        shipment_record(3, "2024-09-17T12:00:00.0000000", ship_date="2024-09-19"),
    )
    window = {"shipDateStart": "2024-09-18", "shipDateEnd": "2024-09-18"}
    assert ids(client.get("/shipments", params=window).json()) == [2]


def test_shipment_text_filters(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(
        empty_world,
        shipment_record(1, "2024-09-17T10:00:00.0000000", recipient="Zoë O'Brien"),
        shipment_record(2, "2024-09-17T11:00:00.0000000", order_id=555),
    )
    assert ids(client.get("/shipments", params={"recipientName": "o'brien"}).json()) == [1]
    assert ids(client.get("/shipments", params={"orderId": "555"}).json()) == [2]
    assert ids(client.get("/shipments", params={"orderNumber": "SO-555"}).json()) == [2]
    tracking = empty_world.shipstation.shipments[1]["trackingNumber"]
    assert ids(client.get("/shipments", params={"trackingNumber": tracking}).json()) == [1]
    assert ids(client.get("/shipments", params={"carrierCode": "fedex"}).json()) == []


def test_include_shipment_items(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(empty_world, shipment_record(1, "2024-09-17T10:00:00.0000000"))
    assert client.get("/shipments").json()["shipments"][0]["shipmentItems"] is None
    body = client.get("/shipments", params={"includeShipmentItems": "True"}).json()
    assert body["shipments"][0]["shipmentItems"][0]["sku"] == "SKU-1"
    # The stored record is not altered by serving it without items.
    assert empty_world.shipstation.shipments[1]["shipmentItems"]


def test_order_filters_and_get_by_id(client: httpx.Client, empty_world: SandboxWorld) -> None:
    orders = empty_world.shipstation.orders
    orders[1] = order_record(1, number="100038", status="shipped", modify_date="2024-09-17T10:00:00.0000000")
    orders[2] = order_record(2, number="100038-1", modify_date="2024-09-18T10:00:00.0000000")
    orders[3] = order_record(3, number="200001", modify_date="2024-09-17T12:00:00.0000000")
    assert ids(client.get("/orders", params={"orderNumber": "100038"}).json(), "orders", "orderId") == [1, 2]
    assert ids(client.get("/orders", params={"orderStatus": "shipped"}).json(), "orders", "orderId") == [1]
    window = {"modifyDateStart": "2024-09-17 10:00:00", "modifyDateEnd": "2024-09-17 12:00:00"}
    assert ids(client.get("/orders", params=window).json(), "orders", "orderId") == [1, 3]
    assert client.get("/orders", params={"orderStatus": "lost"}).status_code == 400

    single = client.get("/orders/2")
    assert single.status_code == 200 and single.json()["orderNumber"] == "100038-1"
    assert "orders" not in single.json()
    assert client.get("/orders/999").status_code == 404


def test_fulfillment_filters(client: httpx.Client, empty_world: SandboxWorld) -> None:
    fulfillments = empty_world.shipstation.fulfillments
    fulfillments[1] = fulfillment_record(1, "2024-09-17T10:00:00.0000000", order_id=7)
    fulfillments[2] = fulfillment_record(2, "2024-09-18T10:00:00.0000000", order_id=8)
    window = {"createDateStart": "2024-09-18 00:00:00", "createDateEnd": "2024-09-18 10:00:00"}
    assert ids(client.get("/fulfillments", params=window).json(), "fulfillments", "fulfillmentId") == [2]
    assert ids(
        client.get("/fulfillments", params={"orderId": "7"}).json(), "fulfillments", "fulfillmentId"
    ) == [1]
    ship_day = {"shipDateStart": "2024-09-17", "shipDateEnd": "2024-09-17"}
    assert ids(client.get("/fulfillments", params=ship_day).json(), "fulfillments", "fulfillmentId") == [1]


def test_stores_is_a_bare_array_of_active_stores(client: httpx.Client, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.stores[1] = {"storeId": 1, "storeName": "Web", "active": True}
    empty_world.shipstation.stores[2] = {"storeId": 2, "storeName": "Old", "active": False}
    assert [s["storeId"] for s in client.get("/stores").json()] == [1]
    assert [s["storeId"] for s in client.get("/stores", params={"showInactive": "true"}).json()] == [1, 2]


# -- rate limit -------------------------------------------------------------------------------


def test_rate_limit_headers_and_429(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.rate_limit_per_minute = 3
    empty_world.shipstation.rate_window_seconds = 1.0
    with api(sandbox, empty_world) as http:
        first = http.get("/shipments")
        assert first.headers["X-Rate-Limit-Limit"] == "3"
        assert first.headers["X-Rate-Limit-Remaining"] == "2"
        assert int(first.headers["X-Rate-Limit-Reset"]) in (0, 1)
        http.get("/shipments")
        third = http.get("/orders")
        assert third.status_code == 200 and third.headers["X-Rate-Limit-Remaining"] == "0"
        over = http.get("/shipments")
        assert over.status_code == 429
        assert over.json() == {"message": "Too Many Requests"}
        assert over.headers["X-Rate-Limit-Remaining"] == "0"
        reset = int(over.headers["X-Rate-Limit-Reset"])
        assert reset >= 0
        threading.Event().wait(reset + 0.05)
        again = http.get("/shipments")
        assert again.status_code == 200 and again.headers["X-Rate-Limit-Remaining"] == "2"


def test_rate_limit_is_per_credential_pair(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.rate_limit_per_minute = 1
    with api(sandbox, empty_world) as http:
        assert http.get("/stores").status_code == 200
        assert http.get("/stores").status_code == 429
    # Failed authentication does not spend the account's budget, and still reports the limit.
    with httpx.Client(base_url=sandbox.shipstation_url, auth=("other", "pair")) as other:
        response = other.get("/stores")
    assert response.status_code == 401
    assert response.headers["X-Rate-Limit-Limit"] == "1"


# -- faults -----------------------------------------------------------------------------------


def test_fail_next_answers_aspnet_500_then_recovers(client: httpx.Client, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.faults.fail_next = 1
    failed = client.get("/shipments")
    assert failed.status_code == 500
    assert failed.json()["ExceptionMessage"] == "Object reference not set to an instance of an object."
    assert failed.json()["Message"] == "An error has occurred."
    assert client.get("/shipments").status_code == 200


def test_fail_paths_limit_failures_to_matching_paths(client: httpx.Client, empty_world: SandboxWorld) -> None:
    faults = empty_world.shipstation.faults
    faults.fail_next, faults.fail_status, faults.fail_paths = 1, 502, ("/fulfillments",)
    assert client.get("/shipments").status_code == 200
    gateway = client.get("/fulfillments")
    assert gateway.status_code == 502 and "Bad Gateway" in gateway.text
    assert gateway.headers["content-type"].startswith("text/html")
    assert client.get("/fulfillments").status_code == 200


def test_throttle_next(client: httpx.Client, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.faults.throttle_next = 1
    empty_world.shipstation.faults.retry_after_seconds = 3
    throttled = client.get("/orders")
    assert throttled.status_code == 429
    assert throttled.headers["X-Rate-Limit-Reset"] == "3"
    assert throttled.headers["X-Rate-Limit-Remaining"] == "0"
    assert client.get("/orders").status_code == 200


def test_drop_next_cuts_the_connection(client: httpx.Client, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.faults.drop_next = 1
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/shipments")
    assert client.get("/shipments").status_code == 200
    assert [e[3] for e in empty_world.shipstation.log.entries] == [0, 200]


def test_latency_lets_concurrent_requests_overlap(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.faults.latency_ms = 300
    inside = threading.Barrier(3, timeout=5)
    statuses: list[int] = []

    def call() -> None:
        with api(sandbox, empty_world) as http:
            inside.wait()
            statuses.append(http.get("/stores").status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200, 200, 200]
    # The latency is awaited without holding the world, so the three were served at once.
    assert empty_world.shipstation.max_in_flight == 3
    assert empty_world.shipstation.in_flight == 0


# -- webhooks and write endpoints -------------------------------------------------------------


def test_webhooks_subscribe_list_delete(client: httpx.Client, empty_world: SandboxWorld) -> None:
    created = client.post(
        "/webhooks/subscribe",
        json={
            "target_url": "https://example.com/hook",
            "event": "SHIP_NOTIFY",
            "store_id": 5,
            "friendly_name": "n",
        },
    )
    assert created.status_code in (200, 201)
    hook_id = created.json()["id"]
    listed = client.get("/webhooks").json()["webhooks"]
    assert len(listed) == 1
    hook = listed[0]
    for key in ("WebHookID", "SellerID", "StoreID", "HookType", "MessageFormat", "Name", "Url", "Active"):
        assert key in hook
    assert (hook["WebHookID"], hook["HookType"], hook["StoreID"], hook["Url"]) == (
        hook_id,
        "SHIP_NOTIFY",
        5,
        "https://example.com/hook",
    )
    assert hook["IsLabelAPIHook"] is False and hook["WebhookLogs"] == []
    assert client.delete(f"/webhooks/{hook_id}").status_code == 200
    assert client.get("/webhooks").json() == {"webhooks": []}
    assert client.delete(f"/webhooks/{hook_id}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"event": "SHIP_NOTIFY"},
        {"target_url": "https://example.com/hook", "event": "LABEL_CREATED_V2"},
        {"target_url": "https://example.com/hook"},
    ],
)
def test_webhook_subscribe_validation(client: httpx.Client, body: Record) -> None:
    response = client.post("/webhooks/subscribe", json=body)
    assert response.status_code == 400
    assert response.json()["message"]


def test_mark_as_shipped_creates_a_fulfillment_not_a_shipment(
    client: httpx.Client, empty_world: SandboxWorld
) -> None:
    empty_world.shipstation.orders[77] = order_record(77, number="SO-77")
    answer = client.post(
        "/orders/markasshipped",
        json={"orderId": 77, "carrierCode": "FedEx", "shipDate": "2024-09-17", "trackingNumber": "7946"},
    )
    assert answer.status_code == 200
    assert answer.json() == {"orderId": 77, "orderNumber": "SO-77"}
    assert client.get("/orders/77").json()["orderStatus"] == "shipped"
    fulfillments = client.get("/fulfillments", params={"orderId": "77"}).json()["fulfillments"]
    assert len(fulfillments) == 1
    made = fulfillments[0]
    assert (made["trackingNumber"], made["carrierCode"]) == ("7946", "FedEx")
    assert made["shipDate"] == "2024-09-17T00:00:00.0000000"
    assert len(made["createDate"]) == len("2024-09-17T10:51:14.5030000")
    assert client.get("/shipments").json()["total"] == 0
    assert client.post("/orders/markasshipped", json={"orderId": 77}).status_code == 400
    assert client.post("/orders/markasshipped", json={"orderId": 78, "carrierCode": "x"}).status_code == 404


def test_void_label(client: httpx.Client, empty_world: SandboxWorld) -> None:
    add_shipments(empty_world, shipment_record(9, "2024-09-17T10:00:00.0000000"))
    answer = client.post("/shipments/voidlabel", json={"shipmentId": 9})
    assert answer.status_code == 200 and answer.json()["approved"] is True
    stored = empty_world.shipstation.shipments[9]
    assert stored["voided"] is True
    assert len(stored["voidDate"]) == len("2024-09-17T10:51:14.5030000")
    window = {"voidDateStart": stored["voidDate"][:19], "voidDateEnd": stored["voidDate"][:19] + ".9999999"}
    assert ids(client.get("/shipments", params=window).json()) == [9]
    assert client.post("/shipments/voidlabel", json={"shipmentId": 9}).json()["approved"] is False
    assert client.post("/shipments/voidlabel", json={"shipmentId": 10}).status_code == 404


# -- admin endpoints ----------------------------------------------------------------------------


def test_admin_endpoints_set_faults_and_report_stats(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    with httpx.Client(base_url=sandbox.shipstation_url) as admin, api(sandbox, empty_world) as http:
        set_faults = admin.post("/_sandbox/faults", json={"fail_next": 1, "fail_paths": ["/orders"]})
        assert set_faults.status_code == 200
        assert empty_world.shipstation.faults.fail_paths == ("/orders",)
        assert http.get("/orders").status_code == 500
        assert http.get("/shipments").status_code == 200
        stats = admin.get("/_sandbox/stats").json()
        assert stats["requests"] == 2
        assert stats["by_endpoint"] == {"GET /orders": 1, "GET /shipments": 1}
        assert stats["by_status"] == {"200": 1, "500": 1}
        assert admin.post("/_sandbox/faults", json={"explode": True}).status_code == 400
        config = admin.post("/_sandbox/config", json={"report_zero_pages": True, "rate_window_seconds": 5})
        assert config.status_code == 200 and empty_world.shipstation.report_zero_pages is True
        assert admin.post("/_sandbox/reset").status_code == 200
        assert admin.get("/_sandbox/stats").json()["requests"] == 0


def test_unknown_route_and_method_answer_json(client: httpx.Client) -> None:
    missing = client.get("/nothing-here")
    assert missing.status_code == 404 and missing.json()["message"]
    wrong_method = client.delete("/shipments")
    assert wrong_method.status_code == 405 and wrong_method.json()["message"]


def test_basic_auth_header_shape(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    token = base64.b64encode(
        f"{empty_world.shipstation.api_key}:{empty_world.shipstation.api_secret}".encode()
    )
    with httpx.Client(base_url=sandbox.shipstation_url, headers={"Authorization": b"Basic " + token}) as http:
        assert http.get("/stores").status_code == 200
