"""The month-end report for finance: every shipped ShipStation label and fulfillment of a month
beside what NAV holds for it now, its state and why, with totals; as CSV and XLSX.

Built from the ledger (what ShipStation shipped and what shipnav decided) and from NAV, read
back for exactly the orders of the month's records, in ``$filter`` chunks (``sync.nav_view``).
A month is a calendar month of ShipStation ship dates, which are Pacific calendar dates.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from shipnav_dagster.core.tracking_state import STATE_ORDER
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.sync.nav_view import RecordView, review

# One row per shipped record; the NAV columns are what NAV holds now for the matched order.
COLUMNS = [
    "record",
    "kind",
    "ship_date",
    "shipstation_order",
    "carrier",
    "service",
    "tracking_number",
    "nav_order",
    "nav_order_status",
    "nav_tracking",
    "nav_agent",
    "nav_agent_service",
    "nav_shipment_date",
    "posted_shipments",
    "posted_tracking",
    "state",
    "reason",
    "next_step",
]
TOTAL_COLUMNS = ["state", "records", "shipstation_orders"]
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class MonthError(ValueError):
    """Not a month in the form YYYY-MM."""


@dataclass(frozen=True)
class MonthEndReport:
    month: str  # YYYY-MM
    first_day: date
    end_day: date  # exclusive: the first day of the next month
    generated_at: datetime
    records: pd.DataFrame  # COLUMNS, one row per shipped record
    totals: pd.DataFrame  # TOTAL_COLUMNS, one row per state in STATE_ORDER, then "total"

    @property
    def last_day(self) -> date:
        return self.end_day - timedelta(days=1)

    def total(self, state: str) -> int:
        return int(self.totals.set_index("state").loc[state, "records"])


def month_bounds(month: str) -> tuple[date, date]:
    """The first day of ``month`` (YYYY-MM) and the first day of the month after it."""
    found = MONTH.match(month.strip())
    if not found:
        raise MonthError(f"not a month in the form YYYY-MM: {month!r}")
    year, number = int(found.group(1)), int(found.group(2))
    first = date(year, number, 1)
    end = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return first, end


def build_month_end(
    ledger: Ledger,
    nav: NavClient,
    month: str,
    *,
    chunk: int,
    tracking_max_length: int,
    now: datetime,
) -> MonthEndReport:
    first, end = month_bounds(month)
    records = reports.shipped_between(ledger, first, end)
    views = review(ledger, nav, records, chunk=chunk, tracking_max_length=tracking_max_length)
    frame = pd.DataFrame([_row(v) for v in views], columns=COLUMNS)
    return MonthEndReport(month.strip(), first, end, now, frame, _totals(frame))


def _row(view: RecordView) -> dict[str, object]:
    r, holding = view.record, view.holding
    order = holding.order if holding else None
    posted = holding.posted if holding else ()
    if holding is None:
        order_status = ""
    elif order is None:
        order_status = "deleted by posting" if posted else "not found"
    else:
        order_status = order.status
    return {
        "record": r.record_key,
        "kind": "label" if r.source == "shipment" else "fulfillment",
        "ship_date": r.ship_date.isoformat() if r.ship_date else "",
        "shipstation_order": r.order_number or "",
        "carrier": r.carrier_code or "",
        "service": r.service_code or "",
        "tracking_number": r.tracking_number,
        "nav_order": r.nav_order_no or "",
        "nav_order_status": order_status,
        "nav_tracking": order.package_tracking_no if order else "",
        "nav_agent": order.shipping_agent_code if order else "",
        "nav_agent_service": order.shipping_agent_service_code if order else "",
        "nav_shipment_date": order.shipment_date.isoformat() if order and order.shipment_date else "",
        "posted_shipments": ", ".join(p.no for p in posted),
        "posted_tracking": ", ".join(
            dict.fromkeys(p.package_tracking_no for p in posted if p.package_tracking_no)
        ),
        "state": view.state.value,
        "reason": view.reason,
        "next_step": view.next_step,
    }


def _totals(frame: pd.DataFrame) -> pd.DataFrame:
    states = [s.value for s in STATE_ORDER]
    grouped = frame.groupby("state").agg(
        records=("record", "size"), shipstation_orders=("shipstation_order", "nunique")
    )
    totals = grouped.reindex(states, fill_value=0).reset_index(names="state")
    overall = pd.DataFrame(
        [
            {
                "state": "total",
                "records": len(frame),
                "shipstation_orders": frame["shipstation_order"].nunique(),
            }
        ]
    )
    return pd.concat([totals, overall], ignore_index=True)[TOTAL_COLUMNS].astype(
        {"records": "int64", "shipstation_orders": "int64"}
    )


def file_stem(month: str) -> str:
    return f"shipnav-month-end-{month}"


def write_month_end(report: MonthEndReport, folder: Path) -> tuple[Path, Path]:
    """``shipnav-month-end-YYYY-MM.csv`` (the records) and ``.xlsx`` (a Summary sheet with the
    period and the totals, and a Records sheet), replacing earlier files of the same month."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{file_stem(report.month)}.csv"
    xlsx_path = folder / f"{file_stem(report.month)}.xlsx"
    report.records.to_csv(csv_path, index=False)
    period = pd.DataFrame(
        [
            {"item": "month", "value": report.month},
            {"item": "first ship date", "value": report.first_day.isoformat()},
            {"item": "last ship date", "value": report.last_day.isoformat()},
            {"item": "generated (UTC)", "value": report.generated_at.strftime("%Y-%m-%d %H:%M:%S")},
        ]
    )
    with pd.ExcelWriter(xlsx_path, engine="openpyxl") as writer:
        period.to_excel(writer, sheet_name="Summary", index=False)
        report.totals.to_excel(writer, sheet_name="Summary", index=False, startrow=len(period) + 2)
        report.records.to_excel(writer, sheet_name="Records", index=False)
        _tidy(writer)
    return csv_path, xlsx_path


def _tidy(writer: pd.ExcelWriter) -> None:
    """Readable sheets: the header row frozen, columns as wide as their content (up to a limit)."""
    for sheet in writer.book.worksheets:
        sheet.freeze_panes = "A2"
        for cells in sheet.columns:
            width = max((len(str(c.value)) for c in cells if c.value is not None), default=8)
            sheet.column_dimensions[cells[0].column_letter].width = min(width + 2, 60)


def summary_markdown(report: MonthEndReport) -> str:
    """The totals as a markdown table with one sentence of context (the UI's summary)."""
    return (
        f"**Month-end {report.month}**: every shipped ShipStation label and fulfillment with ship "
        f"date {report.first_day.isoformat()} to {report.last_day.isoformat()}, beside "
        f"what NAV holds now (read {report.generated_at.strftime('%Y-%m-%d %H:%M')} UTC).\n\n"
        + report.totals.to_markdown(index=False)
        + "\n\nStates: **in_nav** NAV holds the tracking; **queued** shipnav writes it once its "
        "cause is gone (no NAV order yet, NAV unavailable); **ambiguous** several NAV orders fit; "
        "**parked** NAV cannot take it; **missing** neither in NAV nor explained. Each record "
        "row says why and what to do next."
    )
