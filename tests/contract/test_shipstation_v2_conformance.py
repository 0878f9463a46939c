"""Every kind of body the V2 emulator serves conforms to the schemas written from the V2 spec.

Runs over the generated shop (voids, re-labels, returns, split shipments, international
addresses, marked-shipped orders) so the conversions meet every case the world holds, and over
each kind of refusal. The schemas and which spec components they come from are in
``tests/shipstation_v2_schemas.py``.
"""

import httpx

from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from tests.support.shipstation_v2_support import v2_client, validate

HOOK_PATH = "/v2/environment/webhooks"
# What the sandbox always serves beyond what the spec makes required.
LABEL_FIELDS = (
    "label_id",
    "status",
    "shipment_id",
    "external_shipment_id",
    "ship_date",
    "created_at",
    "tracking_number",
    "is_return_label",
    "batch_id",
    "carrier_id",
    "carrier_code",
    "service_code",
    "voided",
    "voided_at",
    "packages",
    "ship_to",
)
SHIPMENT_FIELDS = ("shipment_number", "external_shipment_id", "store_id", "carrier_id", "ship_date", "items")
FULFILLMENT_FIELDS = (
    "fulfillment_id",
    "shipment_id",
    "shipment_number",
    "tracking_number",
    "created_at",
    "ship_date",
    "voided",
    "voided_at",
    "fulfillment_carrier_friendly_name",
    "fulfillment_provider_code",
)


def _utc(value: str | None) -> bool:
    return value is None or value.endswith("Z")


def test_lists_and_single_records_conform(sandbox: SandboxServers, seeded_world: SandboxWorld) -> None:
    with v2_client(sandbox, seeded_world) as http:
        labels = http.get("/v2/labels", params={"page_size": 1000}).json()
        validate(labels, "list_labels_response_body")
        assert {label["status"] for label in labels["labels"]} == {"completed", "voided"}
        assert any(label["is_return_label"] for label in labels["labels"])
        assert any(label["is_international"] for label in labels["labels"])
        for label in labels["labels"]:
            validate(label, "label", required=LABEL_FIELDS)
            assert _utc(label["created_at"]) and _utc(label["voided_at"]) and _utc(label["ship_date"])
        one = http.get(f"/v2/labels/{labels['labels'][0]['label_id']}").json()
        validate(one, "label", required=LABEL_FIELDS)

        shipments = http.get("/v2/shipments", params={"page_size": 1000}).json()
        validate(shipments, "list_shipments_response_body")
        statuses = {s["shipment_status"] for s in shipments["shipments"]}
        assert statuses == {"pending", "label_purchased", "cancelled"}
        for shipment in shipments["shipments"]:
            validate(shipment, "shipment", required=SHIPMENT_FIELDS)
            assert _utc(shipment["created_at"]) and _utc(shipment["modified_at"])
        first = shipments["shipments"][0]
        validate(http.get(f"/v2/shipments/{first['shipment_id']}").json(), "shipment")
        by_key = http.get(f"/v2/shipments/external_shipment_id/{first['external_shipment_id']}").json()
        validate(by_key, "shipment")

        fulfillments = http.get("/v2/fulfillments", params={"page_size": 1000}).json()
        validate(fulfillments, "list_fulfillments_response_body")
        assert fulfillments["total"] > 0
        for fulfillment in fulfillments["fulfillments"]:
            validate(fulfillment, "fulfillment", required=FULFILLMENT_FIELDS)

        paged = http.get("/v2/labels", params={"page_size": 10, "page": 2}).json()
        validate(paged, "list_labels_response_body")
        assert paged["links"]["prev"] and paged["links"]["next"]


def test_writes_and_webhooks_conform(sandbox: SandboxServers, seeded_world: SandboxWorld) -> None:
    with v2_client(sandbox, seeded_world) as http:
        live = http.get("/v2/labels", params={"label_status": "completed", "page_size": 1}).json()["labels"][
            0
        ]
        validate(http.put(f"/v2/labels/{live['label_id']}/void").json(), "void_label_response_body")
        validate(http.put(f"/v2/labels/{live['label_id']}/void").json(), "void_label_response_body")
        pending = http.get("/v2/shipments", params={"shipment_status": "pending", "page_size": 1}).json()
        item = {
            "shipment_id": pending["shipments"][0]["shipment_id"],
            "tracking_number": "1Z0000000000000001",
            "carrier_code": "ups",
        }
        made = http.post("/v2/fulfillments", json={"fulfillments": [item, {**item, "shipment_id": "se-1"}]})
        validate(made.json(), "create_fulfillments_response_body")
        hook = http.post(HOOK_PATH, json={"event": "track", "url": "https://example.com/t"}).json()
        validate(hook, "webhook")
        validate(http.get(HOOK_PATH).json(), "list_webhooks_response_body")
        validate(http.get(f"{HOOK_PATH}/{hook['webhook_id']}").json(), "webhook")


def test_every_refusal_has_the_error_body(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    empty_world.shipstation.v2.rate_limit_per_minute = 1
    with v2_client(sandbox, empty_world) as http:
        refusals = [
            httpx.get(f"{sandbox.shipstation_v2_url}/v2/labels"),  # 401
            http.get("/v2/labels", params={"page": "x"}),  # 400 (spends the one request allowed)
            http.get("/v2/labels"),  # 429
        ]
        empty_world.shipstation.v2.rate_limit_per_minute = 0
        refusals += [
            http.get("/v2/shipments/se-404"),  # 404
            http.post(HOOK_PATH, json=[]),  # 400 body
            http.get("/v2/nowhere"),  # 404 route
        ]
    assert [r.status_code for r in refusals] == [401, 400, 429, 404, 400, 404]
    for response in refusals:
        validate(response.json(), "error_response_body")
