"""One ShipStation API generation as the sync sees it: its streams, its parsers, its lookups.

The poll, the webhook drain and replay work on a :class:`ShipStationSource` and never ask which
generation it is: each generation's ``source.py`` (``v1``, ``v2``) hands over the streams to poll
(each with its cursor name), the parser of each kind of record, how to fetch one order, and how to
read a webhook notification. Both produce the same ``ReceivedRecord`` / ``OrderInfo``, keyed the
same way (``shipment:<id>``, ``fulfillment:<id>``, orders by number), so a ledger outlives a switch
of generation.

Cursors: each stream has its own name, and names the other generation's stream of the same records
(``previous``); a stream without a cursor of its own starts where that one stopped, so moving from
V1 to V2 (or back) neither re-reads the initial lookback nor skips anything.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from shipnav_dagster.core.model import OrderInfo, ReceivedRecord
from shipnav_dagster.shipstation.http import ClientStats

Generation = Literal["v1", "v2"]
RecordKind = Literal["shipment", "fulfillment", "order"]
Fetch = Callable[[datetime, datetime], Iterator[dict[str, Any]]]


@dataclass(frozen=True)
class Stream:
    """One poll stream: what it reads for a window, of which kind, under which cursor."""

    name: str  # the cursor's name in the ledger
    kind: RecordKind
    fetch: Fetch
    previous: str | None = None  # the other generation's cursor of the same records


# Stream names of each generation, and which of the other's each starts from.
V1_STREAMS = ("orders_modified", "shipments_created", "shipments_voided", "fulfillments_created")
V2_STREAMS = ("shipments_modified_v2", "labels_created_v2", "labels_voided_v2", "fulfillments_created_v2")
COUNTERPART = dict(zip(V1_STREAMS, V2_STREAMS, strict=True)) | dict(zip(V2_STREAMS, V1_STREAMS, strict=True))


class ShipStationSource(Protocol):
    generation: Generation
    api_url: str  # the configured base URL: webhook resource_urls must be on its host
    stats: ClientStats

    @property
    def streams(self) -> tuple[Stream, ...]:
        """In poll order: orders first, so the matcher has the context of the labels after them."""
        ...

    def parser(self, kind: Literal["shipment", "fulfillment"]) -> Callable[[object], ReceivedRecord]: ...

    def parse_order(self, payload: object) -> OrderInfo:
        """Raises ``shipstation.records.RecordError`` naming what is unreadable."""
        ...

    def get_order(self, order_id: int) -> dict[str, Any] | None:
        """One order by its number (V1 orderId, V2 se-<number>); None when ShipStation lacks it."""
        ...

    def notification_kind(self, resource_type: str) -> RecordKind | None:
        """What a webhook notification of this type points at; None if not this generation's."""
        ...

    def fetch_notification(self, resource_url: str) -> list[dict[str, Any]]:
        """Every record behind a (checked) resource_url, fetched with shipnav's page size."""
        ...

    def close(self) -> None: ...
