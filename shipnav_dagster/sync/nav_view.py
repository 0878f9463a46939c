"""Shipped records beside what NAV holds for them now: read back from NAV, never remembered.

Only the NAV orders the given records were matched to are read, with their posted shipments,
in ``$filter`` chunks on one field (``No``, then ``Order_No``): never every NAV order. The
month-end report and the reconciliation are both built from :func:`review`.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shipnav_dagster.core.model import NavOrder, NavPostedShipment
from shipnav_dagster.core.tracking_state import DONE, TrackingState, nav_problem, next_step, tracking_state
from shipnav_dagster.ledger.reports import ShippedRecord
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.entities import POSTED_SELECT, SALES_ORDER_SELECT, nav_order, posted_shipment


@dataclass(frozen=True)
class NavHolding:
    """One NAV sales order as NAV holds it now (None once posting deleted it) and its posted
    shipments."""

    order: NavOrder | None
    posted: tuple[NavPostedShipment, ...] = ()


@dataclass(frozen=True)
class RecordView:
    """A shipped record, what NAV holds for it, its state, why, and what a person does next."""

    record: ShippedRecord
    holding: NavHolding | None  # None when the record has no NAV order (queued, ambiguous...)
    state: TrackingState
    reason: str
    next_step: str


def read_holdings(nav: NavClient, order_nos: Iterable[str], *, chunk: int) -> dict[str, NavHolding]:
    """What NAV holds for exactly these orders: two chunked ``$filter`` lookups."""
    wanted = sorted({no for no in order_nos if no})
    if not wanted:
        return {}
    orders = {
        e["No"]: nav_order(e)
        for e in nav.find_sales_orders("No", wanted, select=SALES_ORDER_SELECT, chunk=chunk)
    }
    posted: dict[str, list[NavPostedShipment]] = {}
    for entity in nav.posted_shipments_for_orders(wanted, select=POSTED_SELECT, chunk=chunk):
        shipment = posted_shipment(entity)
        posted.setdefault(shipment.order_no, []).append(shipment)
    return {
        no: NavHolding(orders.get(no), tuple(sorted(posted.get(no, []), key=lambda p: p.no))) for no in wanted
    }


def review(
    ledger: Ledger,
    nav: NavClient,
    records: Sequence[ShippedRecord],
    *,
    chunk: int,
    tracking_max_length: int,
) -> list[RecordView]:
    """Each record's state: a record the ledger calls written is in NAV only if NAV, read now,
    holds its order's master tracking (on the order or a posted shipment)."""
    holdings = read_holdings(nav, (r.nav_order_no for r in records if r.nav_order_no), chunk=chunk)
    done_orders = sorted({r.nav_order_no for r in records if r.nav_order_no and r.status in DONE})
    of_order = ledger.records_of_nav_orders(done_orders)
    problems = {
        no: nav_problem(
            holdings[no].order,
            holdings[no].posted,
            of_order[no].records if no in of_order else [],
            tracking_max_length,
        )
        for no in done_orders
    }
    views = []
    for r in records:
        holding = holdings.get(r.nav_order_no) if r.nav_order_no else None
        problem = problems.get(r.nav_order_no) if r.nav_order_no and r.status in DONE else None
        state = tracking_state(r.status, problem)
        if state is TrackingState.MISSING:
            reason = problem or f"status {r.status!r} with no recorded outcome"
        else:
            reason = r.reason or ""
        views.append(RecordView(r, holding, state, reason, next_step(state, r.status, reason, r.record_key)))
    return views
