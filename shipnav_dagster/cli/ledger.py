"""``shipnav ledger`` and ``shipnav ledger show ID``: the record-level audit trail, for people."""

import json
import sys
from datetime import UTC, datetime
from typing import TextIO

import click

from shipnav_dagster.cli.common import CommandError, open_ledger_for_reading, settings
from shipnav_dagster.core.model import record_key_of
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger._sql import as_utc
from shipnav_dagster.ledger.repository import Ledger


def open_ledger() -> Ledger:
    return open_ledger_for_reading(settings())


def _timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO date or datetime: {value}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group(
    "ledger",
    invoke_without_command=True,
    help="The record-level audit trail: what was seen, decided and written, and why.",
    short_help="list ledger records (or `ledger show ID` for one record's full history)",
)
@click.option("--status", help="only records with this status (e.g. no_order_yet, parked)")
@click.option("--since", help="only records updated since (ISO date or datetime, UTC)")
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True)
@click.pass_context
def ledger(ctx: click.Context, status: str | None, since: str | None, limit: int) -> int:
    if ctx.invoked_subcommand is not None:
        return 0
    list_records(open_ledger(), sys.stdout, status=status, since=_timestamp(since), limit=limit or 200)
    return 0


@ledger.command("show", help="A record's whole history with Dagster run ids.")
@click.argument("record")
def show(record: str) -> int:
    try:
        key = record_key_of(record)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return 0 if show_record(open_ledger(), key, sys.stdout) else 1


def list_records(
    ledger: Ledger, out: TextIO, *, status: str | None = None, since: datetime | None = None, limit: int = 200
) -> int:
    rows = reports.record_lines(ledger, status=status, since=since, limit=limit)
    counts = reports.status_counts(ledger)
    out.write(
        "records by status: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none") + "\n\n"
    )
    out.write(f"{'record':<24} {'status':<16} {'SS order':<16} {'NAV order':<12} {'tracking':<24} reason\n")
    for r in rows:
        out.write(
            f"{r.record_key:<24} {r.status:<16} {r.order_number or '-':<16} {r.nav_order_no or '-':<12} "
            f"{r.tracking_number or '-':<24} {(r.reason or '').replace(chr(10), ' ')[:160]}\n"
        )
    if len(rows) == limit:
        out.write(f"... first {limit} shown; narrow with --status or --since\n")
    return len(rows)


def show_record(ledger: Ledger, key: str, out: TextIO) -> bool:
    """A record's whole history: seen, decided, written, failed; each with its Dagster run id."""
    rows = ledger.record_rows([key])
    if key not in rows:
        out.write(f"{key}: not in the ledger\n")
        return False
    row = rows[key]
    out.write(
        f"{key}  ({row['source']} {row['source_id']}, ShipStation order {row['order_number'] or '-'} "
        f"id {row['order_id'] or '-'})\n"
        f"  tracking {row['tracking_number'] or '-'}  carrier {row['carrier_code'] or '-'}  "
        f"service {row['service_code'] or '-'}  ship date {row['ship_date'] or '-'}\n"
        f"  voided {row['voided']}  return label {row['is_return']}  seen via {row['seen_via']}\n"
        f"  status {row['status']}: {row['status_reason'] or ''}\n"
        f"  NAV order {row['nav_order_no'] or '-'} (tier {row['match_tier'] or '-'}), "
        f"attempts {row['attempts']}, next attempt {_when(row['next_attempt_at'])}\n\nhistory:\n"
    )
    for event in reports.history(ledger, key):
        out.write(
            f"  {_when(event['at'])}  {event['kind']:<24} run {event['run_id'] or '-'}\n"
            f"      {event['message']}\n"
        )
        if event["detail"]:
            out.write(f"      {_detail(event['detail'])}\n")
    changes = reports.changes_for(ledger, key, row["nav_order_no"])
    if changes:
        out.write("\nNAV changes for its order:\n")
        for c in changes:
            values = "not written" if c["status"] == "skipped" else f"{c['before']!r} -> {c['after']!r}"
            out.write(
                f"  {_when(c['at'])}  {c['status']:<8} {c['entity']} {c['entity_key']} {c['field']}: "
                f"{values}  run {c['run_id'] or '-'}"
                + (f"\n      {c['reason']}" if c["reason"] else "")
                + "\n"
            )
    return True


def _when(value: datetime | None) -> str:
    value = as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _detail(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return text
