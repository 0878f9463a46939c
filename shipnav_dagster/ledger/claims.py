"""Who may work on what: records are claimed by one run for deciding, NAV orders by one run for
writing. A claim lasts as long as the run that holds it: the caller names the runs it knows to
be over (finished, failed, canceled, or unknown to the Dagster instance) and their claims count
for nothing at once; ``CLAIM_TTL`` is only the last resort for claims whose run nobody can ask
about (a run started outside Dagster)."""

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.core.model import QUEUED_STATUSES, RecordStatus
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import chunks, utcnow

CLAIM_TTL = timedelta(minutes=30)


class ClaimsMixin:
    engine: sa.Engine

    def _insert(self, table: sa.Table) -> Any:  # provided by Ledger
        raise NotImplementedError

    # Records -----------------------------------------------------------------------------------

    @staticmethod
    def _due(now: datetime) -> sa.ColumnElement[bool]:
        """Queued records whose next attempt has come (served by ix_shipnav_records_due)."""
        return sa.and_(
            t.records.c.status.in_(QUEUED_STATUSES),
            sa.or_(t.records.c.next_attempt_at.is_(None), t.records.c.next_attempt_at <= now),
        )

    @staticmethod
    def _free(column: sa.Column[Any], at: sa.Column[Any], now: datetime, dead: Collection[str]) -> Any:
        conditions = [column.is_(None), at < now - CLAIM_TTL]
        if dead:
            conditions.append(column.in_(list(dead)))
        return sa.or_(*conditions)

    def _unclaimed(self, now: datetime, dead: Collection[str] = ()) -> sa.ColumnElement[bool]:
        return self._free(t.records.c.claimed_by_run, t.records.c.claimed_at, now, dead)

    def due_count(
        self, *, now: datetime | None = None, dead_runs: Collection[str] = (), cap: int = 10_000
    ) -> int:
        """How many queued records are due (capped): the retry sensor's one cheap query."""
        now = now or utcnow()
        inner = (
            sa.select(t.records.c.record_key)
            .where(self._due(now))
            .where(self._unclaimed(now, dead_runs))
            .limit(cap)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(inner.subquery())).scalar_one())

    def claim(
        self,
        run_id: str,
        *,
        work: bool = False,
        due: bool = False,
        queued: bool = False,
        keys: Sequence[str] = (),
        max_age: timedelta | None = None,
        dead_runs: Collection[str] = (),
        now: datetime | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Atomically take records for one run, so two runs never decide the same record.

        ``work`` (a sync): new and changed records, matched ones not yet written, those queued
        because NAV was unreachable (the cause is gone if this run reaches NAV), those whose NAV
        order did not exist yet while younger than ``max_age`` (asked again in the same lookups),
        and every other queued record that is due. ``due``: queued records that are due (the
        retry sensor). ``queued``: every queued record now, whatever its backoff (an operator's
        replay). ``keys``: exactly these, whatever their status. PostgreSQL skips rows another run
        is claiming right now (FOR UPDATE SKIP LOCKED); SQLite serialises writers anyway.
        """
        now = now or utcnow()
        conditions = []
        if work:
            work_conditions = [
                t.records.c.status.in_((RecordStatus.PENDING, RecordStatus.MATCHED_PENDING)),
                self._due(now),
                sa.and_(t.records.c.status == RecordStatus.FAILED, t.records.c.failure_kind == "outage"),
            ]
            if max_age is not None:
                work_conditions.append(
                    sa.and_(
                        t.records.c.status == RecordStatus.NO_ORDER_YET,
                        t.records.c.first_seen_at >= now - max_age,
                    )
                )
            conditions.append(sa.or_(*work_conditions))
        if due:
            conditions.append(self._due(now))
        if queued:
            conditions.append(t.records.c.status.in_(QUEUED_STATUSES))
        claimed: list[str] = []
        with self.engine.begin() as conn:
            selections = []
            if conditions:
                selections.append(sa.select(t.records.c.record_key).where(sa.or_(*conditions)))
            for chunk in chunks(list(keys)):
                selections.append(sa.select(t.records.c.record_key).where(t.records.c.record_key.in_(chunk)))
            for selection in selections:
                subquery = (
                    selection.where(self._unclaimed(now, dead_runs))
                    .order_by(t.records.c.created_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                stmt = (
                    t.records.update()
                    .where(t.records.c.record_key.in_(subquery.scalar_subquery()))
                    .values(claimed_by_run=run_id, claimed_at=now)
                    .returning(t.records.c.record_key)
                )
                claimed += list(conn.execute(stmt).scalars())
        return claimed

    def nav_orders_claimed_by(self, run_id: str) -> list[str]:
        """NAV orders this run matched records to and has not written yet."""
        with self.engine.connect() as conn:
            return sorted(
                conn.execute(
                    sa.select(t.records.c.nav_order_no)
                    .where(t.records.c.claimed_by_run == run_id)
                    .where(t.records.c.status == RecordStatus.MATCHED_PENDING)
                    .where(t.records.c.nav_order_no.is_not(None))
                    .distinct()
                ).scalars()
            )

    # NAV orders: one writer each ----------------------------------------------------------------

    def claim_orders(
        self, run_id: str, nos: Sequence[str], *, dead_runs: Collection[str] = (), now: datetime | None = None
    ) -> set[str]:
        """The NAV orders this run may write now: those nobody holds, those it holds already, and
        those of runs that are over. An order another live run is writing is not taken; its
        records stay matched and the next run writes them."""
        now = now or utcnow()
        held: set[str] = set()
        with self.engine.begin() as conn:
            for chunk in chunks(list(dict.fromkeys(nos))):
                conn.execute(
                    t.order_claims.delete()
                    .where(t.order_claims.c.nav_order_no.in_(chunk))
                    .where(self._free(t.order_claims.c.run_id, t.order_claims.c.claimed_at, now, dead_runs))
                )
                insert = self._insert(t.order_claims).on_conflict_do_nothing(
                    index_elements=[t.order_claims.c.nav_order_no]
                )
                conn.execute(
                    insert, [{"nav_order_no": no, "run_id": run_id, "claimed_at": now} for no in chunk]
                )
                held.update(
                    conn.execute(
                        sa.select(t.order_claims.c.nav_order_no)
                        .where(t.order_claims.c.nav_order_no.in_(chunk))
                        .where(t.order_claims.c.run_id == run_id)
                    ).scalars()
                )
        return held

    def release_orders(self, run_id: str, nos: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            for chunk in chunks(list(nos)):
                conn.execute(
                    t.order_claims.delete()
                    .where(t.order_claims.c.run_id == run_id)
                    .where(t.order_claims.c.nav_order_no.in_(chunk))
                )

    # Both --------------------------------------------------------------------------------------

    def claim_holders(self) -> set[str]:
        """Every run id that holds a claim now: the caller asks Dagster which of them are over."""
        with self.engine.connect() as conn:
            records = conn.execute(
                sa.select(t.records.c.claimed_by_run)
                .where(t.records.c.claimed_by_run.is_not(None))
                .distinct()
            ).scalars()
            orders = conn.execute(sa.select(t.order_claims.c.run_id).distinct()).scalars()
            return {*records, *orders}

    def release(self, run_id: str) -> None:
        """Give back whatever a run still holds (it finished, or failed anywhere)."""
        with self.engine.begin() as conn:
            conn.execute(
                t.records.update()
                .where(t.records.c.claimed_by_run == run_id)
                .values(claimed_by_run=None, claimed_at=None)
            )
            conn.execute(t.order_claims.delete().where(t.order_claims.c.run_id == run_id))
