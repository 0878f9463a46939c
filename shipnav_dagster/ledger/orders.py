"""ShipStation orders in the ledger: what the matcher needs of them (order date, names, split
parent) and their raw payloads, and the records to decide again when an order changes."""

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.core.model import OrderInfo, RecordStatus
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import chunks, json_text, payload_hash, storable, utcnow
from shipnav_dagster.ledger.events import add_events, event


class OrdersMixin:
    engine: sa.Engine

    def _insert(self, table: sa.Table) -> Any:  # provided by Ledger
        raise NotImplementedError

    def upsert_orders(self, orders: Iterable[tuple[OrderInfo, dict[str, Any]]]) -> list[int]:
        """Store ShipStation orders (as parsed, and their raw payload); returns the ids of
        already-known orders that changed."""
        now = utcnow()
        rows = {}
        for info, payload in orders:
            rows[info.order_id] = {
                "order_id": info.order_id,
                "order_number": storable(info.order_number),
                "order_key": storable(info.order_key),
                "order_date": info.order_date,
                "ship_to_name": storable(info.ship_to_name),
                "bill_to_name": storable(info.bill_to_name),
                "parent_id": info.parent_id,
                "order_status": storable(info.status),
                "modify_date": None,
                "payload": json_text(payload),
                "payload_hash": payload_hash(payload),
                "updated_at": now,
            }
        changed: list[int] = []
        with self.engine.begin() as conn:
            for chunk in chunks(list(rows)):
                existing = dict(
                    conn.execute(
                        sa.select(t.orders.c.order_id, t.orders.c.payload_hash).where(
                            t.orders.c.order_id.in_(chunk)
                        )
                    ).all()
                )
                todo = [rows[i] for i in chunk if existing.get(i) != rows[i]["payload_hash"]]
                changed += [i for i in chunk if i in existing and existing[i] != rows[i]["payload_hash"]]
                if todo:
                    conn.execute(self._order_upsert, todo)  # executemany: compiled once
        return changed

    @property
    def _order_upsert(self) -> Any:
        stmt = self._insert(t.orders)
        return stmt.on_conflict_do_update(
            index_elements=[t.orders.c.order_id],
            set_={c.name: stmt.excluded[c.name] for c in t.orders.c if c.name != "order_id"},
        )

    def note_unreadable_orders(self, problems: Sequence[str], *, run_id: str | None) -> None:
        now = utcnow()
        self._events([event(now, run_id, "order_unreadable", f"order skipped: {p}") for p in problems])

    def reopen_records_of_orders(self, order_ids: Sequence[int], *, run_id: str | None) -> int:
        """An edited order may now match differently: its settled records are decided again."""
        if not order_ids:
            return 0
        count = 0
        with self.engine.begin() as conn:
            for chunk in chunks(list(order_ids)):
                res = conn.execute(
                    t.records.update()
                    .where(t.records.c.order_id.in_(chunk))
                    .where(
                        t.records.c.status.in_(
                            (RecordStatus.NO_ORDER_YET, RecordStatus.AMBIGUOUS, RecordStatus.INVALID)
                        )
                    )
                    .values(
                        status=RecordStatus.PENDING,
                        status_reason="ShipStation order edited",
                        next_attempt_at=None,
                        updated_at=utcnow(),
                        last_run_id=run_id,
                    )
                )
                count += res.rowcount or 0
        return count

    def known_order_ids(self, order_ids: Iterable[int]) -> set[int]:
        ids = list(set(order_ids))
        found: set[int] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                found.update(
                    conn.execute(
                        sa.select(t.orders.c.order_id).where(t.orders.c.order_id.in_(chunk))
                    ).scalars()
                )
        return found

    def parent_ids_of(self, order_ids: Iterable[int]) -> set[int]:
        """The split parents of these orders (one column read, not whole orders)."""
        ids = list(set(order_ids))
        parents: set[int] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                parents.update(
                    conn.execute(
                        sa.select(t.orders.c.parent_id)
                        .where(t.orders.c.order_id.in_(chunk))
                        .where(t.orders.c.parent_id.is_not(None))
                        .distinct()
                    ).scalars()
                )
        return parents

    def order_ids_of(self, record_keys: Sequence[str]) -> set[int]:
        ids: set[int] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(list(record_keys)):
                ids.update(
                    i
                    for i in conn.execute(
                        sa.select(t.records.c.order_id).where(t.records.c.record_key.in_(chunk))
                    ).scalars()
                    if i is not None
                )
        return ids

    def order_infos(self, order_ids: Iterable[int]) -> dict[int, OrderInfo]:
        ids = list({i for i in order_ids if i is not None})
        infos: dict[int, OrderInfo] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                for row in conn.execute(sa.select(t.orders).where(t.orders.c.order_id.in_(chunk))).mappings():
                    infos[row["order_id"]] = OrderInfo(
                        order_id=row["order_id"],
                        order_number=row["order_number"],
                        order_key=row["order_key"],
                        order_date=row["order_date"],
                        ship_to_name=row["ship_to_name"],
                        bill_to_name=row["bill_to_name"],
                        parent_id=row["parent_id"],
                    )
        # Split children need their parent's identifiers too.
        parents = {i.parent_id for i in infos.values() if i.parent_id and i.parent_id not in infos}
        if parents:
            infos.update(self.order_infos(parents))
        return infos

    # NAV snapshots: what the matcher read, reused by the write step (the ETag guards staleness)

    def _events(self, events: Sequence[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            add_events(conn, events)
