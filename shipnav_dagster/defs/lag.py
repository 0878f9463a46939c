"""Tracking lag, measured by every sync: how long the oldest shipped label has waited to be in
NAV, and the shipped records by state, as numeric metadata (Dagster plots them over time on the
asset's Overview, Metadata > Plots). Its check warns past SHIPNAV_LAG_WARN_HOURS and fails past
SHIPNAV_LAG_FAIL_HOURS."""

from datetime import UTC, datetime

import dagster as dg

from shipnav_dagster.core.tracking_state import lag_verdict
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sync import GROUP, nav_tracking_writeback
from shipnav_dagster.sync.lag import measure_lag

CHECK = "tracking_lag_within_limits"


@dg.asset(
    name="nav_tracking_lag",
    group_name=GROUP,
    kinds={"python"},
    deps=[nav_tracking_writeback],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="nav_tracking_lag",
            description="Warns when the oldest shipped label not yet in NAV is older than "
            "SHIPNAV_LAG_WARN_HOURS (default 2) and fails past SHIPNAV_LAG_FAIL_HOURS (default 24).",
        )
    ],
    description="After each write-back: the age in hours of the oldest shipped ShipStation label "
    "that NAV does not hold yet (queued, ambiguous or parked) and the shipped records by state, as "
    "the ledger records them. The asset's Overview plots them over time (Metadata > Plots).",
)
def nav_tracking_lag(shipnav: ShipnavResource) -> dg.MaterializeResult:
    s = shipnav.settings
    lag = measure_lag(shipnav.ledger, now=datetime.now(UTC))
    verdict = lag_verdict(
        lag.age_hours, warn_hours=s.shipnav_lag_warn_hours, fail_hours=s.shipnav_lag_fail_hours
    )
    oldest = lag.oldest
    if oldest is None:
        description = "every shipped label is in NAV"
    else:
        description = (
            f"oldest: {oldest.record_key} (ShipStation order {oldest.order_number or '-'}, "
            f"{oldest.status}), label created {oldest.created_at:%Y-%m-%d %H:%M} UTC, "
            f"{lag.age_hours:.1f} h ago"
        )
    return dg.MaterializeResult(
        metadata={
            "oldest_untracked_age_hours": dg.MetadataValue.float(lag.age_hours),
            "untracked_labels": dg.MetadataValue.int(lag.untracked),
            **{f"state_{state}": dg.MetadataValue.int(n) for state, n in lag.by_state.items()},
            "oldest_untracked": dg.MetadataValue.text(description),
            "ledger_status": dg.MetadataValue.json(lag.by_status),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=verdict == "ok",
                severity=dg.AssetCheckSeverity.WARN if verdict == "warn" else dg.AssetCheckSeverity.ERROR,
                metadata={
                    "oldest_untracked_age_hours": dg.MetadataValue.float(lag.age_hours),
                    "warn_hours": dg.MetadataValue.float(s.shipnav_lag_warn_hours),
                    "fail_hours": dg.MetadataValue.float(s.shipnav_lag_fail_hours),
                    "oldest_untracked": dg.MetadataValue.text(description),
                },
            )
        ],
    )
