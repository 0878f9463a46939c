"""Raw ShipStation payloads into the ledger, each parsed on its own by its generation's parser.

The one intake path of the poll and the webhook drain: a payload that cannot be parsed is stored
raw with status ``invalid`` and the exact problem, and never stops the others. Which parser reads
a payload is the source's business (``ShipStationSource.parser`` / ``parse_order``).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shipnav_dagster.core.model import OrderInfo, ReceivedRecord
from shipnav_dagster.ledger.repository import Ledger, UpsertResult
from shipnav_dagster.shipstation.records import RecordError

RecordParser = Callable[[object], ReceivedRecord]
OrderParser = Callable[[object], OrderInfo]  # raises RecordError


@dataclass
class OrdersStored:
    changed: list[int] = field(default_factory=list)  # known orders whose payload changed
    unreadable: list[str] = field(default_factory=list)  # what was wrong with each skipped order


def store_records(
    ledger: Ledger, parse: RecordParser, payloads: Iterable[Any], *, run_id: str | None, seen_via: str
) -> UpsertResult:
    return ledger.upsert_records((parse(p) for p in payloads), run_id=run_id, seen_via=seen_via)


def store_orders(
    ledger: Ledger, parse: OrderParser, payloads: Iterable[Any], *, run_id: str | None
) -> OrdersStored:
    """Orders give the matcher its order dates, names and split parents. One that cannot be read
    is skipped with its reason (recorded as an event); its labels can still match by their own
    order number and key."""
    result = OrdersStored()
    readable: list[tuple[OrderInfo, dict[str, Any]]] = []
    for payload in payloads:
        try:
            readable.append((parse(payload), payload))
        except RecordError as exc:
            result.unreadable.append(str(exc))
    if result.unreadable:
        ledger.note_unreadable_orders(result.unreadable, run_id=run_id)
    result.changed = ledger.upsert_orders(readable)
    ledger.reopen_records_of_orders(result.changed, run_id=run_id)
    return result
