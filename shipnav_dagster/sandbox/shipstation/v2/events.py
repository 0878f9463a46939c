"""V2 webhook notifications queued when the world changes (``scenario`` calls these).

ShipStation sends ``{"resource_url", "resource_type"}`` to each subscription of the event:
LABEL_CREATED_V2 ("shipping or return label created", help.shipstation.com "ShipStation
Webhooks") points at ``/v2/labels?batch_id=se-…``, FULFILLMENT_SHIPPED_V2 at
``/v2/fulfillments?fulfillment_id=se-…&shipment_id=se-…`` (captured production payloads). One
notification covers a whole batch, so a batch already waiting is not queued twice. A
subscription with a ``store_id`` only hears about that store's records. Only subscriptions that
exist when the change happens are notified; ``delivery.deliver_webhooks`` sends the queue.
"""

from typing import Any

from shipnav_dagster.sandbox.shipstation.v2.ids import label_batch_id, se_id
from shipnav_dagster.sandbox.state import PendingNotification, SandboxWorld

LABEL_CREATED = "LABEL_CREATED_V2"
FULFILLMENT_SHIPPED = "FULFILLMENT_SHIPPED_V2"


def label_created(world: SandboxWorld, shipment: dict[str, Any]) -> None:
    """Queue LABEL_CREATED_V2 for a label just bought (a V1 shipment record)."""
    store = (shipment.get("advancedOptions") or {}).get("storeId")
    _queue(world, LABEL_CREATED, f"/v2/labels?batch_id={label_batch_id(shipment)}", store)


def fulfillment_shipped(world: SandboxWorld, fulfillment: dict[str, Any]) -> None:
    """Queue FULFILLMENT_SHIPPED_V2 for a fulfillment just created (a V1 fulfillment record)."""
    order = world.shipstation.orders.get(fulfillment.get("orderId"))  # type: ignore[arg-type]
    store = (order or {}).get("advancedOptions", {}).get("storeId")
    path = (
        f"/v2/fulfillments?fulfillment_id={se_id(fulfillment['fulfillmentId'])}"
        f"&shipment_id={se_id(fulfillment['orderId'])}"
    )
    _queue(world, FULFILLMENT_SHIPPED, path, store)


def _queue(world: SandboxWorld, resource_type: str, path: str, store_id: object) -> None:
    with world.lock:
        v2 = world.shipstation.v2
        for hook in v2.webhooks.values():
            if str(hook["event"]).upper() != resource_type:
                continue
            if hook.get("store_id") is not None and hook["store_id"] != store_id:
                continue
            note = PendingNotification(hook["webhook_id"], resource_type, path)
            if note not in v2.outbox:
                v2.outbox.append(note)
