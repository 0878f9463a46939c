"""The append-only history of each record: one row per thing that happened to it, with the run."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger._sql import chunks


def event(
    at: datetime,
    run_id: str | None,
    kind: str,
    message: str,
    record_key: str | None = None,
    nav_order_no: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "at": at,
        "record_key": record_key,
        "nav_order_no": nav_order_no,
        "kind": kind,
        "message": message,
        "detail": json.dumps(detail, default=str) if detail else None,
        "run_id": run_id,
    }


def add_events(conn: sa.Connection, events: Sequence[dict[str, Any]]) -> None:
    for chunk in chunks(list(events), 1000):
        conn.execute(t.events.insert(), list(chunk))
