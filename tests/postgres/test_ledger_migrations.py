"""The ledger upgrades itself in place: from the schema of the first release (with and without a
migration history), on SQLite and PostgreSQL, one process at a time, and keeps its records."""

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from shipnav_dagster.ledger import migrations
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger.repository import Ledger

NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
PAYLOAD = {
    "shipmentId": 101,
    "orderId": 7,
    "trackingNumber": "1ZOLD",
    "createDate": "2026-11-20T10:00:00.0000000",
}


def _old_ledger(url: str, *, with_history: bool) -> sa.Engine:
    """A ledger as the first release left it: revision 0001's tables, one record in them."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        command.upgrade(migrations._config(conn), "0001")
        conn.commit()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO shipnav_records (record_key, source, source_id, order_id, tracking_number, "
                "created_at, voided, is_return, payload, payload_hash, seen_via, first_seen_at, "
                "last_seen_at, "
                "status, attempts, updated_at) VALUES ('shipment:101', 'shipment', 101, 7, '1ZOLD', :now, "
                "false, false, :payload, 'h', 'poll', :now, :now, 'written', 0, :now)"
            ),
            {"now": NOW, "payload": json.dumps(PAYLOAD)},
        )
        if not with_history:
            conn.execute(sa.text(f"DROP TABLE {migrations.VERSION_TABLE}"))
    return engine


def _assert_upgraded(url: str) -> None:
    ledger = Ledger(url).create_all()
    try:
        assert migrations.current_revision(ledger.engine) == migrations.head_revision()
        rows = ledger.record_rows(["shipment:101"])
        assert rows["shipment:101"]["tracking_number"] == "1ZOLD"
        assert rows["shipment:101"]["status"] == "written"
        assert rows["shipment:101"]["version"] == 0
        # Text now: a 300-character tracking number is stored as sent.
        with ledger.engine.begin() as conn:
            conn.execute(t.records.update().values(tracking_number="9" * 300))
        assert ledger.record_rows(["shipment:101"])["shipment:101"]["tracking_number"] == "9" * 300
        with ledger.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE}), t.metadata
            )
        assert _significant(diff) == []
    finally:
        ledger.dispose()


def _significant(diff: list) -> list:
    """Differences between the migrated database and schema.py that matter (SQLite reflects
    server defaults and type affinities loosely; those are not schema differences)."""
    return [
        d for d in diff if not (isinstance(d, list) and d and d[0][0] in ("modify_default", "modify_type"))
    ]


@pytest.mark.parametrize("with_history", [True, False], ids=["0001", "before-migrations"])
def test_sqlite_ledger_upgrades_in_place(tmp_path: Path, with_history: bool) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _old_ledger(url, with_history=with_history).dispose()
    _assert_upgraded(url)


@pytest.mark.parametrize("with_history", [True, False], ids=["0001", "before-migrations"])
def test_postgres_ledger_upgrades_in_place(pg_schema_url: str, with_history: bool) -> None:
    _old_ledger(pg_schema_url, with_history=with_history).dispose()
    _assert_upgraded(pg_schema_url)


def test_fresh_ledger_matches_the_schema(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'fresh.db'}").create_all()
    with ledger.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE}), t.metadata
        )
    ledger.dispose()
    assert _significant(diff) == []


def test_processes_migrating_together_both_succeed(tmp_path: Path, pg_schema_url: str) -> None:
    code = (
        "import sys; from shipnav_dagster.ledger.repository import Ledger; Ledger(sys.argv[1]).create_all()"
    )
    for url in (f"sqlite:///{tmp_path / 'race.db'}", pg_schema_url):
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE) for _ in range(4)
        ]
        errors = [p.communicate(timeout=120)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
        engine = sa.create_engine(url)
        assert migrations.current_revision(engine) == migrations.head_revision()
        engine.dispose()


def test_check_reports_a_ledger_behind_and_leaves_it_alone(tmp_path: Path) -> None:
    from shipnav_dagster.cli.check.ledger import check_ledger
    from shipnav_dagster.settings import Settings

    url = f"sqlite:///{tmp_path / 'old.db'}"
    _old_ledger(url, with_history=True).dispose()
    settings = Settings(_env_file=None, shipnav_database_url=url)  # type: ignore[call-arg]
    schema, queue = check_ledger(settings)
    assert queue.message.startswith("queued records: ")
    assert schema.level == "WARN" and "revision 0001" in schema.message and "upgrades in place" in schema.fix
    engine = sa.create_engine(url)
    assert migrations.current_revision(engine) == "0001"
    engine.dispose()

    missing = Settings(_env_file=None, shipnav_database_url=f"sqlite:///{tmp_path / 'none.db'}")  # type: ignore[call-arg]
    assert "does not exist yet" in check_ledger(missing)[0].message
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_runs_storing_the_same_records_see_each_once(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """Two polls of the same window at the same moment: each record is 'seen' once, not twice."""
    import threading

    from shipnav_dagster.ledger import reports
    from shipnav_dagster.shipstation.v1.parser import parse_shipment
    from shipnav_dagster.sync.intake import store_records

    url = (
        f"sqlite:///{tmp_path / 'race.db'}" if kind == "sqlite" else request.getfixturevalue("pg_schema_url")
    )
    Ledger(url).create_all().dispose()
    payloads = [
        {
            "shipmentId": i,
            "orderId": 1,
            "createDate": "2026-11-20T10:00:00.0000000",
            "trackingNumber": f"T{i}",
        }
        for i in range(1, 201)
    ]
    ledgers = [Ledger(url), Ledger(url)]
    threads = [
        threading.Thread(
            target=store_records,
            args=(lg, parse_shipment, payloads),
            kwargs={"run_id": f"r{n}", "seen_via": "poll"},
        )
        for n, lg in enumerate(ledgers)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seen = Counter(e["kind"] for i in range(1, 201) for e in reports.history(ledgers[0], f"shipment:{i}"))
    assert seen["seen"] == 200, seen
    for lg in ledgers:
        lg.dispose()
