"""Reconciliation as its own asset: every shipped record of the last SHIPNAV_RECONCILE_DAYS is
in NAV (read back) or explained. Its check carries the verdict, and since no sync materializes
this asset, the last verdict stays on screen until the next reconciliation."""

from datetime import UTC, datetime

import dagster as dg

from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sync import GROUP, nav_sales_orders, nav_tracking_writeback
from shipnav_dagster.defs.tables import table
from shipnav_dagster.sync.reconcile import Gap, reconcile

CHECK = "shipments_in_nav_or_explained"
TABLE_ROWS = 200  # the UI's table; every gap is also in the check's list below it
GAP_LIST = 100
FINDING_COLUMNS = ["record", "nav_order", "state", "problem", "next_step"]


@dg.asset(
    name="nav_reconciliation",
    group_name=GROUP,
    kinds={"navision"},
    deps=[nav_tracking_writeback, nav_sales_orders],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="nav_reconciliation",
            description="Fails when a shipped record of the window is neither in NAV (read back) "
            "nor explained by a recorded reason (queued, ambiguous, parked); lists each gap.",
        )
    ],
    description="Reads NAV back for every non-voided, non-return ShipStation label and fulfillment "
    "of the last SHIPNAV_RECONCILE_DAYS days and lists every one not in NAV with the reason and the "
    "next step (replay, fix the mapping, create the NAV order...). Daily via "
    "shipnav_reconcile_schedule, or on demand; never part of a sync.",
)
def nav_reconciliation(context: dg.AssetExecutionContext, shipnav: ShipnavResource) -> dg.MaterializeResult:
    s = shipnav.settings_for_both_systems()
    result = reconcile(
        shipnav.ledger,
        shipnav.nav,
        now=datetime.now(UTC),
        days=s.shipnav_reconcile_days,
        chunk=s.shipnav_nav_filter_chunk,
        tracking_max_length=s.nav_tracking_max_length,
    )
    if result.gaps:
        context.log.warning(f"{len(result.gaps)} shipped records are neither in NAV nor explained")
    findings = result.gaps + result.explained + result.to_tidy  # the ones to act on first
    return dg.MaterializeResult(
        metadata={
            "window_days": dg.MetadataValue.int(s.shipnav_reconcile_days),
            "records_checked": dg.MetadataValue.int(result.checked),
            **{state: dg.MetadataValue.int(n) for state, n in result.counts.items()},
            "to_tidy": dg.MetadataValue.int(len(result.to_tidy)),
            "findings": table([_finding(g) for g in findings[:TABLE_ROWS]], FINDING_COLUMNS),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=not result.gaps,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "gap_count": dg.MetadataValue.int(len(result.gaps)),
                    "explained": dg.MetadataValue.int(len(result.explained)),
                    "reflected_in_nav": dg.MetadataValue.int(result.reflected),
                    "gaps": dg.MetadataValue.md(
                        "\n".join(
                            f"- `{g.record_key}` (NAV {g.nav_order_no or '-'}): {g.problem}. "
                            f"Next: {g.next_step}"
                            for g in result.gaps[:GAP_LIST]
                        )
                        or "none"
                    ),
                },
            )
        ],
    )


def _finding(gap: Gap) -> dict[str, str]:
    return {
        "record": gap.record_key,
        "nav_order": gap.nav_order_no or "",
        "state": gap.state.value,
        "problem": gap.problem,
        "next_step": gap.next_step,
    }


shipnav_reconcile_job = dg.define_asset_job(
    "shipnav_reconcile_job",
    selection=dg.AssetSelection.assets(nav_reconciliation),
    description="Reconciles ShipStation shipments against NAV (the nav_reconciliation asset and its "
    "check), daily or on demand. Reads NAV only: never writes.",
)

shipnav_reconcile_schedule = dg.ScheduleDefinition(
    name="shipnav_reconcile_schedule",
    job=shipnav_reconcile_job,
    cron_schedule="30 6 * * *",
    execution_timezone="America/Los_Angeles",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily reconciliation of ShipStation shipments against NAV (06:30 Pacific).",
)
