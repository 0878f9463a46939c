"""Is every shipped ShipStation record of a sliding window reflected in NAV, or explained?

Each non-voided outbound label and fulfillment must either be in NAV (read back now, not
remembered) or be waiting for a recorded reason (queued, ambiguous, parked). Anything else is a
gap. Every record not in NAV is listed with the next step, gaps and explained ones alike.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from shipnav_dagster.core.tracking_state import TrackingState
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.sync.nav_view import RecordView, review


@dataclass(frozen=True)
class Gap:
    """A record not in NAV: why, and what a person does next."""

    record_key: str
    nav_order_no: str | None
    state: TrackingState
    problem: str
    next_step: str


@dataclass
class Reconciliation:
    checked: int
    reflected: int
    explained: list[Gap]  # queued, ambiguous or parked, each with its recorded reason
    gaps: list[Gap]  # missing: neither in NAV nor explained; these fail the check
    to_tidy: list[Gap]  # in NAV, with something left for a person (an unmapped carrier)

    @property
    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in TrackingState}
        counts[TrackingState.IN_NAV] = self.reflected
        for g in [*self.explained, *self.gaps]:
            counts[g.state] += 1
        return counts


def reconcile(
    ledger: Ledger, nav: NavClient, *, now: datetime, days: int, chunk: int, tracking_max_length: int
) -> Reconciliation:
    records = reports.shipped_created_since(ledger, now - timedelta(days=days))
    views = review(ledger, nav, records, chunk=chunk, tracking_max_length=tracking_max_length)
    result = Reconciliation(checked=len(views), reflected=0, explained=[], gaps=[], to_tidy=[])
    for view in views:
        if view.state is TrackingState.IN_NAV:
            result.reflected += 1
            if view.next_step:
                result.to_tidy.append(_gap(view))
        elif view.state is TrackingState.MISSING:
            result.gaps.append(_gap(view))
        else:
            result.explained.append(_gap(view))
    return result


def _gap(view: RecordView) -> Gap:
    r = view.record
    return Gap(r.record_key, r.nav_order_no, view.state, view.reason, view.next_step)
