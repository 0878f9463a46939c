"""V2 webhook subscriptions (``/v2/environment/webhooks``) and the sandbox's loopback delivery."""

from collections.abc import Iterator

import httpx
import pytest

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.shipstation.v2.delivery import deliver_webhooks
from shipnav_dagster.sandbox.state import SandboxWorld
from tests.support.shipstation_v2_support import Record, pacific, receiving, v2_client, validate

HOOKS = "/v2/environment/webhooks"


@pytest.fixture
def client(sandbox: SandboxServers, empty_world: SandboxWorld) -> Iterator[httpx.Client]:
    with v2_client(sandbox, empty_world) as http:
        yield http


def subscribe(client: httpx.Client, **body: object) -> Record:
    response = client.post(HOOKS, json=body)
    assert response.status_code == 200, response.text
    validate(response.json(), "webhook")
    return response.json()


def test_subscription_crud(client: httpx.Client) -> None:
    made = subscribe(
        client,
        event="LABEL_CREATED_V2",
        url="https://example.com/hook",
        headers=[{"key": "X-Shared-Secret", "value": "s3cret"}],
        name="labels",
        store_id=12,
    )
    assert made["webhook_id"].startswith("se-")
    assert (made["event"], made["url"], made["name"], made["store_id"]) == (
        "LABEL_CREATED_V2",
        "https://example.com/hook",
        "labels",
        12,
    )
    assert made["headers"] == [{"key": "X-Shared-Secret", "value": "s3cret"}]
    listed = client.get(HOOKS).json()
    validate(listed, "list_webhooks_response_body")
    assert listed == [made]
    hook = f"{HOOKS}/{made['webhook_id']}"
    assert client.get(hook).json() == made
    updated = client.put(hook, json={"url": "https://example.com/v2", "headers": []})
    assert updated.status_code == 204 and updated.content == b""
    assert client.get(hook).json()["url"] == "https://example.com/v2"
    assert client.get(hook).json()["headers"] == []
    assert client.delete(hook).status_code == 204
    assert client.get(HOOKS).json() == []
    missing = client.get(hook)
    assert missing.status_code == 404
    validate(missing.json(), "error_response_body")
    assert client.delete(hook).status_code == 404


def test_spec_and_shipstation_event_names_are_accepted(client: httpx.Client) -> None:
    for event in ("track", "batch", "FULFILLMENT_SHIPPED_V2", "label_created_v2"):
        made = subscribe(client, event=event, url=f"https://example.com/{event}")
        # The V2 names are matched in either case and kept in the help centre's spelling.
        assert made["event"] == (event if event in ("track", "batch") else event.upper())


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://example.com/hook"},
        {"event": "LABEL_CREATED_V2"},
        {"event": "SHIP_NOTIFY", "url": "https://example.com/hook"},
        {"event": "LABEL_CREATED_V2", "url": "not a url"},
        {
            "event": "LABEL_CREATED_V2",
            "url": "https://example.com/hook",
            "headers": [{"key": "bad key", "value": "v"}],
        },
        {"event": "LABEL_CREATED_V2", "url": "https://example.com/hook", "store_id": "12"},
    ],
)
def test_subscription_validation(client: httpx.Client, body: Record) -> None:
    response = client.post(HOOKS, json=body)
    assert response.status_code == 400
    validate(response.json(), "error_response_body")


def test_one_subscription_per_event_and_store(client: httpx.Client) -> None:
    subscribe(client, event="LABEL_CREATED_V2", url="https://example.com/a")
    again = client.post(HOOKS, json={"event": "label_created_v2", "url": "https://example.com/b"})
    assert again.status_code == 409
    validate(again.json(), "error_response_body")
    assert again.json()["errors"][0]["error_code"] == "webhook_event_type_conflict"
    subscribe(client, event="LABEL_CREATED_V2", url="https://example.com/c", store_id=7)


def test_label_created_is_delivered_and_its_resource_url_returns_the_label(
    sandbox: SandboxServers, empty_world: SandboxWorld, client: httpx.Client
) -> None:
    order = sc.add_ss_order(empty_world, order_number="W1", created=pacific(17, 9))
    before = sc.buy_label(empty_world, order["orderId"], created=pacific(17, 9, 30))  # nobody listening yet
    with receiving() as receiver:
        subscribe(
            client,
            event="LABEL_CREATED_V2",
            url=receiver.url,
            headers=[{"key": "X-Shared-Secret", "value": "s3cret"}],
        )
        label = sc.buy_label(empty_world, order["orderId"], created=pacific(17, 10))
        deliveries = sandbox.deliver_v2_webhooks()
        assert [(d.status, d.error) for d in deliveries] == [(200, None)]
        (got,) = receiver.requests
        assert got.path == "/hooks/shipstation"
        assert got.headers["x-shared-secret"] == "s3cret"
        assert got.headers["content-type"] == "application/json"
        validate(got.body, "webhook_notification")
        assert got.body == {
            "resource_url": f"{sandbox.shipstation_v2_url}/v2/labels?batch_id=se-{label['shipmentId']}",
            "resource_type": "LABEL_CREATED_V2",
        }
        followed = client.get(got.body["resource_url"]).json()
        validate(followed, "list_labels_response_body")
        assert [item["label_id"] for item in followed["labels"]] == [f"se-{label['shipmentId']}"]
        assert followed["links"]["first"]["href"].startswith(got.body["resource_url"] + "&page=1")
        assert f"se-{before['shipmentId']}" not in {item["label_id"] for item in followed["labels"]}
        # Delivered once: the queue is empty now.
        assert sandbox.deliver_v2_webhooks() == []


def test_a_batch_is_one_notification(
    sandbox: SandboxServers, empty_world: SandboxWorld, client: httpx.Client
) -> None:
    orders = [sc.add_ss_order(empty_world, order_number=f"B{n}", created=pacific(17, 9)) for n in range(3)]
    with receiving() as receiver:
        subscribe(client, event="LABEL_CREATED_V2", url=receiver.url)
        for order in orders:
            sc.buy_label(empty_world, order["orderId"], created=pacific(17, 10), batch_number="777")
        assert len(sandbox.deliver_v2_webhooks()) == 1
        (got,) = receiver.requests
        assert got.body["resource_url"].endswith("/v2/labels?batch_id=se-777")
        assert client.get(got.body["resource_url"]).json()["total"] == 3


def test_fulfillment_shipped_is_delivered_for_v1_and_v2_mark_shipped(
    sandbox: SandboxServers, empty_world: SandboxWorld, client: httpx.Client
) -> None:
    first = sc.add_ss_order(empty_world, order_number="F1", created=pacific(17, 9))
    second = sc.add_ss_order(empty_world, order_number="F2", created=pacific(17, 9))
    with receiving() as receiver:
        subscribe(client, event="FULFILLMENT_SHIPPED_V2", url=receiver.url)
        made = client.post(
            "/v2/fulfillments",
            json={
                "fulfillments": [
                    {
                        "shipment_id": f"se-{first['orderId']}",
                        "tracking_number": "T-1",
                        "carrier_code": "fedex",
                    }
                ]
            },
        )
        assert made.json()["has_errors"] is False
        v1_auth = (empty_world.shipstation.api_key, empty_world.shipstation.api_secret)
        v1 = httpx.post(
            f"{sandbox.shipstation_url}/orders/markasshipped",
            json={"orderId": second["orderId"], "carrierCode": "UPS", "trackingNumber": "T-2"},
            auth=v1_auth,
        )
        assert v1.status_code == 200
        # The operator endpoint does the same as deliver_v2_webhooks, for a sandbox in another process.
        with httpx.Client(base_url=sandbox.shipstation_v2_url) as admin:
            sent = admin.post("/_sandbox/webhooks/deliver").json()["deliveries"]
        assert [d["status"] for d in sent] == [200, 200]
        bodies = [r.body for r in receiver.requests]
        assert {b["resource_type"] for b in bodies} == {"FULFILLMENT_SHIPPED_V2"}
        for body, order, tracking in zip(bodies, (first, second), ("T-1", "T-2"), strict=True):
            assert f"&shipment_id=se-{order['orderId']}" in body["resource_url"]
            followed = client.get(body["resource_url"]).json()
            validate(followed, "list_fulfillments_response_body")
            (fulfillment,) = followed["fulfillments"]
            assert (fulfillment["shipment_id"], fulfillment["tracking_number"]) == (
                f"se-{order['orderId']}",
                tracking,
            )


def test_store_scoped_subscription_hears_only_its_store(
    sandbox: SandboxServers, empty_world: SandboxWorld, client: httpx.Client
) -> None:
    web = sc.add_store(empty_world, store_name="Web")["storeId"]
    market = sc.add_store(empty_world, store_name="Market")["storeId"]
    ours = sc.add_ss_order(empty_world, order_number="S1", store_id=web, created=pacific(17, 9))
    theirs = sc.add_ss_order(empty_world, order_number="S2", store_id=market, created=pacific(17, 9))
    with receiving() as receiver:
        subscribe(client, event="LABEL_CREATED_V2", url=receiver.url, store_id=web)
        label = sc.buy_label(empty_world, ours["orderId"], created=pacific(17, 10))
        sc.buy_label(empty_world, theirs["orderId"], created=pacific(17, 10))
        sandbox.deliver_v2_webhooks()
        assert [r.body["resource_url"].rsplit("=", 1)[1] for r in receiver.requests] == [
            f"se-{label['shipmentId']}"
        ]


def test_only_loopback_receivers_and_live_subscriptions_get_notifications(
    sandbox: SandboxServers, empty_world: SandboxWorld, client: httpx.Client
) -> None:
    order = sc.add_ss_order(empty_world, order_number="L1", created=pacific(17, 9))
    outside = subscribe(client, event="LABEL_CREATED_V2", url="https://hooks.example.com/shipstation")
    sc.buy_label(empty_world, order["orderId"], created=pacific(17, 10))
    (refused,) = deliver_webhooks(empty_world, sandbox.shipstation_v2_url)
    assert (refused.webhook_id, refused.status) == (outside["webhook_id"], None)
    assert refused.error is not None and "loopback" in refused.error
    with receiving() as receiver:
        client.put(f"{HOOKS}/{outside['webhook_id']}", json={"url": receiver.url})
        sc.buy_label(empty_world, order["orderId"], created=pacific(17, 11))
        client.delete(f"{HOOKS}/{outside['webhook_id']}")
        assert sandbox.deliver_v2_webhooks() == []
        assert receiver.requests == []


def test_a_failing_receiver_is_reported(
    sandbox: SandboxServers, empty_world: SandboxWorld, client: httpx.Client
) -> None:
    order = sc.add_ss_order(empty_world, order_number="E1", created=pacific(17, 9))
    with receiving(status=503) as receiver:
        subscribe(client, event="LABEL_CREATED_V2", url=receiver.url)
        sc.buy_label(empty_world, order["orderId"], created=pacific(17, 10))
        (delivery,) = sandbox.deliver_v2_webhooks()
        assert (delivery.status, delivery.error) == (503, None)
    subscribe(client, event="FULFILLMENT_SHIPPED_V2", url="http://127.0.0.1:9/closed")
    sc.mark_shipped(empty_world, order["orderId"], tracking_number="Z1")
    (unreachable,) = sandbox.deliver_v2_webhooks(timeout=2)
    assert unreachable.status is None and unreachable.error
