"""``shipnav report --month YYYY-MM``: the month-end report for finance, as CSV and XLSX files."""

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from shipnav_dagster.cli.common import EXIT_FAILED, CommandError, err, open_ledger_for_reading, settings
from shipnav_dagster.settings import SettingsError


@click.command(
    "report",
    help="Every shipped ShipStation label and fulfillment of a month (by ship date) beside what NAV "
    "holds for it now (order, posted shipment, tracking, agent, date), its state (in_nav, queued, "
    "ambiguous, parked, missing) with the reason and next step, and the totals per state. Written "
    "as shipnav-month-end-YYYY-MM.csv and .xlsx. Reads the ledger and NAV (only the month's "
    "orders); writes nothing to either.",
    short_help="the month-end report for finance (CSV and XLSX)",
)
@click.option("--month", required=True, metavar="YYYY-MM", help="the month of ShipStation ship dates")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="folder for the two files (created if needed)",
)
def report(month: str, out: Path) -> int:
    from shipnav_dagster.nav.client import NavClient
    from shipnav_dagster.nav.errors import NavError
    from shipnav_dagster.sync.report import MonthError, build_month_end, month_bounds, write_month_end

    try:
        month_bounds(month)
    except MonthError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    s = settings()
    try:
        s.require(shipstation=False, nav=True)  # the report reads the ledger and NAV only
    except SettingsError as exc:
        raise CommandError(str(exc)) from None
    ledger = open_ledger_for_reading(s)
    nav = NavClient.from_settings(s)
    try:
        result = build_month_end(
            ledger,
            nav,
            month,
            chunk=s.shipnav_nav_filter_chunk,
            tracking_max_length=s.nav_tracking_max_length,
            now=datetime.now(UTC),
        )
    except NavError as exc:
        err(f"shipnav: could not read NAV: {exc}")
        return EXIT_FAILED
    finally:
        nav.close()
        ledger.dispose()
    csv_path, xlsx_path = write_month_end(result, out)
    out_text = sys.stdout
    out_text.write(
        f"month-end {result.month}: ship dates {result.first_day} to {result.last_day}, "
        f"{nav.stats.get} NAV read requests\n\n"
    )
    out_text.write(result.totals.to_string(index=False) + "\n\n")
    out_text.write(f"{csv_path}\n{xlsx_path}\n")
    return 0
