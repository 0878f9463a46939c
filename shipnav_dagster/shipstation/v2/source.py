"""ShipStation API V2 as a :class:`~shipnav_dagster.shipstation.source.ShipStationSource`."""

from collections.abc import Callable
from typing import Any, Literal

from shipnav_dagster.core.model import OrderInfo, ReceivedRecord
from shipnav_dagster.shipstation.source import COUNTERPART, Fetch, Generation, RecordKind, Stream
from shipnav_dagster.shipstation.v2 import parser
from shipnav_dagster.shipstation.v2.client import ShipStationV2Client

# LABEL_CREATED_V2 points at /v2/labels?batch_id=…, FULFILLMENT_SHIPPED_V2 at
# /v2/fulfillments?fulfillment_id=…&shipment_id=… (docs/api-notes.md).
NOTIFICATIONS: dict[str, RecordKind] = {
    "LABEL_CREATED_V2": "shipment",
    "FULFILLMENT_SHIPPED_V2": "fulfillment",
}


class V2Source:
    generation: Generation = "v2"

    def __init__(self, client: ShipStationV2Client) -> None:
        self.client = client
        self.api_url = client.base_url
        self.stats = client.stats

    @property
    def streams(self) -> tuple[Stream, ...]:
        c = self.client
        streams: tuple[tuple[str, RecordKind, Fetch], ...] = (
            ("shipments_modified_v2", "order", c.iter_shipments_modified),
            ("labels_created_v2", "shipment", c.iter_labels_created),
            ("labels_voided_v2", "shipment", c.iter_labels_voided),
            ("fulfillments_created_v2", "fulfillment", c.iter_fulfillments_created),
        )
        return tuple(Stream(name, kind, fetch, COUNTERPART[name]) for name, kind, fetch in streams)

    def parser(self, kind: Literal["shipment", "fulfillment"]) -> Callable[[object], ReceivedRecord]:
        return parser.parse_label if kind == "shipment" else parser.parse_fulfillment

    def parse_order(self, payload: object) -> OrderInfo:
        return parser.parse_shipment(payload)

    def get_order(self, order_id: int) -> dict[str, Any] | None:
        return self.client.get_shipment(order_id)

    def notification_kind(self, resource_type: str) -> RecordKind | None:
        return NOTIFICATIONS.get(resource_type)

    def fetch_notification(self, resource_url: str) -> list[dict[str, Any]]:
        return self.client.fetch_resource_url(resource_url)

    def close(self) -> None:
        self.client.close()
