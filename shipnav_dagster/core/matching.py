"""Which NAV sales order a ShipStation record belongs to: three tiers, strongest first. Pure.

1. External_Document_No equals the order number, key or id; 2. No equals the order number (a
split suffix ``-N`` stripped); 3. the customer name and the order date (Pacific calendar date).

First hit wins. At each tier, exactly one candidate is a match; several candidates are
``ambiguous`` and stop the search (falling through to a weaker tier could pick the wrong order);
zero candidates move on to the next tier. Nothing at any tier is ``no_order_yet``.
"""

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from shipnav_dagster.core.model import MatchDecision, NavOrder, NavPostedShipment, OrderInfo, ShipRecord

SPLIT_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<n>\d{1,3})$")

# Legal-form words that differ between systems ("Acme, Inc." in NAV, "ACME INC" in ShipStation).
COMPANY_SUFFIXES = frozenset(
    {
        "inc", "incorporated", "llc", "ltd", "limited", "co", "company", "corp", "corporation",
        "plc", "gmbh", "ag", "sa", "sarl", "bv", "nv", "pty", "llp", "lp",
    }
)  # fmt: skip


def normalize_name(name: str | None) -> str:
    """Case, accents, punctuation, whitespace and trailing legal forms do not distinguish names."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("&", " and ")
    text = re.sub(r"['’`]", "", text)  # O'Brien == OBrien == O’Brien
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    while len(words) > 1 and words[-1] in COMPANY_SUFFIXES:
        words.pop()
    return " ".join(words)


def fold(value: object) -> str:
    """NAV Code fields are upper case; compare identifiers case-insensitively, trimmed."""
    return str(value).strip().casefold() if value is not None else ""


def split_base(order_number: str | None) -> str | None:
    """``100038-1`` -> ``100038`` (ShipStation's split-order child numbering)."""
    if not order_number:
        return None
    found = SPLIT_SUFFIX.match(order_number.strip())
    return found.group("base") if found else None


@dataclass(frozen=True)
class RecordKeys:
    """The identifiers one record can be found by in NAV, per tier."""

    external_values: tuple[str, ...]  # tier 1: External_Document_No candidates
    order_numbers: tuple[str, ...]  # tier 2: No candidates
    names: tuple[str, ...]  # tier 3: normalized names
    order_date: date | None


def record_keys(record: ShipRecord, orders: Mapping[int, OrderInfo]) -> RecordKeys:
    order = orders.get(record.order_id) if record.order_id is not None else None
    parent = orders.get(order.parent_id) if order and order.parent_id is not None else None
    number = record.order_number or (order.order_number if order else None)
    numbers: list[str] = [n for n in (number, split_base(number)) if n]
    if parent and parent.order_number:
        numbers.append(parent.order_number)
    external: list[str] = list(numbers)
    if record.order_ref:
        external.append(record.order_ref)  # V2 shipment_id "se-123", beside the number 123 below
    for source in (record, order, parent):
        if source is None:
            continue
        if source.order_key:
            external.append(source.order_key)
        if source.order_id is not None:
            external.append(str(source.order_id))
    if order and order.parent_id is not None:
        external.append(str(order.parent_id))
    names = [
        normalize_name(n)
        for n in (
            record.ship_to_name,
            order.ship_to_name if order else None,
            order.bill_to_name if order else None,
        )
    ]
    return RecordKeys(
        external_values=_unique(external),
        order_numbers=_unique(numbers),
        names=tuple(n for n in _unique(names) if n),
        order_date=order.order_date if order else None,
    )


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        if value and value.strip() and fold(value) not in seen:
            seen[fold(value)] = value.strip()
    return tuple(seen.values())


@dataclass
class LookupRequest:
    """What to ask NAV for: only the values this batch can match on, never every order."""

    external_values: set[str] = field(default_factory=set)
    order_numbers: set[str] = field(default_factory=set)
    order_dates: set[date] = field(default_factory=set)


def lookup_request(keys: Iterable[RecordKeys], *, include_names: bool) -> LookupRequest:
    request = LookupRequest()
    for k in keys:
        request.external_values.update(k.external_values)
        request.order_numbers.update(k.order_numbers)
        if include_names and k.names and k.order_date is not None:
            request.order_dates.add(k.order_date)
    return request


@dataclass(frozen=True)
class NavIndex:
    """NAV orders fetched for one batch, indexed by the fields each tier compares."""

    by_external: Mapping[str, tuple[NavOrder, ...]]
    by_no: Mapping[str, NavOrder]
    by_date: Mapping[date, tuple[NavOrder, ...]]
    dates_loaded: frozenset[date]

    @classmethod
    def build(cls, orders: Iterable[NavOrder], dates_loaded: Iterable[date] = ()) -> "NavIndex":
        unique = {o.no: o for o in orders}
        by_external: dict[str, list[NavOrder]] = {}
        by_date: dict[date, list[NavOrder]] = {}
        for o in unique.values():
            if o.external_document_no.strip():
                by_external.setdefault(fold(o.external_document_no), []).append(o)
            if o.order_date is not None:
                by_date.setdefault(o.order_date, []).append(o)
        return cls(
            by_external={k: tuple(v) for k, v in by_external.items()},
            by_no={fold(no): o for no, o in unique.items()},
            by_date={k: tuple(v) for k, v in by_date.items()},
            dates_loaded=frozenset(dates_loaded),
        )


def _decide(record: ShipRecord, tier: int, found: Sequence[NavOrder], what: str) -> MatchDecision | None:
    distinct = sorted({o.no for o in found})
    if not distinct:
        return None
    if len(distinct) == 1:
        return MatchDecision(
            record_key=record.record_key,
            outcome="matched",
            tier=tier,
            nav_order_no=distinct[0],
            reason=f"tier {tier}: {what}",
            candidates=tuple(distinct),
        )
    return MatchDecision(
        record_key=record.record_key,
        outcome="ambiguous",
        tier=tier,
        reason=f"tier {tier}: {len(distinct)} NAV orders fit ({', '.join(distinct)}) on {what}; "
        "nothing written until exactly one does",
        candidates=tuple(distinct),
    )


def match_record(
    record: ShipRecord, keys: RecordKeys, index: NavIndex, unusable: Mapping[str, str] | None = None
) -> MatchDecision:
    """``unusable``: identifier values (folded) that were not looked up, with why; a decision
    for a record that carries one says so."""
    decision = _match(record, keys, index)
    notes = sorted(
        {why for v in (*keys.external_values, *keys.order_numbers) if (why := (unusable or {}).get(fold(v)))}
    )
    if not notes:
        return decision
    return decision.model_copy(update={"reason": f"{decision.reason} (not looked up: {'; '.join(notes)})"})


def _match(record: ShipRecord, keys: RecordKeys, index: NavIndex) -> MatchDecision:
    if not keys.external_values and not keys.names:
        return MatchDecision(
            record_key=record.record_key,
            outcome="invalid",
            reason="the record carries no ShipStation order number, key or id and no name to match on",
        )
    tier1 = [o for v in keys.external_values for o in index.by_external.get(fold(v), ())]
    decided = _decide(
        record, 1, tier1, "External_Document_No = " + " / ".join(repr(v) for v in keys.external_values)
    )
    if decided:
        return decided
    tier2 = [index.by_no[fold(n)] for n in keys.order_numbers if fold(n) in index.by_no]
    decided = _decide(record, 2, tier2, "No = " + " / ".join(repr(n) for n in keys.order_numbers))
    if decided:
        return decided
    if keys.names and keys.order_date is not None:
        # A NAV order whose External Document No. names another order belongs to that order: the
        # same customer may order twice a day, and only one of the two may be in NAV yet.
        tier3 = [
            o
            for o in index.by_date.get(keys.order_date, ())
            if normalize_name(o.customer_name) in keys.names and not o.external_document_no.strip()
        ]
        decided = _decide(
            record,
            3,
            tier3,
            f"customer name {keys.names[0]!r} and order date {keys.order_date.isoformat()}",
        )
        if decided:
            return decided
    tried = ["External_Document_No", "No"]
    if keys.names and keys.order_date is not None:
        tried.append(f"customer name + order date {keys.order_date.isoformat()}")
    elif not keys.names:
        tried.append("(no customer name for tier 3)")
    else:
        tried.append("(no ShipStation order date for tier 3)")
    return MatchDecision(
        record_key=record.record_key,
        outcome="no_order_yet",
        reason="no NAV sales order found by "
        + ", ".join(tried)
        + f" for ShipStation order {_order_label(record, keys)}",
    )


def _order_label(record: ShipRecord, keys: RecordKeys) -> str:
    """The order as people know it: its number (a V2 label carries none, its order does)."""
    number = record.order_number or (keys.order_numbers[0] if keys.order_numbers else None)
    return str(number or record.order_ref or record.order_id)


def match_records(
    records: Iterable[ShipRecord],
    orders: Mapping[int, OrderInfo],
    index: NavIndex,
    unusable: Mapping[str, str] | None = None,
) -> list[MatchDecision]:
    return [match_record(r, record_keys(r, orders), index, unusable) for r in records]


@dataclass(frozen=True)
class PostedIndex:
    """Posted shipments of orders that posting deleted, by the fields tiers 1 and 2 compare."""

    by_external: Mapping[str, frozenset[str]]  # folded External_Document_No -> Order_No values
    by_order_no: Mapping[str, str]  # folded Order_No -> Order_No

    @classmethod
    def build(cls, shipments: Iterable[NavPostedShipment]) -> "PostedIndex":
        by_external: dict[str, set[str]] = {}
        by_order: dict[str, str] = {}
        for p in shipments:
            if not p.order_no:
                continue
            by_order[fold(p.order_no)] = p.order_no
            if p.external_document_no.strip():
                by_external.setdefault(fold(p.external_document_no), set()).add(p.order_no)
        return cls({k: frozenset(v) for k, v in by_external.items()}, by_order)


def match_posted(record: ShipRecord, keys: RecordKeys, index: PostedIndex) -> MatchDecision | None:
    """For a record no sales order matches: the order posting deleted, found by its posted
    shipments (tier 1 External_Document_No, tier 2 Order_No); None when none fits either."""
    deleted = "; the sales order was deleted by posting, its posted shipments are the target"
    found = sorted({no for v in keys.external_values for no in index.by_external.get(fold(v), ())})
    what = "posted shipment External_Document_No = " + " / ".join(repr(v) for v in keys.external_values)
    decided = _decide_numbers(record, 1, found, what + deleted)
    if decided:
        return decided
    found = sorted({index.by_order_no[fold(n)] for n in keys.order_numbers if fold(n) in index.by_order_no})
    what = "posted shipment Order_No = " + " / ".join(repr(n) for n in keys.order_numbers)
    return _decide_numbers(record, 2, found, what + deleted)


def _decide_numbers(record: ShipRecord, tier: int, nos: Sequence[str], what: str) -> MatchDecision | None:
    return _decide(record, tier, [NavOrder(no=no) for no in nos], what)
