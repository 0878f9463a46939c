"""The write step: every NAV order this run matched records to, one writer per order across all
runs, orders side by side (an order's own PATCHes one after another), and the orders' results
recorded in the ledger a few dozen at a time, each PATCH journalled before it is sent."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shipnav_dagster.core.outcomes import OrderResult, change_rows, record_outcomes
from shipnav_dagster.ledger import journal
from shipnav_dagster.ledger.decisions import SettledOrder
from shipnav_dagster.ledger.repository import Ledger, Loaded, OrderRecords
from shipnav_dagster.nav.batch import MAX_OPERATIONS
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import POSTED_SELECT, SALES_ORDER_SELECT
from shipnav_dagster.sync.order_writer import OrderState, OrderWriter, WriteOptions
from shipnav_dagster.sync.patch_batcher import PatchBatcher
from shipnav_dagster.sync.recovery import settle_dead_runs

ORDER_BATCH = 2000
SAMPLE = 50
# Finished orders are recorded this many at a time (or once the oldest has waited SETTLE_SECONDS):
# one ledger transaction instead of one per order and one per PATCH. Their PATCHes are in the
# journal from before they were sent, so a run that dies first loses no audit: the next run
# confirms them by re-reading NAV.
SETTLE_ORDERS = 64
SETTLE_SECONDS = 2.0

__all__ = ["WriteOptions", "WriteSummary", "write_back"]


@dataclass
class WriteSummary:
    """Counts and a bounded sample (the full record is the ledger's): memory stays flat."""

    counts: Counter[str] = field(default_factory=Counter)
    sample: list[OrderResult] = field(default_factory=list)
    first_failure: str | None = None
    patches: int = 0
    busy: list[str] = field(default_factory=list)  # orders another live run is writing
    recovered: int = 0  # journal entries of dead runs settled by this run
    batches: int = 0  # $batch requests sent

    @property
    def orders(self) -> int:
        return sum(self.counts.values())

    def count(self, outcome: str) -> int:
        return self.counts[outcome]

    def add(self, result: OrderResult) -> None:
        self.counts[result.outcome] += 1
        if result.outcome == "failed" and self.first_failure is None:
            self.first_failure = result.reason
        if len(self.sample) < SAMPLE or result.outcome != "already_correct":
            # The sample shows what was not plainly fine first; without the plans.
            self.sample.append(OrderResult(result.nav_order_no, result.outcome, result.reason))
            self.sample = sorted(self.sample, key=lambda r: r.outcome == "already_correct")[:SAMPLE]


def write_back(
    ledger: Ledger,
    nav: NavClient,
    options: WriteOptions,
    *,
    run_id: str,
    nav_order_nos: Sequence[str],
    dead_runs: Collection[str] = (),
    extra_records: Mapping[str, Sequence[str]] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> WriteSummary:
    """``extra_records``: records to plan with, by NAV order, beyond those the ledger has matched
    to it (a dry run's fresh matches)."""
    summary = WriteSummary()
    patches_before = nav.stats.patch
    if not options.dry_run:
        summary.recovered = settle_dead_runs(ledger, nav, dead_runs=dead_runs, chunk=options.chunk, log=log)
    batcher = (
        PatchBatcher(nav, on_unsupported=lambda why: log(f"NAV has no $batch ({why}): single PATCHes"))
        if (options.batch and not options.dry_run)
        else None
    )
    writer = OrderWriter(nav, ledger, options, run_id=run_id, batcher=batcher)
    settler = _Settler(ledger, summary, run_id=run_id, dry_run=not options.record_state)

    # One pool for the whole step: the next batch is read while this one is being written. NAV
    # sees at most max_concurrency requests at a time (the client's own limit); twice as many
    # workers keep that many PATCHes in flight while the others plan and journal their orders.
    # With $batch, enough orders are written at once to fill a batch.
    workers = 2 * max(options.max_concurrency, MAX_OPERATIONS) if batcher else 2 * options.max_concurrency
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[str, Future[None]]] = []
        try:
            for batch in _batches(
                ledger, nav, options, run_id, nav_order_nos, dead_runs, extra_records or {}, summary
            ):
                pending += [(no, pool.submit(writer.write, no, state, settler.add)) for no, state in batch]
                # At most one batch read ahead of the writes: what is read waits in memory.
                pending = _collect(pending, summary, keep=ORDER_BATCH)
                log(f"writing {len(batch)} NAV orders")
            _collect(pending, summary, keep=0)
        finally:
            settler.flush()
    if batcher is not None:
        batcher.close()
        summary.batches = batcher.batches
    ledger.release_orders(run_id, list(nav_order_nos))
    summary.patches = nav.stats.patch - patches_before
    return summary


class _Settler:
    """Records finished orders in the ledger in groups (see SETTLE_ORDERS), from the workers."""

    def __init__(self, ledger: Ledger, summary: WriteSummary, *, run_id: str, dry_run: bool) -> None:
        self.ledger = ledger
        self.summary = summary
        self.run_id = run_id
        self.dry_run = dry_run
        self._lock = threading.Lock()
        self._orders: list[SettledOrder] = []
        self._applied: list[journal.Applied] = []
        self._since = 0.0

    def add(self, result: OrderResult, state: OrderState, applied: list[journal.Applied]) -> None:
        records = state.records
        order = SettledOrder(
            result.nav_order_no,
            change_rows(result, records.records, applied_recorded=True),
            record_outcomes(result, records.records, records.pending, records.versions),
        )
        with self._lock:
            self.summary.add(result)
            if not self._orders:
                self._since = time.monotonic()
            self._orders.append(order)
            self._applied += applied
            if len(self._orders) < SETTLE_ORDERS and time.monotonic() - self._since < SETTLE_SECONDS:
                return
        self.flush()

    def flush(self) -> None:
        with self._lock:
            orders, applied = self._orders, self._applied
            self._orders, self._applied = [], []
        if orders or applied:
            journal.settle_orders(self.ledger, orders, applied, run_id=self.run_id, dry_run=self.dry_run)


def _collect(
    pending: list[tuple[str, Future[None]]], summary: WriteSummary, *, keep: int
) -> list[tuple[str, Future[None]]]:
    """Wait for the oldest tasks until at most ``keep`` are unfinished, and surface errors of
    finished ones (a bug, not a NAV answer: those are results)."""
    left = []
    for index, (no, future) in enumerate(pending):
        if future.done() or len(pending) - index > keep:
            future.result()
        else:
            left.append((no, future))
    return left


def _batches(
    ledger: Ledger,
    nav: NavClient,
    options: WriteOptions,
    run_id: str,
    nos: Sequence[str],
    dead_runs: Collection[str],
    extra: Mapping[str, Sequence[str]],
    summary: WriteSummary,
) -> Iterator[list[tuple[str, OrderState]]]:
    """Orders in batches, each with what NAV and the ledger hold for it, read in chunks."""
    for start in range(0, len(nos), ORDER_BATCH):
        wanted = list(nos[start : start + ORDER_BATCH])
        held = ledger.claim_orders(run_id, wanted, dead_runs=dead_runs)
        summary.busy += [no for no in wanted if no not in held]
        batch = [no for no in wanted if no in held]
        if not batch:
            continue
        entities = ledger.nav_orders(batch)
        missing = [no for no in batch if no not in entities]
        if missing:
            for e in nav.find_sales_orders("No", missing, select=SALES_ORDER_SELECT, chunk=options.chunk):
                entities[e["No"]] = e
        posted: dict[str, list[dict[str, Any]]] = {}
        for p in nav.posted_shipments_for_orders(batch, select=POSTED_SELECT, chunk=options.chunk):
            posted.setdefault(p.get("Order_No") or "", []).append(p)
        records = ledger.records_of_nav_orders(batch)
        for no in batch:
            if extra.get(no):
                _add(records.setdefault(no, OrderRecords()), ledger.load_versioned(extra[no]))
        yield [
            (no, OrderState(entities.get(no), posted.get(no, []), records.get(no, OrderRecords())))
            for no in batch
        ]


def _add(group: OrderRecords, loaded: Loaded) -> None:
    known = {r.record_key for r in group.records}
    for record in loaded.records:
        if record.record_key not in known:
            group.records.append(record)
            group.versions[record.record_key] = loaded.versions[record.record_key]
        group.pending.add(record.record_key)
