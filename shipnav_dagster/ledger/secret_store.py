"""Credentials stored encrypted in the ledger, each standing in for one environment variable.

``shipnav secrets set NAV_CLIENT_SECRET`` keeps the value in ``shipnav_secrets``, encrypted with
Fernet (AES-128-CBC plus HMAC-SHA256) under ``SHIPNAV_SECRET_KEY``. ``load_settings()`` fills a
secret the environment does not set from here, so the key is the only credential an operator has
to hand to every shipnav process; an environment variable always wins over a stored value.

Each ciphertext also carries the name it was stored under, so a row copied onto another name
(say the ShipStation secret moved onto ``NAV_PASSWORD``) is refused instead of being sent to the
wrong system. Every message names the secret and never carries its value or the key.

This module imports no shipnav settings (``settings.py`` imports it), only the ledger schema.
The ``shipnav secrets`` commands that use it are in ``shipnav_dagster.cli.secrets``.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import as_utc, upsert

KEY_VARIABLE = "SHIPNAV_SECRET_KEY"
# The environment variables a stored secret may stand in for. NAV_CLIENT_ID and NAV_USERNAME are
# not secret on their own, but operators keep them next to their secrets, so they may be stored.
STORABLE: tuple[str, ...] = (
    "SHIPSTATION_API_KEY",
    "SHIPSTATION_API_SECRET",
    "NAV_CLIENT_ID",
    "NAV_CLIENT_SECRET",
    "NAV_USERNAME",
    "NAV_PASSWORD",
    "SHIPNAV_WEBHOOK_TOKEN",
    "SHIPNAV_WEBHOOK_HEADER_SECRET",
)
KEY_HINT = "create one with `shipnav secrets generate-key`"


class SecretStoreError(ValueError):
    """The store cannot do what was asked; the message names the secret, never its value."""


class SecretStoreUnavailable(SecretStoreError):
    """The ledger could not be reached; stored secrets are unknown, not absent."""


class SecretUsageError(SecretStoreError):
    """The command was asked for something it refuses (a name, an empty value, no key)."""


@dataclass(frozen=True)
class StoredSecret:
    """What ``shipnav secrets list`` shows: a name and dates, never a value."""

    name: str
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------------------------
# Names, keys and ciphertexts
# --------------------------------------------------------------------------------------------


def secret_name(text: str) -> str:
    """The canonical (upper-case) name, or an error saying which names can be stored."""
    name = text.strip().upper()
    if name == KEY_VARIABLE:
        raise SecretUsageError(
            f"{KEY_VARIABLE} cannot be stored: it is the key that decrypts the store; keep it in the "
            "environment (or your secrets manager) of every shipnav process"
        )
    if name not in STORABLE:
        raise SecretUsageError(f"{text!r} is not a credential shipnav stores; one of: {', '.join(STORABLE)}")
    return name


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def fernet(key: str, *, what: str = KEY_VARIABLE) -> Fernet:
    """A Fernet for ``key``; an unusable key is named (``what``) but never echoed."""
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SecretStoreError(
            f"{what} is not a valid Fernet key (44 characters of URL-safe base64); {KEY_HINT}"
        ) from None


def encrypt(name: str, value: str, box: Fernet) -> str:
    # The name goes inside the ciphertext: Fernet has no associated data, and this binds the two.
    plaintext = json.dumps({"name": name, "value": value}, ensure_ascii=False)
    return box.encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(name: str, ciphertext: str, box: Fernet) -> str:
    """The stored value of ``name``; a wrong key or a tampered row is an error naming ``name``."""
    try:
        payload = json.loads(box.decrypt(ciphertext.encode("ascii")).decode("utf-8"))
    except (InvalidToken, UnicodeError, ValueError):
        # `from None`: the chained InvalidToken says nothing useful and the text must stay clean.
        raise SecretStoreError(
            f"{KEY_VARIABLE} cannot decrypt the stored {name}: wrong key? Set the key it was stored "
            f"with, or store it again with `shipnav secrets set {name}`"
        ) from None
    if (
        not isinstance(payload, dict)
        or payload.get("name") != name
        or not isinstance(payload.get("value"), str)
    ):
        raise SecretStoreError(
            f"the stored {name} was encrypted for another name (the row was copied or edited); "
            f"store it again with `shipnav secrets set {name}`"
        )
    return payload["value"]


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _engine(url: str) -> sa.Engine:
    """A short-lived engine: no pool to keep open, and no endless wait for an unreachable server."""
    connect_args: dict[str, Any] = {}
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 10
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)


def sqlite_file_missing(url: str) -> bool:
    """True for an SQLite URL whose file does not exist yet (so nothing can be stored there)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).exists()


class SecretStore:
    """``shipnav_secrets`` in the ledger. Every write is one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    @contextmanager
    def open(cls, url: str) -> Iterator["SecretStore"]:
        engine = _engine(url)
        try:
            yield cls(engine)
        finally:
            engine.dispose()

    def ensure_table(self) -> "SecretStore":
        t.secrets.create(self.engine, checkfirst=True)
        return self

    def has_table(self) -> bool:
        return sa.inspect(self.engine).has_table(t.secrets.name)

    def put(self, name: str, value: str, key: str) -> bool:
        """Store ``value`` under ``name``; True when new, False when it replaced a stored value.

        Refused when ``key`` cannot decrypt the other stored secrets: one store, one key, or
        ``load_settings()`` would fail on whichever secret was stored under the other key.
        """
        box = fernet(key)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            _serialize_writers(conn)
            rows = dict(conn.execute(sa.select(t.secrets.c.name, t.secrets.c.ciphertext)).all())
            for other, ciphertext in sorted(rows.items()):
                if other != name:
                    decrypt(other, ciphertext, box)
            insert = upsert(conn.dialect.name, t.secrets)
            row = {
                "name": name,
                "ciphertext": encrypt(name, value, box),
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(
                insert.values(**row).on_conflict_do_update(
                    index_elements=[t.secrets.c.name],
                    set_={"ciphertext": row["ciphertext"], "updated_at": now},
                )
            )
        return name not in rows

    def entries(self) -> list[StoredSecret]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.secrets.c.name, t.secrets.c.created_at, t.secrets.c.updated_at).order_by(
                    t.secrets.c.name
                )
            ).all()
        return [StoredSecret(name, as_utc(created), as_utc(updated)) for name, created, updated in rows]

    def delete(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(t.secrets).where(t.secrets.c.name == name)).rowcount > 0

    def ciphertexts(self, names: Sequence[str]) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.secrets.c.name, t.secrets.c.ciphertext).where(t.secrets.c.name.in_(list(names)))
            ).all()
        return dict(rows)

    def rotate(self, old_key: str, new_key: str) -> list[str]:
        """Re-encrypt every stored value under ``new_key`` in one transaction: all or nothing.

        Writers are serialized (see ``_serialize_writers``), so a ``secrets set`` running at the
        same moment either finishes first (and is re-encrypted) or runs after and is refused.
        """
        old, new = fernet(old_key), fernet(new_key, what="the new key")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            _serialize_writers(conn)
            rows = conn.execute(
                sa.select(t.secrets.c.name, t.secrets.c.ciphertext).order_by(t.secrets.c.name)
            ).all()
            for name, ciphertext in rows:
                value = decrypt(name, ciphertext, old)
                conn.execute(
                    sa.update(t.secrets)
                    .where(t.secrets.c.name == name)
                    .values(ciphertext=encrypt(name, value, new), updated_at=now)
                )
        return [name for name, _ in rows]


def _serialize_writers(conn: sa.Connection) -> None:
    """One writer at a time on PostgreSQL (readers such as load_settings() are not blocked).

    Without it a ``set`` under the old key could slip in beside a ``rotate-key`` and leave a
    value no key in use can open. SQLite serializes writers on its own.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f'LOCK TABLE "{t.secrets.name}" IN SHARE ROW EXCLUSIVE MODE'))


# --------------------------------------------------------------------------------------------
# Reading for load_settings()
# --------------------------------------------------------------------------------------------


def load_stored(url: str, names: Sequence[str], key: str | None) -> dict[str, str]:
    """The decrypted stored values of ``names`` (those that are stored), by name.

    One small query when the table exists. No table, or an SQLite ledger that does not exist
    yet, means nothing is stored. An unreachable ledger raises :class:`SecretStoreUnavailable`
    (the caller decides whether that matters); a stored value with no key or the wrong key
    raises :class:`SecretStoreError` naming it.
    """
    if not names or sqlite_file_missing(url):
        return {}
    with SecretStore.open(url) as store:
        rows = _read_rows(store, names)
    if not rows:
        return {}
    if not key:
        stored = ", ".join(sorted(rows))
        verb = "is" if len(rows) == 1 else "are"
        raise SecretStoreError(
            f"{stored} {verb} stored encrypted but {KEY_VARIABLE} is not set (set it to the key "
            f"the secrets were stored with, or set {stored} in the environment)"
        )
    box = fernet(key)
    return {name: decrypt(name, ciphertext, box) for name, ciphertext in sorted(rows.items())}


def _read_rows(store: SecretStore, names: Sequence[str]) -> dict[str, str]:
    try:
        return store.ciphertexts(names)
    except sa.exc.DBAPIError as exc:
        # Only on the error path: a missing table is "nothing stored", anything else is an outage.
        if not exc.connection_invalidated and _table_missing(store):
            return {}
        raise SecretStoreUnavailable(
            f"the secrets stored in the ledger could not be read ({describe_db_error(exc)})"
        ) from None


def _table_missing(store: SecretStore) -> bool:
    try:
        return not store.has_table()
    except sa.exc.DBAPIError:
        return False


def describe_db_error(exc: sa.exc.DBAPIError) -> str:
    """The driver's first line, without any connection URL (which may hold a password)."""
    text = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
    return f"{type(exc.orig).__name__}: {text[:200]}" if text else type(exc.orig).__name__
