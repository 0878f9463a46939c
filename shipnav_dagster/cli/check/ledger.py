"""``shipnav check`` for the ledger: reachable, tables ready, and what is queued."""

from collections.abc import Mapping

import sqlalchemy as sa

from shipnav_dagster.cli.check.report import QUEUE_STATUSES, CheckResult, _one_line, fail, ok, warn
from shipnav_dagster.core.model import RecordStatus
from shipnav_dagster.ledger import migrations, reports
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.ledger.secret_store import sqlite_file_missing
from shipnav_dagster.settings import Settings


def safe_database_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show its scheme only, it may hold a password
        return url.split(":", 1)[0] + ":…"


def check_ledger(settings: Settings) -> list[CheckResult]:

    try:
        url = settings.database_url
    except OSError as exc:  # the default SQLite folder could not be created
        return [
            fail("Ledger", f"no ledger folder: {exc.strerror}", "set SHIPNAV_DATABASE_URL or DAGSTER_HOME")
        ]
    shown = safe_database_url(url)
    if sqlite_file_missing(url):
        # A check never creates anything: the first sync (or any writing command) creates it.
        return [ok("Ledger", f"{shown} does not exist yet; the first sync creates it"), queue_result({})]
    ledger = None
    try:
        ledger = Ledger(url)
        revision = migrations.current_revision(ledger.engine)
        head = migrations.head_revision()
        if revision != head:
            counts = {}
            schema = warn(
                "Ledger",
                f"{shown} reachable; its schema is at revision {revision or 'none (first release)'}, "
                f"this shipnav needs {head}",
                "it upgrades in place, keeping its records, when the next sync or replay opens it",
            )
            if _has_records(ledger):
                counts = reports.status_counts(ledger)
        else:
            schema = ok("Ledger", f"{shown} reachable, schema current (revision {head})")
            counts = reports.status_counts(ledger)
    except Exception as exc:  # any driver, URL or server failure means "not usable"; all are reported
        first = _one_line(str(exc).splitlines()[0] if str(exc) else "", 200)
        return [
            fail(
                "Ledger",
                f"{shown} not usable ({type(exc).__name__}: {first})",
                "check SHIPNAV_DATABASE_URL and that the database accepts connections",
            )
        ]
    finally:
        if ledger is not None:
            ledger.dispose()
    return [schema, queue_result(counts)]


def _has_records(ledger: Ledger) -> bool:
    return sa.inspect(ledger.engine).has_table("shipnav_records")


def queue_result(counts: Mapping[str, int]) -> CheckResult:
    text = "queued records: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in QUEUE_STATUSES)
    if counts.get(RecordStatus.NEEDS_ATTENTION, 0) or counts.get(RecordStatus.FAILED, 0):
        return warn(
            "Ledger",
            text,
            "see `shipnav ledger --status needs_attention` / `--status failed`, "
            "then `shipnav replay --all-due`",
        )
    return ok("Ledger", text)
