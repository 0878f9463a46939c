"""Reconciliation: every shipped record of the last SHIPNAV_RECONCILE_DAYS is in NAV or explained."""

from datetime import UTC, datetime

import dagster as dg

from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sync import nav_tracking_writeback
from shipnav_dagster.sync.reconcile import reconcile

GAP_SAMPLE = 100


@dg.asset_check(
    asset=nav_tracking_writeback,
    name="nav_reconciliation",
    description="Reads NAV back: every non-voided, non-return ShipStation label and fulfillment of "
    "the last SHIPNAV_RECONCILE_DAYS days is reflected in NAV or has a recorded reason. Fails "
    "with the list of gaps.",
)
def nav_reconciliation(shipnav: ShipnavResource) -> dg.AssetCheckResult:
    s = shipnav.settings
    result = reconcile(
        shipnav.ledger,
        shipnav.nav,
        now=datetime.now(UTC),
        days=s.shipnav_reconcile_days,
        chunk=s.shipnav_nav_filter_chunk,
        tracking_max_length=s.nav_tracking_max_length,
    )
    return dg.AssetCheckResult(
        passed=not result.gaps,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "window_days": dg.MetadataValue.int(s.shipnav_reconcile_days),
            "records_checked": dg.MetadataValue.int(result.checked),
            "reflected_in_nav": dg.MetadataValue.int(result.reflected),
            "explained": dg.MetadataValue.int(result.explained),
            "gap_count": dg.MetadataValue.int(len(result.gaps)),
            "gaps": dg.MetadataValue.md(
                "\n".join(
                    f"- `{g.record_key}` (NAV {g.nav_order_no or '-'}): {g.problem}"
                    for g in result.gaps[:GAP_SAMPLE]
                )
                or "none"
            ),
        },
    )


shipnav_reconcile_job = dg.define_asset_job(
    "shipnav_reconcile_job",
    selection=dg.AssetSelection.checks(nav_reconciliation),
    description="Runs the NAV reconciliation check on its own (daily schedule, or on demand).",
)

shipnav_reconcile_schedule = dg.ScheduleDefinition(
    name="shipnav_reconcile_schedule",
    job=shipnav_reconcile_job,
    cron_schedule="30 6 * * *",
    execution_timezone="America/Los_Angeles",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily reconciliation of ShipStation shipments against NAV.",
)
