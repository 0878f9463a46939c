"""The ledger's schema migrations (Alembic), run by shipnav itself: every process that opens the
ledger for writing brings it to the newest revision first, one process at a time.

Serialised because a scheduled sync, a replay and the webhook receiver may start together on a
fresh database: PostgreSQL takes a session advisory lock, SQLite an exclusive lock on a file
beside the database (SQLite itself serialises the DDL, but two processes could both read the old
revision and run the same migration twice).
"""

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

VERSION_TABLE = "shipnav_alembic_version"
# An arbitrary, fixed 64-bit key: pg_advisory_lock takes a bigint naming the lock.
_PG_LOCK_KEY = 0x5348_4950_4E41_5601
_HERE = Path(__file__).parent


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the ledger is at; None for an empty database (or one from before migrations,
    which the first revision adopts as it is)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def is_current(engine: sa.Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: sa.Engine) -> None:
    """Bring the ledger to the newest revision (nothing to do when it is there already)."""
    if is_current(engine):
        return
    with _serialized(engine) as conn:
        command.upgrade(_config(conn), "head")


@contextlib.contextmanager
def _serialized(engine: sa.Engine) -> Iterator[sa.Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            conn.commit()  # a session lock: it outlives this transaction, alembic starts its own
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        with engine.connect() as conn:
            yield conn
        return
    with open(f"{database}.migrate.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
