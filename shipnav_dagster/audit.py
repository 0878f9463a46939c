"""Reading the ledger for people: `shipnav ledger` and `shipnav ledger show ID`."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa

from shipnav_dagster.core.model import record_key_of
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger.repository import Ledger, as_utc


def list_records(
    ledger: Ledger, out: TextIO, *, status: str | None = None, since: datetime | None = None, limit: int = 200
) -> int:
    stmt = sa.select(
        t.records.c.record_key,
        t.records.c.status,
        t.records.c.order_number,
        t.records.c.nav_order_no,
        t.records.c.tracking_number,
        t.records.c.updated_at,
        t.records.c.status_reason,
    ).order_by(t.records.c.updated_at.desc(), t.records.c.record_key)
    if status:
        stmt = stmt.where(t.records.c.status == status)
    if since:
        stmt = stmt.where(t.records.c.updated_at >= since)
    with ledger.engine.connect() as conn:
        rows = conn.execute(stmt.limit(limit)).all()
    counts = ledger.status_counts()
    out.write(
        "records by status: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none") + "\n\n"
    )
    header = f"{'record':<24} {'status':<16} {'SS order':<16} {'NAV order':<12} {'tracking':<24} reason\n"
    out.write(header)
    for key, st, order_no, nav_no, tracking, _updated, reason in rows:
        out.write(
            f"{key:<24} {st:<16} {order_no or '-':<16} {nav_no or '-':<12} {tracking or '-':<24} "
            f"{(reason or '').replace(chr(10), ' ')[:160]}\n"
        )
    if len(rows) == limit:
        out.write(f"... first {limit} shown; narrow with --status or --since\n")
    return len(rows)


def show_record(ledger: Ledger, identifier: str, out: TextIO) -> bool:
    """A record's whole history: seen, decided, written, failed; each with its Dagster run id."""
    key = record_key_of(identifier)
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
    for event in ledger.history(key):
        out.write(
            f"  {_when(event['at'])}  {event['kind']:<24} run {event['run_id'] or '-'}\n"
            f"      {event['message']}\n"
        )
        if event["detail"]:
            out.write(f"      {_detail(event['detail'])}\n")
    changes = _changes_for(ledger, key, row["nav_order_no"])
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


def _changes_for(ledger: Ledger, key: str, nav_order_no: str | None) -> Sequence[dict[str, Any]]:
    stmt = sa.select(t.changes).order_by(t.changes.c.id)
    stmt = stmt.where(t.changes.c.record_keys.contains(f'"{key}"'))
    if nav_order_no:
        stmt = stmt.where(t.changes.c.nav_order_no == nav_order_no)
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _when(value: datetime | None) -> str:
    value = as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _detail(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return text
