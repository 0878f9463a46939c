"""Reading and writing the ledger. Every write is idempotent and safe with two concurrent writers
on PostgreSQL (upserts use ON CONFLICT; cursors only move forward)."""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.core.model import (
    OrderInfo,
    ReceivedRecord,
    RecordStatus,
    ShipRecord,
)
from shipnav_dagster.ledger import migrations
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc, chunks, upsert, utcnow
from shipnav_dagster.ledger.claims import ClaimsMixin
from shipnav_dagster.ledger.decisions import DecisionsMixin
from shipnav_dagster.ledger.events import add_events, event


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class UpsertResult:
    new: list[str]
    changed: list[str]
    unchanged: int
    invalid: list[str]  # new or changed records whose payload could not be parsed


@dataclass
class Loaded:
    records: list[ShipRecord] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)


@dataclass
class OrderRecords:
    """The ledger's records of one NAV order."""

    records: list[ShipRecord] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)  # matched, not yet settled by a write


class Ledger(ClaimsMixin, DecisionsMixin):
    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        self.url = url
        self.engine = engine or sa.create_engine(url, future=True, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            # Dagster's run worker and the demo may write at once; wait instead of failing.
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def create_all(self) -> "Ledger":
        """Create the tables, or bring an existing ledger to the newest schema (in place)."""
        migrations.upgrade(self.engine)
        return self

    def dispose(self) -> None:
        self.engine.dispose()

    def _insert(self, table: sa.Table) -> Any:
        return upsert(self.engine.dialect.name, table)

    # ShipStation records ---------------------------------------------------------------------

    def upsert_records(
        self, received: Iterable[ReceivedRecord], *, run_id: str | None, seen_via: str
    ) -> UpsertResult:
        """Store labels/fulfillments before anything else happens to them (invariant 2).

        A record whose payload changed (voided, re-dated) goes back to ``pending`` (or ``invalid``
        with the new problem) and its version grows, so the next match/plan sees it and no run
        still holding the old version can settle it; an unchanged one is left exactly as it was.
        So is a label read through the other API generation (a shop moving from V1 to V2) that
        states the same facts (``ShipRecord.same_facts``): it keeps its record, status and payload.
        """
        now = utcnow()
        received = list(received)
        parsed = {r.record_key: r.record for r in received}
        rows = {r.record_key: _record_row(r, seen_via, now, run_id) for r in received}
        result = UpsertResult([], [], 0, [])
        events: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            for chunk in chunks(list(rows)):
                stored = {
                    key: (payload_hash, record)
                    for key, payload_hash, record in conn.execute(
                        sa.select(t.records.c.record_key, t.records.c.payload_hash, t.records.c.record).where(
                            t.records.c.record_key.in_(chunk)
                        )
                    ).all()
                }
                todo = [rows[k] for k in chunk if _differs(stored.get(k), rows[k]["payload_hash"], parsed[k])]
                result.unchanged += len(chunk) - len(todo)
                if not todo:
                    continue
                conn.execute(self._record_upsert, todo)
                # What this run really inserted or changed: another run polling the same window at
                # the same moment may have stored a record first, and it is seen only once.
                mine = dict(
                    conn.execute(
                        sa.select(t.records.c.record_key, t.records.c.first_seen_at)
                        .where(t.records.c.record_key.in_([r["record_key"] for r in todo]))
                        .where(t.records.c.updated_at == now)
                        .where(t.records.c.last_run_id.is_not_distinct_from(run_id))
                    ).all()
                )
                for row in todo:
                    key = row["record_key"]
                    if key not in mine:
                        result.unchanged += 1
                        continue
                    if as_utc(mine[key]) == now:
                        result.new.append(key)
                        events.append(event(now, run_id, "seen", f"seen via {seen_via}", key))
                    else:
                        result.changed.append(key)
                        events.append(
                            event(
                                now,
                                run_id,
                                "changed",
                                f"payload changed (seen via {seen_via})",
                                key,
                                detail={"voided": row["voided"], "tracking": row["tracking_number"]},
                            )
                        )
                    if row["status"] == RecordStatus.INVALID:
                        result.invalid.append(key)
                        events.append(event(now, run_id, "invalid", row["status_reason"], key))
            add_events(conn, events)
        return result

    @property
    def _record_upsert(self) -> Any:
        """One compiled statement for every batch (executemany): insert, or update a record whose
        payload changed."""
        stmt = self._insert(t.records)
        update = {c: stmt.excluded[c] for c in _CHANGED_RECORD_COLUMNS}
        update["status"] = stmt.excluded.status
        update["status_reason"] = sa.case(
            (stmt.excluded.status == RecordStatus.INVALID, stmt.excluded.status_reason),
            else_=sa.literal("changed in ShipStation"),
        )
        update["next_attempt_at"] = sa.null()
        update["version"] = t.records.c.version + 1
        return stmt.on_conflict_do_update(
            index_elements=[t.records.c.record_key],
            set_=update,
            where=t.records.c.payload_hash != stmt.excluded.payload_hash,
        )

    def upsert_orders(self, orders: Iterable[tuple[OrderInfo, dict[str, Any]]]) -> list[int]:
        """Store ShipStation orders (as parsed, and their raw payload); returns the ids of
        already-known orders that changed."""
        now = utcnow()
        rows = {}
        for info, payload in orders:
            rows[info.order_id] = {
                "order_id": info.order_id,
                "order_number": _storable(info.order_number),
                "order_key": _storable(info.order_key),
                "order_date": info.order_date,
                "ship_to_name": _storable(info.ship_to_name),
                "bill_to_name": _storable(info.bill_to_name),
                "parent_id": info.parent_id,
                "order_status": _storable(info.status),
                "modify_date": None,
                "payload": _json(payload),
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
                    stmt = self._insert(t.orders).values(todo)
                    stmt = stmt.on_conflict_do_update(
                        index_elements=[t.orders.c.order_id],
                        set_={c.name: stmt.excluded[c.name] for c in t.orders.c if c.name != "order_id"},
                    )
                    conn.execute(stmt)
        return changed

    def note_unreadable_orders(self, problems: Sequence[str], *, run_id: str | None) -> None:
        now = utcnow()
        self.add_events([event(now, run_id, "order_unreadable", f"order skipped: {p}") for p in problems])

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

    def save_nav_orders(self, entities: Sequence[dict[str, Any]], *, run_id: str | None) -> None:
        now = utcnow()
        rows = {
            e["No"]: {"nav_order_no": e["No"], "entity": json.dumps(e), "fetched_at": now, "run_id": run_id}
            for e in entities
        }
        with self.engine.begin() as conn:
            for chunk in chunks(list(rows.values())):
                stmt = self._insert(t.nav_orders).values(list(chunk))
                stmt = stmt.on_conflict_do_update(
                    index_elements=[t.nav_orders.c.nav_order_no],
                    set_={"entity": stmt.excluded.entity, "fetched_at": now, "run_id": run_id},
                )
                conn.execute(stmt)

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

    # Cursors -----------------------------------------------------------------------------------

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

    def load_versioned(self, keys: Sequence[str]) -> "Loaded":
        """The parsed records (invalid ones have none), the versions they were read at, and the
        status each had when it was claimed."""
        loaded = Loaded()
        with self.engine.connect() as conn:
            for chunk in chunks(list(keys)):
                for key, record, version, status in conn.execute(
                    sa.select(
                        t.records.c.record_key, t.records.c.record, t.records.c.version, t.records.c.status
                    ).where(t.records.c.record_key.in_(chunk))
                ).all():
                    loaded.statuses[key] = status
                    if record is not None:
                        loaded.records.append(ShipRecord.model_validate_json(record))
                        loaded.versions[key] = version
        return loaded

    def load_records(self, keys: Sequence[str]) -> list[ShipRecord]:
        out: list[ShipRecord] = []
        with self.engine.connect() as conn:
            for chunk in chunks(list(keys)):
                rows = conn.execute(
                    sa.select(t.records.c.record).where(t.records.c.record_key.in_(chunk))
                ).scalars()
                out += [ShipRecord.model_validate_json(r) for r in rows if r is not None]
        return out

    def records_of_nav_orders(self, nav_order_nos: Sequence[str]) -> dict[str, "OrderRecords"]:
        """Every record matched to each NAV order (the plan is made from all of them), with the
        versions they are at and which of them are still to be settled by a write."""
        grouped: dict[str, OrderRecords] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(nav_order_nos)):
                rows = conn.execute(
                    sa.select(
                        t.records.c.nav_order_no,
                        t.records.c.record_key,
                        t.records.c.record,
                        t.records.c.version,
                        t.records.c.status,
                    )
                    .where(t.records.c.nav_order_no.in_(chunk))
                    .where(
                        t.records.c.status.notin_(
                            (RecordStatus.AMBIGUOUS, RecordStatus.INVALID, RecordStatus.NO_ORDER_YET)
                        )
                    )
                ).all()
                for no, key, record, version, status in rows:
                    if record is None:
                        continue
                    group = grouped.setdefault(no, OrderRecords())
                    group.records.append(ShipRecord.model_validate_json(record))
                    group.versions[key] = version
                    if status == RecordStatus.MATCHED_PENDING:
                        group.pending.add(key)
        return grouped

    def versions_of_order(self, nav_order_no: str) -> dict[str, int]:
        """The records matched to one NAV order and their versions (one indexed query)."""
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    sa.select(t.records.c.record_key, t.records.c.version)
                    .where(t.records.c.nav_order_no == nav_order_no)
                    .where(
                        t.records.c.status.notin_(
                            (RecordStatus.AMBIGUOUS, RecordStatus.INVALID, RecordStatus.NO_ORDER_YET)
                        )
                    )
                ).all()
            )

    def record_rows(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(keys)):
                for row in conn.execute(
                    sa.select(t.records).where(t.records.c.record_key.in_(chunk))
                ).mappings():
                    out[row["record_key"]] = dict(row)
        return out

    def add_events(self, events: Sequence[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            add_events(conn, events)


_CHANGED_RECORD_COLUMNS = (
    "source_id",
    "order_id",
    "order_number",
    "order_key",
    "tracking_number",
    "carrier_code",
    "service_code",
    "ship_date",
    "created_at",
    "voided",
    "void_date",
    "is_return",
    "payload",
    "payload_hash",
    "record",
    "last_seen_at",
    "updated_at",
    "last_run_id",
)


def _differs(stored: tuple[str, str | None] | None, payload_hash: str, new: ShipRecord | None) -> bool:
    """Whether a record is new, or its payload changed in a way that matters (see upsert_records)."""
    if stored is None:
        return True
    old_hash, old_record = stored
    return old_hash != payload_hash and not _other_generation_same_facts(old_record, new)


def _other_generation_same_facts(stored: str | None, new: ShipRecord | None) -> bool:
    """The stored record and the new one are the same label read through the two API generations
    (V1 ``shipmentId`` N is V2 ``label_id`` se-N), and the new one changes none of its facts."""
    if stored is None or new is None:
        return False
    old = ShipRecord.model_validate_json(stored)
    return old.api != new.api and old.same_facts(new)


def _json(value: object) -> str:
    """JSON text for a ledger column; NUL and other control characters are escaped by json, so
    even a payload carrying U+0000 is stored (PostgreSQL text cannot hold a raw NUL)."""
    return json.dumps(value, sort_keys=True, default=str)


def _storable(value: object) -> str | None:
    """A value for a display column (the record JSON keeps the exact value): a raw NUL, which
    PostgreSQL text refuses, is shown as the visible escape ``\\x00``."""
    if value is None:
        return None
    return str(value).replace("\x00", "\\x00")


def _record_row(received: ReceivedRecord, seen_via: str, now: datetime, run_id: str | None) -> dict[str, Any]:
    record = received.record
    payload = received.payload
    row: dict[str, Any] = {
        "record_key": received.record_key,
        "source": received.source,
        "payload": _json(payload),
        "payload_hash": payload_hash(payload),
        "seen_via": seen_via,
        "first_seen_at": now,
        "last_seen_at": now,
        "attempts": 0,
        "version": 0,
        "updated_at": now,
        "last_run_id": run_id,
    }
    if record is None:
        return row | {
            "source_id": None,
            "order_id": None,
            "order_number": None,
            "order_key": None,
            "tracking_number": None,
            "carrier_code": None,
            "service_code": None,
            "ship_date": None,
            "created_at": None,
            "voided": False,
            "void_date": None,
            "is_return": False,
            "record": None,
            "status": RecordStatus.INVALID,
            "status_reason": f"unreadable {received.source}: {received.problem}",
        }
    return row | {
        "source_id": record.source_id,
        "order_id": record.order_id,
        "order_number": _storable(record.order_number),
        "order_key": _storable(record.order_key),
        "tracking_number": _storable(record.tracking_number),
        "carrier_code": _storable(record.carrier_code),
        "service_code": _storable(record.service_code),
        "ship_date": record.ship_date,
        "created_at": record.created_at,
        "voided": record.voided,
        "void_date": record.void_date,
        "is_return": record.is_return,
        "record": record.model_dump_json(),
        "status": RecordStatus.PENDING,
        "status_reason": "new",
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # In WAL mode, NORMAL loses no committed transaction when a process dies (SIGKILL included),
    # only possibly the last ones on power loss, and spares an fsync per commit: the write step
    # commits each order's outcome on its own (https://www.sqlite.org/pragma.html#pragma_synchronous).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
