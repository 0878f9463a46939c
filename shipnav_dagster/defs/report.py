"""The month-end report for finance as a Dagster asset, one partition per calendar month of ship
dates: the records as a table, the totals as a markdown summary, and the CSV and XLSX files in
SHIPNAV_REPORT_DIR (``shipnav report --month YYYY-MM`` builds the same report from a terminal)."""

from datetime import UTC, datetime

import dagster as dg

from shipnav_dagster.core.tracking_state import STATE_ORDER
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sync import GROUP, nav_sales_orders, nav_tracking_writeback
from shipnav_dagster.defs.tables import table
from shipnav_dagster.sync.report import COLUMNS, build_month_end, summary_markdown, write_month_end

# Calendar months in ShipStation's time zone; the current month is a partition too (month to date).
MONTHS = dg.MonthlyPartitionsDefinition(start_date="2025-01-01", timezone="America/Los_Angeles", end_offset=1)
TABLE_ROWS = 1000  # the UI's table; the files always hold every record
UI_COLUMNS = [c for c in COLUMNS if c not in ("carrier", "service", "nav_agent_service", "posted_tracking")]


@dg.asset(
    name="nav_month_end_report",
    group_name=GROUP,
    kinds={"pandas", "csv", "excel"},
    partitions_def=MONTHS,
    deps=[nav_tracking_writeback, nav_sales_orders],
    description="Month-end close: every shipped ShipStation label and fulfillment of the month "
    "(by ship date) beside what NAV holds now (order, posted shipment, tracking, agent, date), its "
    "state (in_nav / queued / ambiguous / parked / missing) with the reason and next step, and the "
    "totals per state. Written as CSV and XLSX to SHIPNAV_REPORT_DIR.",
)
def nav_month_end_report(context: dg.AssetExecutionContext, shipnav: ShipnavResource) -> dg.MaterializeResult:
    s = shipnav.settings_for_both_systems()
    month = context.partition_key[:7]  # partition keys are the first day: 2026-11-01
    report = build_month_end(
        shipnav.ledger,
        shipnav.nav,
        month,
        chunk=s.shipnav_nav_filter_chunk,
        tracking_max_length=s.nav_tracking_max_length,
        now=datetime.now(UTC),
    )
    csv_path, xlsx_path = write_month_end(report, s.report_dir)
    rows = report.records[UI_COLUMNS].head(TABLE_ROWS).to_dict("records")
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(summary_markdown(report)),
            "records": table(rows, UI_COLUMNS),
            "shipped_records": dg.MetadataValue.int(report.total("total")),
            **{state.value: dg.MetadataValue.int(report.total(state.value)) for state in STATE_ORDER},
            "csv": dg.MetadataValue.path(str(csv_path)),
            "xlsx": dg.MetadataValue.path(str(xlsx_path)),
        }
    )
