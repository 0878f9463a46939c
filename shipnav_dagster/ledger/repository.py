"""Reading and writing the ledger. Every write is idempotent and safe with two concurrent writers
on PostgreSQL (upserts use ON CONFLICT; cursors only move forward)."""

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.core.model import (
    ReceivedRecord,
    RecordStatus,
    ShipRecord,
)
from shipnav_dagster.ledger import migrations
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc, chunks, json_text, payload_hash, storable, upsert, utcnow
from shipnav_dagster.ledger.claims import ClaimsMixin
from shipnav_dagster.ledger.cursors import CursorsMixin, NavSnapshotsMixin
from shipnav_dagster.ledger.decisions import DecisionsMixin
from shipnav_dagster.ledger.events import add_events, event
from shipnav_dagster.ledger.orders import OrdersMixin


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


class Ledger(ClaimsMixin, DecisionsMixin, OrdersMixin, CursorsMixin, NavSnapshotsMixin):
    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        self.url = url
        self.engine = engine or sa.create_engine(url, future=True, pool_pre_ping=True)
        self._write_lock: threading.Lock | None = None
        if self.engine.dialect.name == "sqlite":
            # Dagster's run worker and the demo may write at once; wait instead of failing.
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self._write_lock = threading.Lock()

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A write transaction for the write step's threads. SQLite takes one writer at a time,
        and a connection that finds the database locked sleeps in its busy handler (1 ms, then
        2, 5 ... up to 100 ms a try) rather than queueing; so this process's writers queue on a
        lock instead. PostgreSQL writes concurrently."""
        with self._write_lock or nullcontext(), self.engine.begin() as conn:
            yield conn

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
            return dict(conn.execute(_VERSIONS_OF_ORDER, {"nav_order_no": nav_order_no}).all())

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


# Asked once per written order: built once, so each call only binds the order number.
_VERSIONS_OF_ORDER = (
    sa.select(t.records.c.record_key, t.records.c.version)
    .where(t.records.c.nav_order_no == sa.bindparam("nav_order_no"))
    .where(
        t.records.c.status.notin_((RecordStatus.AMBIGUOUS, RecordStatus.INVALID, RecordStatus.NO_ORDER_YET))
    )
)

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


def _record_row(received: ReceivedRecord, seen_via: str, now: datetime, run_id: str | None) -> dict[str, Any]:
    record = received.record
    payload = received.payload
    row: dict[str, Any] = {
        "record_key": received.record_key,
        "source": received.source,
        "payload": json_text(payload),
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
        "order_number": storable(record.order_number),
        "order_key": storable(record.order_key),
        "tracking_number": storable(record.tracking_number),
        "carrier_code": storable(record.carrier_code),
        "service_code": storable(record.service_code),
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
