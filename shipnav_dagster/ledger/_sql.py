"""Helpers every ledger module needs once: UTC times, the dialect's upsert, chunked IN lists."""

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")
CHUNK = 500  # values per IN (...): far under SQLite's 32,766 bound parameters and PostgreSQL's 65,535


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes (what was stored, in UTC); everything in the ledger is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def upsert(dialect_name: str, table: sa.Table) -> Any:
    """``INSERT ... ON CONFLICT`` for the ledger's dialect (PostgreSQL or SQLite, same syntax)."""
    return (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(table)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def json_text(value: object) -> str:
    """JSON text for a ledger column; NUL and other control characters are escaped by json, so
    even a payload carrying U+0000 is stored (PostgreSQL text cannot hold a raw NUL)."""
    return json.dumps(value, sort_keys=True, default=str)


def storable(value: object) -> str | None:
    """A value for a display column (the record JSON keeps the exact value): a raw NUL, which
    PostgreSQL text refuses, is shown as the visible escape ``\\x00``."""
    if value is None:
        return None
    return str(value).replace("\x00", "\\x00")
