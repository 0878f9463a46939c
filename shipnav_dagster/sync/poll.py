"""Poll ShipStation by overlapping windows and store every record in the ledger first.

Generation-agnostic: the source (``shipstation.source``) names the streams, their cursors and
their parsers; this module only sequences windows, batches and cursors.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.shipstation.source import ShipStationSource, Stream
from shipnav_dagster.sync.intake import store_orders, store_records

BATCH = 500  # records per ledger transaction: memory stays flat however long the window is


@dataclass
class StreamResult:
    stream: str
    window_start: datetime
    window_end: datetime
    fetched: int = 0
    new: int = 0
    changed: int = 0
    invalid: int = 0  # stored as invalid, with the reason


@dataclass
class PollSummary:
    streams: list[StreamResult] = field(default_factory=list)
    orders_fetched_by_id: int = 0
    new_keys: list[str] = field(default_factory=list)
    changed_keys: list[str] = field(default_factory=list)

    order_streams: tuple[str, ...] = ()

    @property
    def fetched(self) -> int:
        """Labels and fulfillments fetched (orders are context, not records)."""
        return sum(s.fetched for s in self.streams if s.stream not in self.order_streams)


def poll_window(
    ledger: Ledger,
    stream: str | Stream,
    now: datetime,
    *,
    overlap: timedelta,
    lookback: timedelta,
) -> tuple[datetime, datetime]:
    """[cursor - overlap, now]. A stream without a cursor starts from its counterpart's in the
    other API generation (a shop that switched); the very first poll reaches back ``lookback``."""
    name, previous = (stream, None) if isinstance(stream, str) else (stream.name, stream.previous)
    cursor = ledger.get_cursor(name)
    if cursor is None and previous is not None:
        cursor = ledger.get_cursor(previous)
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
    source: ShipStationSource,
    ledger: Ledger,
    *,
    now: datetime,
    overlap: timedelta,
    lookback: timedelta,
    run_id: str | None,
    seen_via: str = "poll",
    log: Callable[[str], None] = lambda _m: None,
) -> PollSummary:
    streams = source.streams
    summary = PollSummary(order_streams=tuple(s.name for s in streams if s.kind == "order"))
    # The source lists orders first, so the matcher has order dates and names for the labels.
    for stream in streams:
        start, end = poll_window(ledger, stream, now, overlap=overlap, lookback=lookback)
        result = StreamResult(stream.name, start, end)
        for batch in _batched(stream.fetch(start, end)):
            result.fetched += len(batch)
            if stream.kind == "order":
                orders = store_orders(ledger, source.parse_order, batch, run_id=run_id)
                result.changed += len(orders.changed)
                result.invalid += len(orders.unreadable)
                continue
            parse = source.parser(stream.kind)
            upserted = store_records(ledger, parse, batch, run_id=run_id, seen_via=seen_via)
            result.new += len(upserted.new)
            result.changed += len(upserted.changed)
            result.invalid += len(upserted.invalid)
            summary.new_keys += upserted.new
            summary.changed_keys += upserted.changed
        # Invariant 3: the cursor moves only once the whole window is durably in the ledger
        # (unreadable records included: they are stored as invalid, with their reason).
        ledger.advance_cursor(stream.name, end, run_id=run_id)
        log(
            f"{stream.name}: {result.fetched} fetched, {result.new} new, {result.changed} changed, "
            f"{result.invalid} unreadable in [{start.isoformat()}, {end.isoformat()}]"
        )
        summary.streams.append(result)
    summary.orders_fetched_by_id = fetch_missing_orders(
        source, ledger, summary.new_keys + summary.changed_keys
    )
    return summary


def fetch_missing_orders(source: ShipStationSource, ledger: Ledger, record_keys: list[str]) -> int:
    """One order by id only for orders of new records that the orders poll did not return."""
    if not record_keys:
        return 0
    wanted = ledger.order_ids_of(record_keys)
    missing = sorted(wanted - ledger.known_order_ids(wanted))
    fetched = [o for o in (source.get_order(i) for i in missing) if o is not None]
    if fetched:
        store_orders(ledger, source.parse_order, fetched, run_id=None)
    # Split children need their parent order too (V1: advancedOptions.parentId).
    parents = ledger.parent_ids_of(wanted)
    missing_parents = sorted(parents - ledger.known_order_ids(parents))
    extra = [o for o in (source.get_order(p) for p in missing_parents) if o is not None]
    if extra:
        store_orders(ledger, source.parse_order, extra, run_id=None)
    return len(fetched) + len(extra)
