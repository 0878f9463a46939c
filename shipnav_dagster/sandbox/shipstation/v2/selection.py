"""How list query parameters select V1 records: one predicate per parameter given.

Text matches ignore case (ShipStation's SQL collation does); date-time bounds are inclusive
("on or after" / "on or before") and compare instants in UTC.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shipnav_dagster.sandbox.shipstation.v2.ids import se_id
from shipnav_dagster.sandbox.shipstation.v2.times import pacific_instant

Record = dict[str, Any]
Predicate = Callable[[Record], bool]


def id_is(wanted: str | None, read: Callable[[Record], str | None]) -> Predicate | None:
    return None if wanted is None else (lambda r: read(r) == wanted)


def text_is(wanted: str | None, read: Callable[[Record], object]) -> Predicate | None:
    if wanted is None:
        return None
    lowered = wanted.lower()
    return lambda r: str(read(r) or "").lower() == lowered


def contains(wanted: str | None, read: Callable[[Record], object]) -> Predicate | None:
    if wanted is None:
        return None
    lowered = wanted.lower()
    return lambda r: lowered in str(read(r) or "").lower()


def between(
    start: datetime | None, end: datetime | None, read: Callable[[Record], datetime | None]
) -> list[Predicate]:
    """Inclusive bounds; a record without the value (e.g. no void) never matches a bound on it."""
    out: list[Predicate] = []
    if start is not None:
        out.append(lambda r: (v := read(r)) is not None and v >= start)
    if end is not None:
        out.append(lambda r: (v := read(r)) is not None and v <= end)
    return out


def nothing(given: str | None) -> Predicate | None:
    """A filter on something the sandbox never has (rates, pickups, sales orders): no match."""
    return None if given is None else (lambda _r: False)


def select(records: Mapping[int, Record], predicates: list[Predicate | None]) -> list[Record]:
    active = [p for p in predicates if p is not None]
    return [r for r in records.values() if r is not None and all(p(r) for p in active)]


def se_id_of(field: str) -> Callable[[Record], str | None]:
    """Reads a V1 integer id field as its V2 ``se-`` id."""

    def read(record: Record) -> str | None:
        value = record.get(field)
        return se_id(value) if isinstance(value, int) else None

    return read


def created(record: Record) -> datetime | None:
    return pacific_instant(record.get("createDate"))


def modified(record: Record) -> datetime | None:
    return pacific_instant(record.get("modifyDate"))


def store_of(record: Record) -> int | None:
    return (record.get("advancedOptions") or {}).get("storeId")
