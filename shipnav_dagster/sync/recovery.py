"""Settling the journal of runs that died between a PATCH and its record: NAV is read back and
each intended change is recorded as applied by the run that sent it ("confirmed after a crash")
when NAV holds its values, or as not applied otherwise. The audit trail then never says
"nothing written" for a value shipnav wrote."""

from collections import defaultdict
from collections.abc import Callable, Collection
from typing import Any

from shipnav_dagster.ledger import journal
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import LINE_SELECT, POSTED_SELECT, SALES_ORDER_SELECT
from shipnav_dagster.sync.order_writer import same


def settle_dead_runs(
    ledger: Ledger,
    nav: NavClient,
    *,
    dead_runs: Collection[str],
    chunk: int,
    log: Callable[[str], None] = lambda _m: None,
) -> int:
    intents = journal.unsettled(ledger, dead_runs=dead_runs)
    if not intents:
        return 0
    orders = sorted({i.nav_order_no for i in intents if i.entity == "SalesOrder"})
    shipments = sorted({i.nav_order_no for i in intents if i.entity == "PostedSalesShipment"})
    current: dict[tuple[str, str], dict[str, Any]] = {}
    entities = nav.find_sales_orders("No", orders, select=SALES_ORDER_SELECT, chunk=chunk) if orders else []
    for e in entities:
        current[("SalesOrder", e["No"])] = e
    if shipments:
        for p in nav.posted_shipments_for_orders(shipments, select=POSTED_SELECT, chunk=chunk):
            current[("PostedSalesShipment", p["No"])] = p
    for no in sorted({i.nav_order_no for i in intents if i.entity == "SalesLine"}):
        for line in nav.sales_lines(no, select=LINE_SELECT):
            current[("SalesLine", f"{no}/{line.get('Line_No')}")] = line
    # The orders read now are NAV's newest state: the write step plans from these, not from a
    # snapshot older than the dead run's PATCH (which would only meet a stale ETag).
    ledger.save_nav_orders(entities, run_id=None)
    changes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for intent in intents:
        entity = current.get((intent.entity, intent.entity_key))
        landed = entity is not None and all(same(entity.get(k), v) for k, v in intent.changes.items())
        state = journal.CONFIRMED if landed else journal.NOT_APPLIED
        journal.settle(
            ledger,
            intent.id,
            state,
            f"run {intent.run_id} ended before recording this PATCH; NAV read back "
            + ("holds its values" if landed else "does not hold its values"),
        )
        if landed:
            changes[intent.run_id] += [
                {
                    "nav_order_no": intent.nav_order_no,
                    "entity": intent.entity,
                    "entity_key": intent.entity_key,
                    "field": name,
                    "before": intent.before.get(name),
                    "after": value,
                    "status": "applied",
                    "reason": "confirmed after a crash: the run sent this PATCH and NAV holds the value",
                    "record_keys": intent.record_keys,
                    "run_id": intent.run_id,
                }
                for name, value in intent.changes.items()
            ]
    for run_id, rows in changes.items():
        ledger.record_changes(rows, run_id=run_id)
    log(f"settled {len(intents)} PATCHes of runs that ended before recording them")
    return len(intents)
