"""How far behind NAV is: the age of the oldest shipped label not yet reflected in NAV, and the
shipped records counted by state, as the ledger records them after a sync (two indexed queries;
the reconciliation is what reads NAV back)."""

from dataclasses import dataclass
from datetime import datetime

from shipnav_dagster.core.tracking_state import DONE, STATE_ORDER, TrackingState, tracking_state
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger.repository import Ledger


@dataclass(frozen=True)
class TrackingLag:
    age_hours: float  # 0 when every shipped label is in NAV
    oldest: reports.ShippedRecord | None  # the label that age belongs to
    # in_nav, queued, ambiguous, parked: "missing" needs NAV read back (the reconciliation)
    by_state: dict[str, int]
    by_status: dict[str, int]  # the ledger statuses behind them
    untracked: int  # shipped labels NAV does not hold yet, by the ledger


def measure_lag(ledger: Ledger, *, now: datetime) -> TrackingLag:
    by_status = reports.shipped_status_counts(ledger)
    by_state = {state.value: 0 for state in STATE_ORDER if state is not TrackingState.MISSING}
    for status, count in by_status.items():
        state = tracking_state(status, None)
        if state in by_state:
            by_state[state] += count
    untracked = sum(n for status, n in by_status.items() if status not in DONE)
    oldest = reports.oldest_shipped_not_in(ledger, sorted(DONE))
    age = max((now - oldest.created_at).total_seconds() / 3600, 0.0) if oldest and oldest.created_at else 0.0
    return TrackingLag(round(age, 2), oldest, by_state, dict(sorted(by_status.items())), untracked)
