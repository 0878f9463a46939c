"""ShipStation V1 as a :class:`~shipnav_dagster.shipstation.source.ShipStationSource`."""

from collections.abc import Callable
from typing import Any, Literal

from shipnav_dagster.core.model import OrderInfo, ReceivedRecord
from shipnav_dagster.shipstation.source import COUNTERPART, Fetch, Generation, RecordKind, Stream
from shipnav_dagster.shipstation.v1 import parser
from shipnav_dagster.shipstation.v1.client import ShipStationClient
from shipnav_dagster.webhooks.fetch_url import fetch_url

# SHIP_NOTIFY points at /shipments?batchId=…, ORDER_NOTIFY at /orders?importBatch=… (docs/api-notes.md).
NOTIFICATIONS: dict[str, RecordKind] = {
    "SHIP_NOTIFY": "shipment",
    "ITEM_SHIP_NOTIFY": "shipment",
    "ORDER_NOTIFY": "order",
    "ITEM_ORDER_NOTIFY": "order",
}


class V1Source:
    generation: Generation = "v1"

    def __init__(self, client: ShipStationClient) -> None:
        self.client = client
        self.api_url = client.base_url
        self.stats = client.stats

    @property
    def streams(self) -> tuple[Stream, ...]:
        c = self.client
        streams: tuple[tuple[str, RecordKind, Fetch], ...] = (
            ("orders_modified", "order", c.iter_orders_modified),
            ("shipments_created", "shipment", c.iter_shipments_created),
            ("shipments_voided", "shipment", c.iter_shipments_voided),
            ("fulfillments_created", "fulfillment", c.iter_fulfillments_created),
        )
        return tuple(Stream(name, kind, fetch, COUNTERPART[name]) for name, kind, fetch in streams)

    def parser(self, kind: Literal["shipment", "fulfillment"]) -> Callable[[object], ReceivedRecord]:
        return parser.parse_shipment if kind == "shipment" else parser.parse_fulfillment

    def parse_order(self, payload: object) -> OrderInfo:
        return parser.parse_order(payload)

    def get_order(self, order_id: int) -> dict[str, Any] | None:
        return self.client.get_order(order_id)

    def notification_kind(self, resource_type: str) -> RecordKind | None:
        return NOTIFICATIONS.get(resource_type)

    def fetch_notification(self, resource_url: str) -> list[dict[str, Any]]:
        # shipnav's page size and the shipment items, whatever the notification named.
        return self.client.fetch_resource_url(fetch_url(resource_url, self.client.page_size))

    def close(self) -> None:
        self.client.close()
