"""The write journal: each PATCH is recorded as intended before it is sent and settled after it,
order by order. A run that dies between the two (SIGKILL, a lost answer) leaves an ``intended``
row; a later run re-reads NAV and settles it as ``confirmed`` (NAV holds the values: the dead
run wrote them, and the audit trail says so under its run id) or ``not_applied``."""

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import utcnow
from shipnav_dagster.ledger.decisions import SettledOrder, change_values, settle_orders_in
from shipnav_dagster.ledger.repository import Ledger

INTENDED, APPLIED, FAILED, CONFIRMED, NOT_APPLIED = (
    "intended",
    "applied",
    "failed",
    "confirmed",
    "not_applied",
)


@dataclass(frozen=True)
class Intent:
    id: int
    nav_order_no: str
    entity: str
    entity_key: str
    changes: dict[str, Any]
    before: dict[str, Any]
    record_keys: list[str]
    run_id: str


def intend(
    ledger: Ledger,
    *,
    run_id: str,
    nav_order_no: str,
    entity: str,
    entity_key: str,
    changes: dict[str, Any],
    before: dict[str, Any],
    record_keys: Sequence[str],
) -> int:
    values = {
        "nav_order_no": nav_order_no,
        "entity": entity,
        "entity_key": entity_key,
        "changes": json.dumps(changes, default=str),
        "before": json.dumps(before, default=str),
        "record_keys": json.dumps(sorted(record_keys)),
        "state": INTENDED,
        "run_id": run_id,
        "created_at": utcnow(),
    }
    with ledger.writing() as conn:
        return int(conn.execute(_INTEND, values).scalar_one())


# One statement for every PATCH of a run (only its values are bound per call).
_INTEND = t.journal.insert().returning(t.journal.c.id)


def settle(
    ledger: Ledger,
    intent_id: int,
    state: str,
    detail: str | None = None,
    *,
    changes: Sequence[dict[str, Any]] = (),
    run_id: str | None = None,
) -> None:
    """Settle an intended PATCH; ``changes`` (the applied field changes) are recorded in the same
    transaction, so a PATCH that is settled as applied is always in the audit trail."""
    with ledger.writing() as conn:
        _settle_in(conn, state, [(intent_id, detail)], changes, run_id=run_id)


def _settle_in(
    conn: sa.Connection,
    state: str,
    intents: Sequence[tuple[int, str | None]],
    changes: Sequence[dict[str, Any]],
    *,
    run_id: str | None,
) -> None:
    """Intended PATCHes (id, detail) settled as ``state``, with their field changes."""
    now = utcnow()
    conn.execute(
        t.journal.update()
        .where(t.journal.c.id == sa.bindparam("intent_id"))
        .values(state=state, detail=sa.bindparam("settled_detail"), settled_at=now),
        [{"intent_id": intent_id, "settled_detail": detail} for intent_id, detail in intents],
    )
    if changes:
        conn.execute(t.changes.insert(), change_values(changes, run_id=run_id, now=now))


@dataclass(frozen=True)
class Applied:
    """A PATCH NAV accepted, settled together with its order's result (``settle_orders``)."""

    intent_id: int
    changes: Sequence[dict[str, Any]]
    detail: str | None = None


def settle_orders(
    ledger: Ledger,
    orders: Sequence[SettledOrder],
    applied: Sequence[Applied],
    *,
    run_id: str,
    dry_run: bool = False,
) -> None:
    """Finished orders in one transaction: their accepted PATCHes settled as applied, with the
    field changes (so a PATCH settled as applied is always in the audit trail), then the orders'
    outcomes and claims. Until this commits those PATCHes stay ``intended``: a run that dies
    first leaves them to the next run, which confirms them by re-reading NAV."""
    with ledger.writing() as conn:
        if applied:
            intents = [(a.intent_id, a.detail) for a in applied]
            _settle_in(conn, APPLIED, intents, [row for a in applied for row in a.changes], run_id=run_id)
        settle_orders_in(conn, orders, run_id=run_id, dry_run=dry_run)


def unsettled(ledger: Ledger, *, dead_runs: Collection[str], limit: int = 1000) -> list[Intent]:
    """Intended changes of runs that are over: they may or may not have reached NAV."""
    if not dead_runs:
        return []
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.journal)
            .where(t.journal.c.state == INTENDED)
            .where(t.journal.c.run_id.in_(list(dead_runs)))
            .order_by(t.journal.c.id)
            .limit(limit)
        ).mappings()
        return [
            Intent(
                id=r["id"],
                nav_order_no=r["nav_order_no"],
                entity=r["entity"],
                entity_key=r["entity_key"],
                changes=json.loads(r["changes"]),
                before=json.loads(r["before"]),
                record_keys=json.loads(r["record_keys"]),
                run_id=r["run_id"],
            )
            for r in rows
        ]


def holders(ledger: Ledger) -> set[str]:
    """Runs with intended changes still unsettled (the caller asks which of them are over)."""
    with ledger.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(t.journal.c.run_id).where(t.journal.c.state == INTENDED).distinct()
            ).scalars()
        )
