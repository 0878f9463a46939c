"""Read-compare-write each matched NAV order with If-Match, concurrently across orders only."""

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from shipnav_dagster.core.carriers import CarrierMapping
from shipnav_dagster.core.model import ShipRecord
from shipnav_dagster.core.outcomes import OrderResult, change_rows, finished, record_outcomes
from shipnav_dagster.core.planning import EntityPatch, OrderPlan, plan_order
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import (
    LINE_SELECT,
    POSTED_SELECT,
    SALES_ORDER_SELECT,
    nav_order,
    posted_shipment,
    sales_line,
)
from shipnav_dagster.nav.errors import NavConflictError, NavError, NavNotFoundError, NavValidationError

MAX_CONFLICT_ROUNDS = 3
AGENT_REFUSED = "NAV refused the mapped Shipping Agent code (Internal_InvalidTableRelation)"
ORDER_BATCH = 2000


@dataclass
class WriteOptions:
    mapping: CarrierMapping
    tracking_max_length: int
    write_line_quantities: bool
    dry_run: bool
    max_concurrency: int
    chunk: int


SAMPLE = 50


@dataclass
class WriteSummary:
    """Counts and a bounded sample (the full record is the ledger's): memory stays flat."""

    counts: Counter[str] = field(default_factory=Counter)
    sample: list[OrderResult] = field(default_factory=list)
    first_failure: str | None = None
    patches: int = 0

    @property
    def orders(self) -> int:
        return sum(self.counts.values())

    def count(self, outcome: str) -> int:
        return self.counts[outcome]

    def add(self, results: Sequence[OrderResult]) -> None:
        for r in results:
            self.counts[r.outcome] += 1
            if r.outcome == "failed" and self.first_failure is None:
                self.first_failure = r.reason
        pool = sorted([*self.sample, *results], key=lambda r: r.outcome == "already_correct")
        self.sample = [
            OrderResult(r.nav_order_no, r.outcome, r.reason) for r in pool[:SAMPLE]
        ]  # without their plans


class OrderWriter:
    def __init__(self, nav: NavClient, options: WriteOptions) -> None:
        self.nav = nav
        self.options = options

    def _plan(
        self,
        entity: dict[str, Any],
        records: Sequence[ShipRecord],
        posted: Sequence[dict[str, Any]],
        drop_agent: bool,
    ) -> OrderPlan:
        order = nav_order(entity)
        lines = None
        if self.options.write_line_quantities:
            lines = [sales_line(x) for x in self.nav.sales_lines(order.no, select=LINE_SELECT)]
        return plan_order(
            order,
            records,
            self.options.mapping,
            tracking_max_length=self.options.tracking_max_length,
            posted=[posted_shipment(p) for p in posted],
            lines=lines,
            write_line_quantities=self.options.write_line_quantities,
            agent_refused=AGENT_REFUSED if drop_agent else None,
        )

    def _apply(self, patch: EntityPatch) -> None:
        if patch.entity == "SalesOrder":
            self.nav.patch_sales_order(patch.key, patch.etag, patch.changes)
        elif patch.entity == "PostedSalesShipment":
            self.nav.patch_posted_shipment(patch.key, patch.etag, patch.changes)
        else:
            order_no, _, line_no = patch.key.rpartition("/")
            self.nav.patch_sales_line(order_no, int(line_no), patch.etag, patch.changes)

    def _reread(self, no: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        entity = self.nav.get_sales_order(no, select=SALES_ORDER_SELECT)
        posted = self.nav.posted_shipments_for_orders([no], select=POSTED_SELECT, chunk=self.options.chunk)
        return entity, posted

    def _landed(self, patch: EntityPatch, order: dict[str, Any], posted: Sequence[dict[str, Any]]) -> bool:
        if patch.entity == "SalesOrder":
            current: dict[str, Any] | None = order
        elif patch.entity == "PostedSalesShipment":
            current = next((p for p in posted if p.get("No") == patch.key), None)
        else:
            order_no, _, line_no = patch.key.rpartition("/")
            lines = self.nav.sales_lines(order_no, select=LINE_SELECT)
            current = next((ln for ln in lines if str(ln.get("Line_No")) == line_no), None)
        return current is not None and all(_same(current.get(k), v) for k, v in patch.changes.items())

    def write(
        self, entity: dict[str, Any], records: Sequence[ShipRecord], posted: Sequence[dict[str, Any]]
    ) -> OrderResult:
        """Plan from what NAV holds, PATCH what differs; on a conflict re-read and decide again."""
        no = entity["No"]
        applied: list[EntityPatch] = []
        drop_agent = False
        for _round in range(MAX_CONFLICT_ROUNDS):
            plan = None
            in_flight: EntityPatch | None = None
            try:
                plan = self._plan(entity, records, posted, drop_agent)
                if self.options.dry_run:
                    return OrderResult(no, "dry_run", "dry run: nothing written", plan)
                # Sales lines first: a header PATCH that changes Shipment_Date or the agent codes is
                # pushed to the lines by NAV (UpdateSalesLinesByFieldNo), which gives every line a
                # new ETag, so line PATCHes sent after it always failed with 409 and cost a full
                # re-read round. A line PATCH (Qty_to_Ship) leaves the header's ETag alone.
                for patch in sorted(plan.patches, key=lambda p: p.entity != "SalesLine"):
                    in_flight = patch
                    self._apply(patch)
                    applied.append(patch)
                    in_flight = None
                return finished(no, plan, applied)
            except NavConflictError:
                fresh, posted = self._reread(no)
                if fresh is None:
                    return OrderResult(
                        no, "failed", f"NAV order {no} disappeared while writing", plan, applied, retry=True
                    )
                # A PATCH whose response was lost is retried by the client and then meets 409 on
                # its own, now stale, ETag. If NAV holds exactly the values it sent, it landed:
                # record it as written (the next plan sees nothing to do and would otherwise
                # report "already correct", losing the write and its before/after values).
                if in_flight is not None and self._landed(in_flight, fresh, posted):
                    applied.append(in_flight)
                entity = fresh
            except NavValidationError as exc:
                agent_refused = exc.code == "Internal_InvalidTableRelation" and not drop_agent
                if agent_refused:
                    drop_agent = True
                    fresh, posted = self._reread(no)
                    entity = fresh or entity
                    continue
                if exc.code == "Application_FieldValidationException":
                    # Status changed (Released) since the read: decide again from NAV's state.
                    fresh, posted = self._reread(no)
                    if fresh is not None and fresh.get("Status") != entity.get("Status"):
                        entity = fresh
                        continue
                return OrderResult(
                    no, "parked", f"NAV refused the change: {exc}", plan, applied, error=str(exc)
                )
            except NavNotFoundError as exc:
                return OrderResult(
                    no,
                    "failed",
                    f"NAV order {no} not found: {exc}",
                    plan,
                    applied,
                    error=str(exc),
                    retry=True,
                )
            except (NavError, httpx.TransportError) as exc:
                return OrderResult(
                    no,
                    "failed",
                    f"NAV write failed, queued for retry: {exc}",
                    plan,
                    applied,
                    error=str(exc),
                    retry=True,
                )
        return OrderResult(
            no,
            "failed",
            f"NAV kept reporting concurrent changes to order {no} "
            f"({MAX_CONFLICT_ROUNDS} rounds); queued for retry",
            None,
            applied,
            retry=True,
        )


def _same(nav_value: Any, sent: Any) -> bool:
    """NAV echoes what was sent, possibly as another JSON type (10 vs 10.0, dates as text)."""
    if isinstance(sent, int | float) and not isinstance(sent, bool):
        try:
            return float(nav_value) == float(sent)
        except (TypeError, ValueError):
            return False
    return str(nav_value if nav_value is not None else "").strip() == str(sent).strip()


def _write_task(
    writer: OrderWriter,
    no: str,
    entity: dict[str, Any] | None,
    records: Sequence[ShipRecord],
    posted: Sequence[dict[str, Any]],
) -> OrderResult:
    if entity is None:
        return OrderResult(no, "failed", f"NAV order {no} no longer exists", retry=True)
    return writer.write(entity, records, posted)


def write_back(
    ledger: Ledger,
    nav: NavClient,
    options: WriteOptions,
    *,
    run_id: str | None,
    nav_order_nos: Sequence[str],
    log: Callable[[str], None] = lambda _m: None,
) -> WriteSummary:
    summary = WriteSummary()
    todo = list(nav_order_nos)
    writer = OrderWriter(nav, options)
    patches_before = nav.stats.patch
    for start in range(0, len(todo), ORDER_BATCH):
        batch = todo[start : start + ORDER_BATCH]
        entities = ledger.nav_orders(batch)
        missing = [no for no in batch if no not in entities]
        if missing:
            for e in nav.find_sales_orders("No", missing, select=SALES_ORDER_SELECT, chunk=options.chunk):
                entities[e["No"]] = e
        posted: dict[str, list[dict[str, Any]]] = {}
        for p in nav.posted_shipments_for_orders(batch, select=POSTED_SELECT, chunk=options.chunk):
            posted.setdefault(p.get("Order_No") or "", []).append(p)
        records = ledger.records_of_nav_orders(batch)
        pending = ledger.pending_keys_of_orders(batch)

        tasks = [(no, entities.get(no), records.get(no, []), posted.get(no, [])) for no in batch]
        # One task per order: an order's PATCHes are sequential, orders run side by side.
        with ThreadPoolExecutor(max_workers=options.max_concurrency) as pool:
            results = list(pool.map(lambda task: _write_task(writer, *task), tasks))
        changes: list[dict[str, Any]] = []
        outcomes = []
        for result in results:
            recs = records.get(result.nav_order_no, [])
            changes += change_rows(result, recs)
            outcomes += record_outcomes(result, recs, pending)
        ledger.set_outcomes(outcomes, run_id=run_id)
        ledger.record_changes(changes, run_id=run_id)
        summary.add(results)
        log(f"wrote back {len(results)} NAV orders")
    summary.patches = nav.stats.patch - patches_before
    return summary
