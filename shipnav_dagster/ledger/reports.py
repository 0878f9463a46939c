"""Read-only queries over the ledger for people: the operator's listings, the demo's summary,
the month-end report, the reconciliation's window and the tracking lag. Nothing here writes."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
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


@dataclass(frozen=True)
class ShippedRecord:
    """A shipped, non-voided, outbound ShipStation record with a tracking number, as the
    month-end report and the reconciliation list it."""

    record_key: str
    source: str
    order_number: str | None
    tracking_number: str
    carrier_code: str | None
    service_code: str | None
    ship_date: date | None
    created_at: datetime | None  # None only for a record whose payload could not be read
    status: str
    reason: str | None
    nav_order_no: str | None
    first_seen_at: datetime


def _outbound_with_tracking() -> list[sa.ColumnElement[bool]]:
    """Shipped: not voided, not a return label, and carrying a tracking number."""
    r = t.records.c
    return [
        r.voided.is_(False),
        r.is_return.is_(False),
        sa.func.coalesce(sa.func.trim(r.tracking_number), "") != "",
    ]


def _shipped() -> sa.Select[Any]:
    r = t.records.c
    return (
        sa.select(
            r.record_key,
            r.source,
            r.order_number,
            r.tracking_number,
            r.carrier_code,
            r.service_code,
            r.ship_date,
            r.created_at,
            r.status,
            r.status_reason.label("reason"),
            r.nav_order_no,
            r.first_seen_at,
        )
        .where(*_outbound_with_tracking())
        .order_by(r.ship_date, r.created_at, r.record_key)
    )


def _shipped_rows(ledger: Ledger, stmt: sa.Select[Any]) -> list[ShippedRecord]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [
        ShippedRecord(
            **{**row, "created_at": as_utc(row["created_at"]), "first_seen_at": as_utc(row["first_seen_at"])}
        )
        for row in rows
    ]


def shipped_created_since(ledger: Ledger, since: datetime) -> list[ShippedRecord]:
    """Shipped records whose label or fulfillment was created at or after ``since``."""
    return _shipped_rows(ledger, _shipped().where(t.records.c.created_at >= since))


def shipped_between(ledger: Ledger, first_day: date, end_day: date) -> list[ShippedRecord]:
    """Shipped records whose ship date is in ``[first_day, end_day)``; a record without a ship
    date counts by the UTC date it was created (ShipStation sets a ship date on every label and
    fulfillment, so this is a fallback)."""
    r = t.records.c
    start = datetime.combine(first_day, time.min, tzinfo=UTC)
    end = datetime.combine(end_day, time.min, tzinfo=UTC)
    in_period = sa.or_(
        sa.and_(r.ship_date >= first_day, r.ship_date < end_day),
        sa.and_(r.ship_date.is_(None), r.created_at >= start, r.created_at < end),
    )
    return _shipped_rows(ledger, _shipped().where(in_period))


def shipped_status_counts(ledger: Ledger) -> dict[str, int]:
    """Every shipped, outbound record with a tracking number, counted by status (one grouped
    query: the tracking lag after every sync)."""
    r = t.records.c
    stmt = sa.select(r.status, sa.func.count()).where(*_outbound_with_tracking()).group_by(r.status)
    with ledger.engine.connect() as conn:
        return {status: count for status, count in conn.execute(stmt).all()}


def oldest_shipped_not_in(ledger: Ledger, statuses: Sequence[str]) -> ShippedRecord | None:
    """The shipped record created first among those whose status is not one of ``statuses``."""
    stmt = _shipped().where(t.records.c.status.notin_(list(statuses)), t.records.c.created_at.is_not(None))
    stmt = stmt.order_by(None).order_by(t.records.c.created_at, t.records.c.record_key).limit(1)
    found = _shipped_rows(ledger, stmt)
    return found[0] if found else None
