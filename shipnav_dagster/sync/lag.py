"""How far behind NAV is: the age of the oldest shipped label not yet reflected in NAV, and the
shipped records counted by state, as the ledger records them after a sync (two indexed queries;
the reconciliation is what reads NAV back)."""

from dataclasses import dataclass
from datetime import datetime

from shipnav_dagster.core.tracking_state import DONE, STATE_ORDER, tracking_state
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger.repository import Ledger


@dataclass(frozen=True)
class TrackingLag:
    age_hours: float  # 0 when every shipped label is in NAV
    oldest: reports.ShippedRecord | None  # the label that age belongs to
    by_state: dict[str, int]  # every TrackingState, in STATE_ORDER
    by_status: dict[str, int]  # the ledger statuses behind them

    @property
    def untracked(self) -> int:
        return sum(n for state, n in self.by_state.items() if state != "in_nav")


def measure_lag(ledger: Ledger, *, now: datetime) -> TrackingLag:
    by_status = reports.shipped_status_counts(ledger)
    by_state = {state.value: 0 for state in STATE_ORDER}
    for status, count in by_status.items():
        by_state[tracking_state(status, None)] += count
    oldest = reports.oldest_shipped_not_in(ledger, sorted(DONE))
    age = max((now - oldest.created_at).total_seconds() / 3600, 0.0) if oldest and oldest.created_at else 0.0
    return TrackingLag(round(age, 2), oldest, by_state, dict(sorted(by_status.items())))
