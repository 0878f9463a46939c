"""Poll ShipStation by overlapping windows and store every record in the ledger first."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.shipstation.v1.client import ShipStationClient

BATCH = 500  # records per ledger transaction: memory stays flat however long the window is

STREAMS = ("orders_modified", "shipments_created", "shipments_voided", "fulfillments_created")


@dataclass
class StreamResult:
    stream: str
    window_start: datetime
    window_end: datetime
    fetched: int = 0
    new: int = 0
    changed: int = 0


@dataclass
class PollSummary:
    streams: list[StreamResult] = field(default_factory=list)
    orders_fetched_by_id: int = 0
    new_keys: list[str] = field(default_factory=list)
    changed_keys: list[str] = field(default_factory=list)

    @property
    def fetched(self) -> int:
        return sum(s.fetched for s in self.streams if s.stream != "orders_modified")


def poll_window(
    ledger: Ledger, stream: str, now: datetime, *, overlap: timedelta, lookback: timedelta
) -> tuple[datetime, datetime]:
    """[cursor - overlap, now]; the very first poll reaches back ``lookback``."""
    cursor = ledger.get_cursor(stream)
    start = now - lookback if cursor is None else cursor - overlap
    return start, now


def _batched(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        if item is None:
            continue
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def poll_shipstation(
    client: ShipStationClient,
    ledger: Ledger,
    *,
    now: datetime,
    overlap: timedelta,
    lookback: timedelta,
    run_id: str | None,
    seen_via: str = "poll",
    log: Callable[[str], None] = lambda _m: None,
) -> PollSummary:
    summary = PollSummary()
    # Orders first, so the matcher has order dates, names and split parents for the labels.
    sources: list[tuple[str, str | None, Callable[[datetime, datetime], Iterable[Any]]]] = [
        ("orders_modified", None, client.iter_orders_modified),
        ("shipments_created", "shipment", client.iter_shipments_created),
        ("shipments_voided", "shipment", client.iter_shipments_voided),
        ("fulfillments_created", "fulfillment", client.iter_fulfillments_created),
    ]
    for stream, source, fetch in sources:
        start, end = poll_window(ledger, stream, now, overlap=overlap, lookback=lookback)
        result = StreamResult(stream, start, end)
        for batch in _batched(fetch(start, end)):
            payloads = [item.raw for item in batch]
            result.fetched += len(payloads)
            if source is None:
                changed_orders = ledger.upsert_orders(payloads)
                ledger.reopen_records_of_orders(changed_orders, run_id=run_id)
                result.changed += len(changed_orders)
                continue
            upserted = ledger.upsert_records(
                ((source, p) for p in payloads), run_id=run_id, seen_via=seen_via
            )
            result.new += len(upserted.new)
            result.changed += len(upserted.changed)
            summary.new_keys += upserted.new
            summary.changed_keys += upserted.changed
        # Invariant 3: the cursor moves only once the whole window is durably in the ledger.
        ledger.advance_cursor(stream, end, run_id=run_id)
        log(
            f"{stream}: {result.fetched} fetched, {result.new} new, {result.changed} changed "
            f"in [{start.isoformat()}, {end.isoformat()}]"
        )
        summary.streams.append(result)
    summary.orders_fetched_by_id = fetch_missing_orders(
        client, ledger, summary.new_keys + summary.changed_keys
    )
    return summary


def fetch_missing_orders(client: ShipStationClient, ledger: Ledger, record_keys: list[str]) -> int:
    """GET /orders/{id} only for orders of new records that the orders poll did not return."""
    if not record_keys:
        return 0
    wanted = ledger.order_ids_of(record_keys)
    missing = sorted(wanted - ledger.known_order_ids(wanted))
    fetched = []
    for order_id in missing:
        order = client.get_order(order_id)
        if order is not None:
            fetched.append(order.raw)
    if fetched:
        ledger.upsert_orders(fetched)
    # Split children need their parent order too.
    infos = ledger.order_infos(wanted)
    parents = {i.parent_id for i in infos.values() if i.parent_id is not None}
    missing_parents = sorted(parents - ledger.known_order_ids(parents))
    extra = [o.raw for o in (client.get_order(p) for p in missing_parents) if o is not None]
    if extra:
        ledger.upsert_orders(extra)
    return len(fetched) + len(extra)
