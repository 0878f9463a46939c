"""Match the ledger's open records to NAV sales orders, asking NAV only for what can match."""

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from shipnav_dagster.core.matching import (
    NavIndex,
    PostedIndex,
    RecordKeys,
    fold,
    match_posted,
    match_record,
    record_keys,
)
from shipnav_dagster.core.model import QUEUED_STATUSES, MatchDecision, RecordStatus, ShipRecord
from shipnav_dagster.core.outcomes import FailureKind, Outcome
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import POSTED_SELECT, SALES_ORDER_SELECT, nav_order, posted_shipment
from shipnav_dagster.nav.errors import NavError

BATCH = 5000  # records decided per round: bounds memory, costs one partial filter chunk each


SAMPLE = 50


@dataclass
class MatchSummary:
    """Counts and a bounded sample: the decisions themselves are in the ledger, and keeping
    100,000 of them here would cost more memory than the whole run may use."""

    counts: Counter[str] = field(default_factory=Counter)
    tiers: Counter[int] = field(default_factory=Counter)
    sample: list[MatchDecision] = field(default_factory=list)
    not_unique: list[str] = field(default_factory=list)  # matched with other than one candidate
    nav_lookups: int = 0
    rechecked: int = 0  # records that were waiting (NAV order not there yet, failed) and asked again
    failed: list[str] = field(default_factory=list)  # queued because NAV could not be asked
    error: str | None = None
    # NAV order -> the records this run matched to it (a dry run writes from these: it changes
    # no record, so the ledger does not know the matches).
    matched: dict[str, list[str]] = field(default_factory=dict)

    @property
    def decided(self) -> int:
        return sum(self.counts.values())

    def count(self, outcome: str) -> int:
        return self.counts[outcome]

    def add(self, decisions: Sequence[MatchDecision]) -> None:
        for d in decisions:
            self.counts[d.outcome] += 1
            if d.outcome == "matched":
                self.matched.setdefault(str(d.nav_order_no), []).append(d.record_key)
                self.tiers[d.tier or 0] += 1
                if len(d.candidates) != 1:
                    self.not_unique.append(d.record_key)
        # The sample shows the interesting ones first: what was not written, and why.
        pool = sorted([*self.sample, *decisions], key=lambda d: d.outcome == "matched")
        self.sample = pool[:SAMPLE]


class NavIndexer:
    """Fetches NAV orders tier by tier: a weaker tier is asked only for records still unresolved.

    A value longer than the NAV field it is compared with can never match and is never sent
    (NAV refuses the whole filter); a value NAV refuses anyway is isolated by the client. Both
    are kept in ``unusable`` with the reason, for the decisions of the records that carry them.
    """

    def __init__(self, nav: NavClient, *, chunk: int, lengths: Mapping[str, int]) -> None:
        self.nav = nav
        self.chunk = chunk
        self.lengths = lengths
        self.entities: dict[str, dict[str, Any]] = {}
        self.posted: dict[str, dict[str, Any]] = {}  # posted shipments of deleted orders
        self.unusable: dict[str, str] = {}  # folded value -> why it was not looked up
        self.lookups = 0

    def _fetch(self, field_name: str, values: Sequence[object]) -> None:
        if not values:
            return
        limit = self.lengths.get(field_name)
        sendable = []
        for value in values:
            text = str(value)
            if limit is not None and isinstance(value, str) and len(text) > limit:
                self.unusable[fold(text)] = (
                    f"{text!r} has {len(text)} characters and NAV's {field_name} holds {limit}: it cannot "
                    "match and is not sent"
                )
            else:
                sendable.append(value)
        before = self.nav.stats.get
        found = self.nav.lookup(
            self.nav.sales_order_service, field_name, sendable, select=SALES_ORDER_SELECT, chunk=self.chunk
        )
        self.lookups += self.nav.stats.get - before
        for entity in found.rows:
            self.entities[entity["No"]] = entity
        for value, why in found.refused.items():
            self.unusable[fold(value)] = f"NAV refused {value!r} as a {field_name} filter ({why})"

    def index(self, dates: Sequence[date] = ()) -> NavIndex:
        return NavIndex.build((nav_order(e) for e in self.entities.values()), dates_loaded=dates)

    def decide(self, records: Sequence[ShipRecord], keys: dict[str, RecordKeys]) -> list[MatchDecision]:
        # NAV stores Code fields (No, External Document No.) in upper case.
        self._fetch(
            "External_Document_No", sorted({v.upper() for k in keys.values() for v in k.external_values})
        )
        index = self.index()
        by_key = {r.record_key: r for r in records}
        decided = {k: match_record(r, keys[k], index, self.unusable) for k, r in by_key.items()}
        open_keys = [k for k, d in decided.items() if d.outcome == "no_order_yet"]
        self._fetch("No", sorted({n.upper() for k in open_keys for n in keys[k].order_numbers}))
        index = self.index()
        for k in open_keys:
            decided[k] = match_record(by_key[k], keys[k], index, self.unusable)
        open_keys = [k for k, d in decided.items() if d.outcome == "no_order_yet"]
        dates = sorted({d for k in open_keys if keys[k].names and (d := keys[k].order_date) is not None})
        self._fetch("Order_Date", dates)
        index = self.index(dates)
        for k in open_keys:
            decided[k] = match_record(by_key[k], keys[k], index, self.unusable)
        open_keys = [k for k, d in decided.items() if d.outcome == "no_order_yet"]
        self._decide_deleted(open_keys, by_key, keys, decided)
        return [decided[r.record_key] for r in records]

    def _decide_deleted(
        self,
        open_keys: Sequence[str],
        by_key: Mapping[str, ShipRecord],
        keys: Mapping[str, RecordKeys],
        decided: dict[str, MatchDecision],
    ) -> None:
        """Records no sales order matches may belong to an order posting deleted: its posted
        shipments keep Order_No and External_Document_No (posting copies the header)."""
        if not open_keys:
            return
        self._fetch_posted(
            "External_Document_No", sorted({v.upper() for k in open_keys for v in keys[k].external_values})
        )
        self._fetch_posted("Order_No", sorted({n.upper() for k in open_keys for n in keys[k].order_numbers}))
        index = PostedIndex.build(posted_shipment(p) for p in self.posted.values())
        for k in open_keys:
            found = match_posted(by_key[k], keys[k], index)
            if found is not None:
                decided[k] = found

    def _fetch_posted(self, field_name: str, values: Sequence[str]) -> None:
        limit = self.lengths.get(field_name)
        sendable = [v for v in values if limit is None or len(v) <= limit]
        if not sendable:
            return
        before = self.nav.stats.get
        found = self.nav.lookup(
            self.nav.posted_shipment_service, field_name, sendable, select=POSTED_SELECT, chunk=self.chunk
        )
        self.lookups += self.nav.stats.get - before
        for entity in found.rows:
            self.posted[entity["No"]] = entity


# NAV's lengths of the fields the matcher filters on, when $metadata does not say: Sales Header
# No. is Code[20], External Document No. Code[35], Sell-to Customer Name Text[100] (Text[50] in
# NAV 2018), in NAV 2013-2018 and Business Central alike.
DEFAULT_LENGTHS = {"No": 20, "External_Document_No": 35, "Sell_to_Customer_Name": 100, "Order_No": 20}


def lookup_lengths(nav: NavClient) -> dict[str, int]:
    """The field lengths to respect in lookups: $metadata's, else the standard ones."""
    return DEFAULT_LENGTHS | {
        k: v for k, v in nav.field_lengths(nav.sales_order_service).items() if k in DEFAULT_LENGTHS
    }


def match_open_records(
    ledger: Ledger,
    nav: NavClient,
    *,
    run_id: str | None,
    chunk: int,
    max_age: timedelta,
    keys: Sequence[str],
    dry_run: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> MatchSummary:
    """Decide exactly ``keys`` (claimed by this run) and store each decision with its reason.

    ``dry_run``: decisions are recorded as such (decisions and events) and no record changes."""
    work = list(keys)
    summary = MatchSummary()
    if not work:
        return summary  # nothing to decide: not even $metadata is read
    lengths = lookup_lengths(nav)
    for start in range(0, len(work), BATCH):
        loaded = ledger.load_versioned(work[start : start + BATCH])
        records = loaded.records
        summary.rechecked += sum(1 for s in loaded.statuses.values() if s in QUEUED_STATUSES)
        orders = ledger.order_infos(r.order_id for r in records if r.order_id is not None)
        rkeys = {r.record_key: record_keys(r, orders) for r in records}
        indexer = NavIndexer(nav, chunk=chunk, lengths=lengths)
        try:
            decisions = indexer.decide(records, rkeys)
        except (NavError, httpx.TransportError) as exc:
            # NAV is down or refusing us as a whole: not these records' fault. They wait for the
            # next run that reaches NAV (no backoff grows), and the run reports it loudly.
            reason = f"NAV lookup failed; the next run that reaches NAV decides it: {exc}"
            if not dry_run:
                ledger.set_outcomes(
                    [
                        Outcome(
                            r.record_key,
                            RecordStatus.FAILED,
                            reason,
                            failure=FailureKind.OUTAGE,
                            version=loaded.versions.get(r.record_key),
                        )
                        for r in records
                    ],
                    run_id=run_id,
                )
            summary.failed += [r.record_key for r in records]
            summary.error = str(exc)
            log(reason)
            continue
        ledger.record_decisions(
            decisions, run_id=run_id, max_age=max_age, versions=loaded.versions, dry_run=dry_run
        )
        matched = {d.nav_order_no for d in decisions if d.outcome == "matched"}
        ledger.save_nav_orders([e for no, e in indexer.entities.items() if no in matched], run_id=run_id)
        summary.add(decisions)
        summary.nav_lookups += indexer.lookups
        log(f"decided {len(decisions)} records with {indexer.lookups} NAV lookups")
    return summary
