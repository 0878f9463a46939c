"""What the match and write steps decided, stored per record: match decisions, final outcomes
and the NAV field changes, each with its reason and the run that made it.

Every status update names the record version it was decided from: a record that ShipStation
changed meanwhile (a concurrent poll saw a void) is left as the poll left it, open, and decided
again by the next run. In a dry run nothing of a record changes; the decisions, the would-be
changes and a ``dry_run`` event are still written, so the operator can read what would happen.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.core.model import MatchDecision, RecordStatus
from shipnav_dagster.core.outcomes import FailureKind, Outcome
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc, chunks, utcnow
from shipnav_dagster.ledger.events import add_events, event

# A failure that is not the record's fault (NAV down, throttling, credentials) keeps no backoff:
# the next run that reaches NAV takes it. This short, fixed delay only keeps the retry sensor
# from asking for a replay every minute while NAV is still down.
OUTAGE_RECHECK = timedelta(minutes=5)


def retry_delay(attempts: int) -> timedelta:
    """Backoff for failures about the record: 5 min, 10, 20 ... capped at 6 hours."""
    return min(timedelta(minutes=5) * (2 ** max(attempts - 1, 0)), timedelta(hours=6))


class DecisionsMixin:
    engine: sa.Engine

    def record_rows(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:  # provided by Ledger
        raise NotImplementedError

    def record_decisions(
        self,
        decisions: Sequence[MatchDecision],
        *,
        run_id: str | None,
        max_age: timedelta,
        versions: Mapping[str, int] | None = None,
        dry_run: bool = False,
    ) -> None:
        """Store each match decision; unmatched ones are queued, never dropped. A matched record
        stays claimed by this run until it is written."""
        now = utcnow()
        rows = self.record_rows([d.record_key for d in decisions])
        events = [
            event(
                now,
                run_id,
                *_labelled("match_" + d.outcome, d.reason, dry_run),
                d.record_key,
                d.nav_order_no,
                {"tier": d.tier, "candidates": list(d.candidates)},
            )
            for d in decisions
        ]
        with self.engine.begin() as conn:
            if decisions:
                conn.execute(
                    t.decisions.insert(),
                    [
                        {
                            "record_key": d.record_key,
                            "outcome": d.outcome,
                            "tier": d.tier,
                            "nav_order_no": d.nav_order_no,
                            "reason": d.reason,
                            "candidates": json.dumps(list(d.candidates)),
                            "run_id": run_id,
                            "decided_at": now,
                        }
                        for d in decisions
                    ],
                )
            if not dry_run:
                updates = [
                    _decision_values(d, rows.get(d.record_key, {}), now, max_age, run_id) for d in decisions
                ]
                _update_records(conn, updates, versions, now, run_id, include_match=True)
            add_events(conn, events)

    def set_outcomes(self, outcomes: Sequence[Outcome], *, run_id: str | None, dry_run: bool = False) -> None:
        """Final status per record after the write step. A failure about the record is queued with
        backoff; an outage is taken again by the next run that reaches NAV."""
        if not outcomes:
            return
        with self.engine.begin() as conn:
            _set_outcomes(conn, outcomes, run_id=run_id, dry_run=dry_run)

    def record_changes(self, rows: Sequence[dict[str, Any]], *, run_id: str | None) -> None:
        """Planned/applied/skipped NAV field changes, with before and after values."""
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(t.changes.insert(), change_values(rows, run_id=run_id, now=utcnow()))

    def match_conflicts(self, run_id: str | None) -> list[str]:
        """ShipStation orders whose records point at more than one NAV order after this run."""
        decided = (
            sa.select(t.records.c.order_id)
            .join(t.decisions, t.decisions.c.record_key == t.records.c.record_key)
            .where(t.decisions.c.run_id == run_id)
            .where(t.decisions.c.outcome == "matched")
            .where(t.records.c.order_id.is_not(None))
        )
        stmt = (
            sa.select(t.records.c.order_id, sa.func.count(sa.distinct(t.records.c.nav_order_no)))
            .where(t.records.c.order_id.in_(decided))
            .where(t.records.c.nav_order_no.is_not(None))
            .group_by(t.records.c.order_id)
            .having(sa.func.count(sa.distinct(t.records.c.nav_order_no)) > 1)
        )
        with self.engine.connect() as conn:
            return [
                f"ShipStation order {order_id} is matched to {n} different NAV orders"
                for order_id, n in conn.execute(stmt).all()
            ]


@dataclass(frozen=True)
class SettledOrder:
    """One written order's result: its field changes and its records' outcomes."""

    nav_order_no: str
    changes: Sequence[dict[str, Any]]
    outcomes: Sequence[Outcome]


def settle_orders_in(
    conn: sa.Connection, orders: Sequence[SettledOrder], *, run_id: str, dry_run: bool = False
) -> None:
    """Orders' results in the caller's transaction: their field changes, their records' outcomes,
    and the end of this run's claim on each (another run may write them from then on)."""
    changes = [row for order in orders for row in order.changes]
    if changes:
        conn.execute(t.changes.insert(), change_values(changes, run_id=run_id, now=utcnow()))
    outcomes = [outcome for order in orders for outcome in order.outcomes]
    if outcomes:
        _set_outcomes(conn, outcomes, run_id=run_id, dry_run=dry_run)
    for chunk in chunks([order.nav_order_no for order in orders]):
        conn.execute(
            t.order_claims.delete()
            .where(t.order_claims.c.run_id == run_id)
            .where(t.order_claims.c.nav_order_no.in_(chunk))
        )


def _labelled(kind: str, reason: str, dry_run: bool) -> tuple[str, str]:
    """A dry run's event says so in its kind and its reason: the audit trail never reads as a write."""
    if dry_run:
        return "dry_run_" + kind, "dry run, nothing changed: " + reason
    return kind, reason


def _set_outcomes(
    conn: sa.Connection, outcomes: Sequence[Outcome], *, run_id: str | None, dry_run: bool
) -> None:
    now = utcnow()
    events = [
        event(
            now,
            run_id,
            *_labelled("outcome_" + o.status, o.reason, dry_run),
            o.record_key,
            o.nav_order_no,
        )
        for o in outcomes
    ]
    if not dry_run:
        attempts = _attempts(conn, [o.record_key for o in outcomes])
        updates = [_outcome_values(o, attempts.get(o.record_key, 0), now) for o in outcomes]
        versions = {o.record_key: o.version for o in outcomes if o.version is not None}
        _update_records(conn, updates, versions or None, now, run_id, include_match=False)
    add_events(conn, events)


def _decision_values(
    d: MatchDecision, row: Mapping[str, Any], now: datetime, max_age: timedelta, run_id: str | None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "k": d.record_key,
        "match_tier": d.tier,
        "nav_order_no": None,
        "status": d.outcome,
        "status_reason": d.reason,
        "attempts": int(row.get("attempts") or 0),
        "next_attempt_at": None,
        "failure_kind": None,
        "claim": None,
    }
    if d.outcome == "matched":
        values.update(nav_order_no=d.nav_order_no, status=RecordStatus.MATCHED_PENDING, claim=run_id)
    elif d.outcome == RecordStatus.NO_ORDER_YET:
        attempts = values["attempts"] + 1
        first_seen = as_utc(row.get("first_seen_at")) or now
        age_hours = int((now - first_seen).total_seconds() // 3600)
        old = now - first_seen > max_age
        values.update(
            status=RecordStatus.NEEDS_ATTENTION if old else RecordStatus.NO_ORDER_YET,
            status_reason=(f"still no NAV order after {age_hours} h: " if old else "") + d.reason,
            attempts=attempts,
            next_attempt_at=now + retry_delay(attempts),
        )
    # ambiguous / invalid: no write; kept for an operator, re-decided if the order is edited
    return values


def _outcome_values(o: Outcome, attempts: int, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "k": o.record_key,
        "status": o.status,
        "status_reason": o.reason,
        "attempts": attempts,
        "next_attempt_at": None,
        "failure_kind": o.failure,
        "claim": None,
    }
    if o.failure == FailureKind.RECORD:
        values.update(attempts=attempts + 1, next_attempt_at=now + retry_delay(attempts + 1))
    elif o.failure == FailureKind.OUTAGE:
        values.update(next_attempt_at=now + OUTAGE_RECHECK)
    return values


def _attempts(conn: sa.Connection, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(list(keys)):
        found.update(
            conn.execute(
                sa.select(t.records.c.record_key, t.records.c.attempts).where(
                    t.records.c.record_key.in_(chunk)
                )
            ).all()
        )
    return {k: int(v or 0) for k, v in found.items()}


def _update_records(
    conn: sa.Connection,
    updates: Sequence[dict[str, Any]],
    versions: Mapping[str, int] | None,
    now: datetime,
    run_id: str | None,
    *,
    include_match: bool,
) -> None:
    """One executemany UPDATE; with ``versions``, a record is updated only at the version the
    decision was made from."""
    if not updates:
        return
    values: dict[str, Any] = {
        "status": sa.bindparam("status"),
        "status_reason": sa.bindparam("status_reason"),
        "attempts": sa.bindparam("attempts"),
        "next_attempt_at": sa.bindparam("next_attempt_at"),
        "failure_kind": sa.bindparam("failure_kind"),
        "claimed_by_run": sa.bindparam("claim"),
        # Unclaimed means no claim time either: a record nobody works on looks the same whoever
        # last claimed it (a dry-run replay leaves every column as it found it).
        "claimed_at": sa.case((sa.bindparam("claim").is_(None), sa.null()), else_=t.records.c.claimed_at),
        "updated_at": now,
        "last_run_id": run_id,
    }
    if include_match:
        values.update(match_tier=sa.bindparam("match_tier"), nav_order_no=sa.bindparam("nav_order_no"))
    stmt = t.records.update().where(t.records.c.record_key == sa.bindparam("k"))
    if versions is not None:
        stmt = stmt.where(t.records.c.version == sa.bindparam("v"))
        updates = [u | {"v": versions.get(u["k"], -1)} for u in updates]
    stmt = stmt.values(**values)
    for chunk in chunks(list(updates), 2000):
        conn.execute(stmt, list(chunk))


def change_values(
    rows: Sequence[dict[str, Any]], *, run_id: str | None, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "nav_order_no": r["nav_order_no"],
            "entity": r["entity"],
            "entity_key": r["entity_key"],
            "field": r["field"],
            "before": _text(r.get("before")),
            "after": _text(r.get("after")),
            "status": r["status"],
            "reason": r.get("reason"),
            "record_keys": json.dumps(sorted(r.get("record_keys", []))),
            "run_id": r.get("run_id") or run_id,
            "at": now,
        }
        for r in rows
    ]


def _text(value: object) -> str | None:
    return None if value is None else str(value)
