"""The webhook inbox: notifications stored by the receiver and drained by a run.

The receiver only calls ``store_notification``; the sensor asks ``has_pending``; the run that
fetches the ``resource_url``s calls ``claim_pending`` and then ``mark_done`` or ``mark_failed`` for
each row. Claims are atomic, so two runs never fetch the same notification at the same time.

The inbox is bounded: the receiver refuses new notifications while ``unprocessed_at_least`` its
cap (nothing stored is ever dropped for room), and deletes processed rows (done, or failed for
good) older than the retention with ``prune_processed``. A notification is a duplicate while a
row with its type and URL is still here: waiting, or processed within the retention. After that
the same URL is a new notification and is fetched again, which stores nothing twice (records
are upserted by their ShipStation id).
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc, upsert, utcnow

if TYPE_CHECKING:
    from shipnav_dagster.ledger.repository import Ledger

# The events stored: V1's, whose resource_url points at /shipments or /orders, and V2's, at
# /v2/labels and /v2/fulfillments (the receiver takes those of the configured generation).
RESOURCE_TYPES = frozenset(
    {"SHIP_NOTIFY", "ITEM_SHIP_NOTIFY", "ORDER_NOTIFY", "ITEM_ORDER_NOTIFY"}
    | {"LABEL_CREATED_V2", "FULFILLMENT_SHIPPED_V2"}
)
MAX_ATTEMPTS = 5
# A row claimed longer than this belongs to a run that crashed; another run may take it over.
CLAIM_TIMEOUT = timedelta(hours=1)
MAX_ERROR_LENGTH = 2000

PENDING, CLAIMED, DONE, FAILED = "pending", "claimed", "done", "failed"
UNPROCESSED = (PENDING, CLAIMED)
PROCESSED = (DONE, FAILED)  # failed rows left for retry are pending again, not failed

_inbox = t.inbox
_c = _inbox.c


@dataclass(frozen=True)
class InboxItem:
    """One claimed notification; ``attempts`` includes the current claim.

    Read as attributes (``item.id``) or like a row mapping (``item["id"]``).
    """

    id: int
    resource_type: str
    resource_url: str
    attempts: int
    received_at: datetime
    claimed_by_run: str | None

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)


def notification_digest(resource_type: str, resource_url: str) -> str:
    """The dedupe key: the same event type for the same URL is one notification."""
    return hashlib.sha256(f"{resource_type}\n{resource_url}".encode()).hexdigest()


def store_notification(
    ledger: "Ledger", resource_type: str, resource_url: str, *, now: datetime | None = None
) -> bool:
    """Queue one notification; False when the same one is already stored (waiting, or processed
    and not yet pruned)."""
    stmt = (
        upsert(ledger.engine.dialect.name, _inbox)
        .values(
            received_at=now or utcnow(),
            resource_type=resource_type,
            resource_url=resource_url,
            digest=notification_digest(resource_type, resource_url),
            status=PENDING,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["digest"])
    )
    with ledger.engine.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    """Pending rows, and rows whose claim is older than CLAIM_TIMEOUT (a crashed run)."""
    stale = sa.and_(_c.status == CLAIMED, _c.claimed_at < now - CLAIM_TIMEOUT)
    return sa.or_(_c.status == PENDING, stale)


def has_pending(ledger: "Ledger", *, now: datetime | None = None) -> bool:
    """Whether a run would find work; the sensor calls this every tick, so it is one indexed probe."""
    query = sa.select(_c.id).where(_claimable(now or utcnow())).limit(1)
    with ledger.engine.connect() as conn:
        return conn.execute(query).first() is not None


def pending_count(ledger: "Ledger", *, now: datetime | None = None) -> int:
    """Rows a run would claim: pending ones plus stale claims."""
    query = sa.select(sa.func.count()).select_from(_inbox).where(_claimable(now or utcnow()))
    with ledger.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def unprocessed_at_least(ledger: "Ledger", count: int) -> bool:
    """Whether ``count`` or more notifications wait to be processed (pending or claimed).

    Counts at most ``count`` index entries, so the receiver can ask on every request.
    """
    if count < 1:
        return True
    waiting = sa.select(_c.id).where(_c.status.in_(UNPROCESSED)).limit(count).subquery()
    query = sa.select(sa.func.count()).select_from(waiting)
    with ledger.engine.connect() as conn:
        return int(conn.execute(query).scalar_one()) >= count


def prune_processed(ledger: "Ledger", older_than: timedelta, *, now: datetime | None = None) -> int:
    """Delete processed rows (done, failed for good) older than ``older_than``; how many."""
    cutoff = (now or utcnow()) - older_than
    stmt = _inbox.delete().where(_c.status.in_(PROCESSED), _c.processed_at < cutoff)
    with ledger.engine.begin() as conn:
        return int(conn.execute(stmt).rowcount or 0)


def counts_by_status(ledger: "Ledger") -> dict[str, int]:
    """For operators (``shipnav ledger``, ``shipnav check``): rows per status."""
    query = sa.select(_c.status, sa.func.count()).group_by(_c.status)
    with ledger.engine.connect() as conn:
        return {status: int(n) for status, n in conn.execute(query).all()}


def claim_pending(
    ledger: "Ledger", run_id: str, limit: int = 100, *, now: datetime | None = None
) -> list[InboxItem]:
    """Atomically take up to ``limit`` notifications for ``run_id``, oldest first.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` in the sub-select lets concurrent runs take disjoint
    rows without waiting for each other. SQLite serialises writers, so the same UPDATE is
    atomic there too. A stale claim that already used every attempt is failed, not retaken, so a
    notification that crashes its run cannot loop forever.
    """
    if limit < 1:
        return []
    now = now or utcnow()
    with ledger.engine.begin() as conn:
        _fail_exhausted_stale_claims(conn, now)
        ids = sa.select(_c.id).where(_claimable(now)).order_by(_c.id).limit(limit)
        if ledger.is_postgres:
            ids = ids.with_for_update(skip_locked=True)
        stmt = (
            _inbox.update()
            .where(_c.id.in_(ids.scalar_subquery()))
            .values(status=CLAIMED, claimed_by_run=run_id, claimed_at=now, attempts=_c.attempts + 1)
            .returning(
                _c.id, _c.resource_type, _c.resource_url, _c.attempts, _c.received_at, _c.claimed_by_run
            )
        )
        rows = conn.execute(stmt).all()
    # RETURNING order is unspecified on both dialects.
    return sorted(
        (
            InboxItem(
                id=row.id,
                resource_type=row.resource_type,
                resource_url=row.resource_url,
                attempts=row.attempts,
                received_at=as_utc(row.received_at),
                claimed_by_run=row.claimed_by_run,
            )
            for row in rows
        ),
        key=lambda item: item.id,
    )


def _fail_exhausted_stale_claims(conn: sa.Connection, now: datetime) -> None:
    stale = sa.and_(_c.status == CLAIMED, _c.claimed_at < now - CLAIM_TIMEOUT, _c.attempts >= MAX_ATTEMPTS)
    conn.execute(
        _inbox.update()
        .where(stale)
        .values(
            status=FAILED,
            processed_at=now,
            error=f"claimed {MAX_ATTEMPTS} times by runs that never finished",
        )
    )


def mark_done(ledger: "Ledger", item_id: int, records_found: int, *, now: datetime | None = None) -> None:
    """The resource_url was fetched and its records stored."""
    stmt = (
        _inbox.update()
        .where(_c.id == item_id)
        .values(status=DONE, processed_at=now or utcnow(), records_found=records_found, error=None)
    )
    with ledger.engine.begin() as conn:
        conn.execute(stmt)


def mark_failed(
    ledger: "Ledger", item_id: int, error: str, *, final: bool = False, now: datetime | None = None
) -> str:
    """Give the row back for a retry, or fail it for good after MAX_ATTEMPTS; the new status.

    ``final`` fails it now: retrying cannot help (e.g. its URL is refused by the re-check).
    ``attempts`` was counted when the row was claimed, so it is not incremented here.
    """
    exhausted = sa.true() if final else _c.attempts >= MAX_ATTEMPTS
    stmt = (
        _inbox.update()
        .where(_c.id == item_id)
        .values(
            status=sa.case((exhausted, FAILED), else_=PENDING),
            processed_at=sa.case((exhausted, now or utcnow()), else_=None),
            claimed_by_run=None,
            claimed_at=None,
            error=error[:MAX_ERROR_LENGTH],
        )
        .returning(_c.status)
    )
    with ledger.engine.begin() as conn:
        status = conn.execute(stmt).scalar_one_or_none()
    if status is None:
        raise KeyError(f"no inbox row {item_id}")
    return str(status)
