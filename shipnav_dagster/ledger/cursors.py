"""Where each poll stream stopped, and the NAV orders as the matcher read them."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc, chunks, utcnow


class CursorsMixin:
    engine: sa.Engine

    def _insert(self, table: sa.Table) -> Any:  # provided by Ledger
        raise NotImplementedError

    def get_cursor(self, stream: str) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(t.cursors.c.position).where(t.cursors.c.stream == stream)
            ).scalar_one_or_none()
        return as_utc(value)

    def advance_cursor(self, stream: str, position: datetime, *, run_id: str | None) -> None:
        """Move a poll cursor forward only (a slower concurrent run never moves it back)."""
        now = utcnow()
        stmt = self._insert(t.cursors).values(stream=stream, position=position, updated_at=now, run_id=run_id)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.cursors.c.stream],
            set_={"position": stmt.excluded.position, "updated_at": now, "run_id": run_id},
            where=t.cursors.c.position < stmt.excluded.position,
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)


class NavSnapshotsMixin:
    """The NAV sales order as the matcher read it (with its ETag), so the write step needs no re-read."""

    engine: sa.Engine

    def _insert(self, table: sa.Table) -> Any:  # provided by Ledger
        raise NotImplementedError

    def save_nav_orders(self, entities: Sequence[dict[str, Any]], *, run_id: str | None) -> None:
        now = utcnow()
        rows = {
            e["No"]: {"nav_order_no": e["No"], "entity": json.dumps(e), "fetched_at": now, "run_id": run_id}
            for e in entities
        }
        if not rows:
            return
        stmt = self._insert(t.nav_orders)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.nav_orders.c.nav_order_no],
            set_={"entity": stmt.excluded.entity, "fetched_at": now, "run_id": run_id},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, list(rows.values()))  # executemany: compiled once

    def nav_orders(self, nos: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(nos)):
                for no, entity in conn.execute(
                    sa.select(t.nav_orders.c.nav_order_no, t.nav_orders.c.entity).where(
                        t.nav_orders.c.nav_order_no.in_(chunk)
                    )
                ).all():
                    out[no] = json.loads(entity)
        return out
