"""Read-only queries over the ledger for people: the operator's listings, the demo's summary,
the reconciliation's window. Nothing here writes."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.core.model import QUEUED_STATUSES
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc
from shipnav_dagster.ledger.repository import Ledger


@dataclass(frozen=True)
class RecordLine:
    """One line of ``shipnav ledger``."""

    record_key: str
    status: str
    order_number: str | None
    nav_order_no: str | None
    tracking_number: str | None
    updated_at: datetime
    reason: str | None


def status_counts(ledger: Ledger) -> dict[str, int]:
    with ledger.engine.connect() as conn:
        return dict(
            conn.execute(sa.select(t.records.c.status, sa.func.count()).group_by(t.records.c.status)).all()
        )


def record_lines(
    ledger: Ledger, *, status: str | None = None, since: datetime | None = None, limit: int = 200
) -> list[RecordLine]:
    """Most recently updated first."""
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
        return [RecordLine(*row) for row in conn.execute(stmt.limit(limit)).all()]


def history(ledger: Ledger, record_key: str) -> list[dict[str, Any]]:
    """Every event of one record, oldest first."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.events).where(t.events.c.record_key == record_key).order_by(t.events.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def changes_for(ledger: Ledger, record_key: str, nav_order_no: str | None) -> Sequence[dict[str, Any]]:
    """The NAV field changes planned, applied or skipped for the order a record belongs to."""
    stmt = sa.select(t.changes).order_by(t.changes.c.id)
    stmt = stmt.where(t.changes.c.record_keys.contains(f'"{record_key}"'))
    if nav_order_no:
        stmt = stmt.where(t.changes.c.nav_order_no == nav_order_no)
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def records_by_status(ledger: Ledger) -> dict[str, list[tuple[str, str | None, str | None, str | None]]]:
    """(record key, NAV order, tracking, reason) of every record, grouped by status."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.records.c.status,
                t.records.c.record_key,
                t.records.c.nav_order_no,
                t.records.c.tracking_number,
                t.records.c.status_reason,
            ).order_by(t.records.c.record_key)
        ).all()
    grouped: dict[str, list[tuple[str, str | None, str | None, str | None]]] = {}
    for status, key, nav_order_no, tracking, reason in rows:
        grouped.setdefault(status, []).append((key, nav_order_no, tracking, reason))
    return grouped


@dataclass(frozen=True)
class WindowRecord:
    """A shipped, non-voided outbound record the reconciliation looks at."""

    record_key: str
    status: str
    reason: str | None
    nav_order_no: str | None
    first_seen_at: datetime | None


def shipped_records_since(ledger: Ledger, since: datetime) -> list[WindowRecord]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.records.c.record_key,
                t.records.c.status,
                t.records.c.status_reason,
                t.records.c.nav_order_no,
                t.records.c.first_seen_at,
            )
            .where(t.records.c.created_at >= since)
            .where(t.records.c.voided.is_(False))
            .where(t.records.c.is_return.is_(False))
        ).all()
    return [WindowRecord(*row) for row in rows]


@dataclass(frozen=True)
class Waiting:
    """What is queued, and when the retry sensor next finds something due."""

    counts: dict[str, int]
    next_due: datetime | None


def waiting(ledger: Ledger) -> Waiting:
    with ledger.engine.connect() as conn:
        counts: dict[str, int] = {
            str(status): int(n)
            for status, n in conn.execute(
                sa.select(t.records.c.status, sa.func.count())
                .where(t.records.c.status.in_(QUEUED_STATUSES))
                .group_by(t.records.c.status)
            ).all()
        }
        next_due = conn.execute(
            sa.select(sa.func.min(t.records.c.next_attempt_at)).where(t.records.c.status.in_(QUEUED_STATUSES))
        ).scalar_one_or_none()
    return Waiting(counts, as_utc(next_due))


@dataclass(frozen=True)
class RunOutcome:
    """Where one record ended in one run: the run's last decision or outcome for it."""

    record_key: str
    outcome: str
    nav_order_no: str | None
    reason: str


def run_outcomes(ledger: Ledger, run_id: str) -> list[RunOutcome]:
    """Per record, the last match decision or write outcome this run recorded (a dry run's too)."""
    kinds = ("outcome_", "match_", "dry_run_outcome_", "dry_run_match_")
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.events.c.record_key, t.events.c.kind, t.events.c.nav_order_no, t.events.c.message)
            .where(t.events.c.run_id == run_id)
            .where(t.events.c.record_key.is_not(None))
            .where(sa.or_(*(t.events.c.kind.startswith(k) for k in kinds)))
            .order_by(t.events.c.id)
        ).all()
    last: dict[str, RunOutcome] = {}
    for key, kind, nav_no, message in rows:
        outcome = kind
        for prefix in ("dry_run_outcome_", "dry_run_match_", "outcome_", "match_"):
            if kind.startswith(prefix):
                outcome = ("dry run: " if prefix.startswith("dry_run") else "") + kind[len(prefix) :]
                break
        last[key] = RunOutcome(key, outcome, nav_no, message)
    return sorted(last.values(), key=lambda o: o.record_key)
