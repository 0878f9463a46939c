"""Opening a ledger that already exists, never creating one: reading commands (``shipnav ledger``,
``shipnav report``, ``shipnav check``) say which ledger they opened, or that there is none.

Connecting to an SQLite URL creates the file, so the file is looked for first; a PostgreSQL
database counts as a ledger once it has the records table.
"""

from pathlib import Path

import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger.repository import Ledger


class NoLedger(LookupError):
    """Nothing to open where the settings point; the message says where that was."""


class LedgerUnavailable(ConnectionError):
    """The ledger's database could not be reached or read; the message says which and why,
    ``detail`` is the driver's reason alone (its error type and first line)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def display_url(url: str) -> str:
    """The ledger's location for people: an SQLite file's path, or the URL without its password."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:  # unparsable: show its scheme only, the rest may hold a password
        return url.split(":", 1)[0] + ":…"
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(Path(str(parsed.database)).resolve())
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def open_existing(url: str) -> Ledger:
    """The ledger at ``url`` when it exists; :class:`NoLedger` or :class:`LedgerUnavailable` otherwise."""
    shown = display_url(url)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise NoLedger(f"no ledger at {shown}")
    ledger = Ledger(url)
    try:
        with ledger.engine.connect() as conn:
            exists = sa.inspect(conn).has_table(t.records.name)
    except sa.exc.SQLAlchemyError as exc:
        ledger.dispose()
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines()
        detail = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
        raise LedgerUnavailable(f"cannot read the ledger at {shown} ({detail})", detail) from None
    if not exists:
        ledger.dispose()
        raise NoLedger(f"no ledger at {shown} (the database has no {t.records.name} table)")
    return ledger
