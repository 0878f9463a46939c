"""The month-end report over a seeded month, against the sandbox: the generated shop's week is
placed in the middle of last month, one real sync stores it, one written order is changed in
NAV behind shipnav's back, and the report (the CLI and the Dagster asset) must give the right
totals per state, read only the month's NAV orders in chunks, and open as XLSX."""

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import unquote

import dagster as dg
import openpyxl
import pytest
import sqlalchemy as sa

from shipnav_dagster.cli import main
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.seed import OVERLONG, SeedManifest, build_world_with_manifest
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import pacific_now
from tests.support.sync_harness import SyncHarness, harness_for, sqlite_instance, sqlite_ledger_url

CHUNK = 40  # SHIPNAV_NAV_FILTER_CHUNK: small, so the month's NAV orders take several lookups
# The ledger status of a record -> its state in the report (written independently of the code).
EXPECTED_STATE = {
    "written": "in_nav",
    "already_correct": "in_nav",
    "no_order_yet": "queued",
    "needs_attention": "queued",
    "failed": "queued",
    "pending": "queued",
    "ambiguous": "ambiguous",
    "parked": "parked",
    "invalid": "parked",
}
STATES = ["in_nav", "queued", "ambiguous", "parked", "missing"]


@dataclass
class SeededMonth:
    month: str  # YYYY-MM
    harness: SyncHarness
    manifest: SeedManifest
    tampered_order: str  # a written NAV order whose tracking was cleared in NAV after the sync
    expected: dict[str, int]  # records per state
    tmp: Path


def last_month() -> tuple[str, datetime]:
    """Last month (Pacific) and noon of its 20th: the seeded week lies within that month."""
    first_of_this = pacific_now().date().replace(day=1)
    first_of_last = (first_of_this - timedelta(days=1)).replace(day=1)
    return first_of_last.strftime("%Y-%m"), datetime.combine(first_of_last.replace(day=20), time(12))


@pytest.fixture(scope="module")
def seeded_month(
    sandbox_servers: SandboxServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeededMonth]:
    month, seeded_at = last_month()
    world, manifest = build_world_with_manifest(seed=11, orders=200, now=seeded_at)
    previous = sandbox_servers.world
    sandbox_servers.world = world
    tmp = tmp_path_factory.mktemp("month-end")
    lookback = math.ceil((pacific_now() - seeded_at).total_seconds() / 3600) + 8 * 24
    with (
        pytest.MonkeyPatch.context() as mp,
        sqlite_instance() as instance,
        harness_for(mp, sandbox_servers, world, instance, sqlite_ledger_url(tmp)) as harness,
    ):
        harness.run(SHIPNAV_INITIAL_LOOKBACK_HOURS=str(lookback), SHIPNAV_NAV_FILTER_CHUNK=str(CHUNK))
        rows = shipped_rows(harness, month)
        written = Counter(r["nav_order_no"] for r in rows if r["status"] == "written")
        tampered = sorted(no for no, n in written.items() if n == 1)[0]
        sc.update_nav_order(world, tampered, Package_Tracking_No="")  # typed over in NAV
        expected = Counter(
            "missing" if r["nav_order_no"] == tampered else EXPECTED_STATE[r["status"]] for r in rows
        )
        yield SeededMonth(month, harness, manifest, tampered, {s: expected.get(s, 0) for s in STATES}, tmp)
    sandbox_servers.world = previous


def shipped_rows(harness: SyncHarness, month: str) -> list[dict]:
    """The month's shipped records straight from the ledger: not voided, not returns, tracked."""
    first = date.fromisoformat(f"{month}-01")
    end = (first + timedelta(days=32)).replace(day=1)
    with harness.ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.records).where(
                t.records.c.ship_date >= first,
                t.records.c.ship_date < end,
                t.records.c.voided.is_(False),
                t.records.c.is_return.is_(False),
                t.records.c.tracking_number.is_not(None),
            )
        ).mappings()
        return [dict(r) for r in rows if (r["tracking_number"] or "").strip()]


def test_the_seeded_month_has_every_state(seeded_month: SeededMonth) -> None:
    """The scenario itself: a month with something in every state, or the test proves little."""
    assert all(seeded_month.expected[s] > 0 for s in STATES), seeded_month.expected
    # Every over-long tracking number of the seeded shop is parked, never written.
    overlong = set(seeded_month.manifest.categories[OVERLONG])
    parked = {
        r["order_number"]
        for r in shipped_rows(seeded_month.harness, seeded_month.month)
        if r["status"] == "parked"
    }
    assert overlong and overlong <= parked


def test_the_cli_report_has_the_right_totals_and_opens_as_xlsx(
    seeded_month: SeededMonth, capsys: pytest.CaptureFixture[str]
) -> None:
    world = seeded_month.harness.world
    out = seeded_month.tmp / "reports"
    nav_before = len(world.nav.log.entries)
    assert main(["report", "--month", seeded_month.month, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("shipnav: reading the ledger at ")
    stem = f"shipnav-month-end-{seeded_month.month}"
    csv_path, xlsx_path = out / f"{stem}.csv", out / f"{stem}.xlsx"
    assert f"{csv_path}\n{xlsx_path}\n" in captured.out

    book = openpyxl.load_workbook(xlsx_path, read_only=True)
    assert book.sheetnames == ["Summary", "Records"]
    records = list(book["Records"].iter_rows(values_only=True))
    header, body = records[0], records[1:]
    assert header[:3] == ("record", "kind", "ship_date") and "next_step" in header
    state_col = header.index("state")
    assert {s: sum(1 for r in body if r[state_col] == s) for s in STATES} == seeded_month.expected
    summary = list(book["Summary"].iter_rows(values_only=True))
    totals = {
        row[0]: row[1] for row in summary[summary.index(("state", "records", "shipstation_orders")) + 1 :]
    }
    assert totals == {**seeded_month.expected, "total": sum(seeded_month.expected.values())}
    assert (seeded_month.month, "month") in {(r[1], r[0]) for r in summary}
    assert len(csv_path.read_text().splitlines()) == len(body) + 1

    # The tampered order is missing, with what NAV holds now and the next step.
    missing = [r for r in body if r[state_col] == "missing"]
    assert [r[header.index("nav_order")] for r in missing] == [seeded_month.tampered_order]
    assert "instead of the master tracking" in missing[0][header.index("reason")]
    assert "shipnav replay" in missing[0][header.index("next_step")]

    # NAV was asked for the month's orders only: $filter chunks of at most CHUNK values.
    requests = [r for r in world.nav.log.entries[nav_before:] if "/ODataV4/" in r[1]]
    nav_orders = {r[header.index("nav_order")] for r in body if r[header.index("nav_order")]}
    assert requests and all(method == "GET" for method, *_ in requests)
    for _method, path, query, _status in requests:
        text = unquote(query)
        assert "$filter=" in text, f"an unfiltered NAV read: {path}?{text}"
        assert text.count(" eq ") <= CHUNK
    lookups = math.ceil(len(nav_orders) / CHUNK)
    assert sum(1 for _m, p, _q, _s in requests if p.endswith("/SalesOrder")) == lookups
    assert sum(1 for _m, p, _q, _s in requests if p.endswith("/PostedSalesShipment")) == lookups
    assert len(nav_orders) < len(world.nav.sales_orders)


def test_the_report_asset_shows_the_table_and_summary(
    seeded_month: SeededMonth, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipnav_dagster.definitions import defs

    report_dir = seeded_month.tmp / "asset-reports"
    monkeypatch.setenv("SHIPNAV_REPORT_DIR", str(report_dir))
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=seeded_month.harness.instance,
        asset_selection=[dg.AssetKey("nav_month_end_report")],
        partition_key=f"{seeded_month.month}-01",
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("nav_month_end_report")
    metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    assert {s: metadata[s] for s in STATES} == seeded_month.expected
    assert metadata["shipped_records"] == sum(seeded_month.expected.values())
    assert f"**Month-end {seeded_month.month}**" in metadata["summary"]
    assert "| missing " in metadata["summary"]
    table = materialization.metadata["records"].value
    assert len(table.records) == sum(seeded_month.expected.values())
    assert Path(metadata["xlsx"]) == report_dir / f"shipnav-month-end-{seeded_month.month}.xlsx"
    assert openpyxl.load_workbook(metadata["xlsx"]).sheetnames == ["Summary", "Records"]


def test_a_month_is_year_and_month(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--month", "2026-13"])
    assert exited.value.code == 2
    assert "not a month in the form YYYY-MM: '2026-13'" in capsys.readouterr().err
