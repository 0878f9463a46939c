"""What shipnav has learned about the NAV it writes to, kept across runs (e.g. that posted
shipments are read-only there, learned from NAV's own refusal)."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc, upsert, utcnow
from shipnav_dagster.ledger.repository import Ledger

POSTED_SHIPMENTS_READ_ONLY = "posted_shipments_read_only"


@dataclass(frozen=True)
class Fact:
    name: str
    value: str
    detail: str | None
    learned_at: datetime
    run_id: str | None


def get(ledger: Ledger, name: str) -> Fact | None:
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(t.facts).where(t.facts.c.name == name)).mappings().first()
    if row is None:
        return None
    return Fact(row["name"], row["value"], row["detail"], as_utc(row["learned_at"]), row["run_id"])


def learn(ledger: Ledger, name: str, value: str, *, detail: str | None, run_id: str | None) -> None:
    now = utcnow()
    stmt = upsert(ledger.engine.dialect.name, t.facts).values(
        name=name, value=value, detail=detail, learned_at=now, run_id=run_id
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.facts.c.name],
        set_={"value": value, "detail": detail, "learned_at": now, "run_id": run_id},
    )
    with ledger.engine.begin() as conn:
        conn.execute(stmt)
