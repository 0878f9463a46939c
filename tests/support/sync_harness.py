"""Run ``shipnav_sync_job`` end to end: the real Dagster job, over HTTP, against the sandbox.

``SyncHarness`` points the environment at the sandbox servers (every entry of ``sandbox.env()``
plus the ledger URL and per-test settings), runs the job on a Dagster instance and returns a
``SyncRun``: the Dagster result plus what the test needs to assert on (NAV requests made during
this run, the ledger rows by record key, the planned/applied NAV changes, materialization
metadata read back from the instance).

Test modules wrap it in their own fixtures (``SyncHarness(...)``), so the instance can be a
throwaway SQLite one or a PostgreSQL one, and the ledger SQLite or PostgreSQL.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from shipnav_dagster.definitions import defs
from shipnav_dagster.ledger import reports
from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import RequestLog, SandboxWorld, pacific_now

JOB_NAME = "shipnav_sync_job"
ASSETS = ("shipstation_shipments", "shipment_matches", "nav_tracking_writeback")
CHECK_NAME = "one_nav_order_per_shipment"
# Dagster logs stay in the instance; keeps pytest output readable.
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Environment variables a developer's shell or CI could carry into a test: removed first, so
# every run sees exactly the sandbox plus what the test asks for.
_PREFIXES = ("SHIPSTATION_", "NAV_", "SHIPNAV_")
_KEEP = ("SHIPNAV_TEST_PG_URL", "SHIPNAV_REQUIRE_POSTGRES")


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_PREFIXES) and name not in _KEEP:
            monkeypatch.delenv(name)


def sandbox_environment(
    sandbox: SandboxServers, database_url: str, shipstation_api_version: str = "v1", **settings: str
) -> dict[str, str]:
    """The environment of one sync: the sandbox (ShipStation V1 or V2), the ledger, and per-test
    settings."""
    env = dict(sandbox.env(shipstation_api_version=shipstation_api_version))
    env["SHIPNAV_DATABASE_URL"] = database_url
    env.update({k.upper(): str(v) for k, v in settings.items()})
    return env


class CountingLog(RequestLog):
    """A request log that calls ``hook(method, path, status)`` after each request (mid-run events).

    The sandbox logs a request once its response has been sent, under the world lock, so a hook
    that changes the world affects exactly the requests that come after the N-th one.
    """

    def __init__(self, entries: list[tuple[str, str, str, int]], hook: Any) -> None:
        super().__init__(entries)
        self.hook = hook

    def add(self, method: str, path: str, query: str, status: int) -> None:
        super().add(method, path, query, status)
        self.hook(method, path, status)


@dataclass
class SyncRun:
    """One execution of the job and what it did."""

    result: dg.ExecuteInProcessResult
    instance: dg.DagsterInstance
    world: SandboxWorld
    ledger: Ledger
    nav_requests: list[tuple[str, str, str, int]]
    shipstation_requests: list[tuple[str, str, str, int]]

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def success(self) -> bool:
        return self.result.success

    # NAV traffic of this run --------------------------------------------------------------

    def nav_count(self, method: str | None = None, path_contains: str = "") -> int:
        return sum(
            1 for m, p, _q, _s in self.nav_requests if (method is None or m == method) and path_contains in p
        )

    @property
    def patches(self) -> int:
        return self.nav_count("PATCH")

    def patched_paths(self) -> list[str]:
        return [p for m, p, _q, s in self.nav_requests if m == "PATCH" and 200 <= s < 300]

    def patches_to(self, nav_order_no: str) -> int:
        """PATCHes (any status) that addressed this sales order or its lines."""
        return self.nav_count("PATCH", f"No='{nav_order_no}'")

    def patched(self, nav_order_no: str) -> bool:
        """Whether any PATCH (any status) addressed this sales order or its lines."""
        key = f"No='{nav_order_no}'"
        return any(m == "PATCH" and key in p for m, p, _q, _s in self.nav_requests)

    def shipstation_statuses(self) -> list[int]:
        return [s for _m, _p, _q, s in self.shipstation_requests]

    # Ledger --------------------------------------------------------------------------------

    def records(self) -> dict[str, dict[str, Any]]:
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(sa.select(t.records)).mappings()
            return {r["record_key"]: dict(r) for r in rows}

    def record(self, key: str) -> dict[str, Any]:
        rows = self.records()
        assert key in rows, f"{key} not in the ledger (has {sorted(rows)})"
        return rows[key]

    def changes(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """NAV field changes recorded by this run (planned, applied, dry_run, skipped, failed)."""
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.changes)
                .where(t.changes.c.run_id == (run_id or self.run_id))
                .order_by(t.changes.c.id)
            ).mappings()
            return [dict(r) | {"record_keys": json.loads(r["record_keys"])} for r in rows]

    def decisions(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.decisions)
                .where(t.decisions.c.run_id == (run_id or self.run_id))
                .order_by(t.decisions.c.id)
            ).mappings()
            return [dict(r) | {"candidates": json.loads(r["candidates"])} for r in rows]

    def events(self, record_key: str) -> list[dict[str, Any]]:
        return reports.history(self.ledger, record_key)

    # Dagster -------------------------------------------------------------------------------

    def metadata(self, asset: str) -> dict[str, Any]:
        """The latest materialization's metadata of ``asset``, read back from the instance."""
        found = self.instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
        assert found, f"no materialization of {asset} in the instance"
        materialization = found[0].asset_materialization
        assert materialization is not None
        assert found[0].run_id == self.run_id, "the latest materialization is not from this run"
        return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}

    def check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        return list(self.result.get_asset_check_evaluations())


@dataclass
class SyncHarness:
    """Runs ``shipnav_sync_job`` against ``world`` (served by ``sandbox``) on ``instance``."""

    monkeypatch: pytest.MonkeyPatch
    sandbox: SandboxServers
    world: SandboxWorld
    instance: dg.DagsterInstance
    database_url: str
    # The ShipStation API generation the runs poll: "v1" or "v2" (the same world through either).
    generation: str = "v1"
    settings: dict[str, str] = field(default_factory=dict)
    runs: list[SyncRun] = field(default_factory=list)
    _ledger: Ledger | None = None

    def __post_init__(self) -> None:
        assert self.sandbox.world is self.world, "serve the world first (empty_world / seeded_world)"
        # Tests that are not about rate limits must not wait for ShipStation's budgets.
        self.world.shipstation.rate_limit_per_minute = 10_000
        self.world.shipstation.v2.rate_limit_per_minute = 10_000
        clean_environment(self.monkeypatch)
        self.apply_env()

    def apply_env(self, **settings: str) -> None:
        self.settings.update({k.upper(): str(v) for k, v in settings.items()})
        env = sandbox_environment(self.sandbox, self.database_url, self.generation, **self.settings)
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)

    def use_generation(self, generation: str) -> None:
        """Poll the other ShipStation API from the next run on (a shop switching generations)."""
        for name in (
            "SHIPSTATION_API_VERSION",
            "SHIPSTATION_API_URL",
            "SHIPSTATION_API_KEY",
            "SHIPSTATION_API_SECRET",
        ):
            self.monkeypatch.delenv(name, raising=False)
        self.generation = generation
        self.apply_env()

    @property
    def shipstation_log(self) -> RequestLog:
        """The request log of the ShipStation API the runs poll."""
        state = self.world.shipstation
        return state.v2.log if self.generation == "v2" else state.log

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.database_url).create_all()
        return self._ledger

    def run(self, *, expect_success: bool = True, **settings: str) -> SyncRun:
        """One execution of the job; ``settings`` (env names, any case) stay set for later runs."""
        if settings:
            self.apply_env(**settings)
        nav_before = len(self.world.nav.log.entries)
        ss_log = self.shipstation_log
        ss_before = len(ss_log.entries)
        job = defs.resolve_job_def(JOB_NAME)
        result = job.execute_in_process(instance=self.instance, raise_on_error=False, run_config=QUIET)
        run = SyncRun(
            result=result,
            instance=self.instance,
            world=self.world,
            ledger=self.ledger,
            nav_requests=list(self.world.nav.log.entries[nav_before:]),
            shipstation_requests=list(ss_log.entries[ss_before:]),
        )
        self.runs.append(run)
        if expect_success:
            assert result.success, f"run failed: {_failure_text(result)}"
        return run

    def on_nav_request(self, hook: Any) -> None:
        """Call ``hook(method, path, status)`` after every NAV request the sandbox serves."""
        log = self.world.nav.log
        self.world.nav.log = CountingLog(log.entries, hook)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.dispose()


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    failures = [
        e.event_specific_data.error.to_string()  # type: ignore[union-attr]
        for e in result.all_events
        if e.is_failure and getattr(e.event_specific_data, "error", None) is not None
    ]
    return "\n".join(failures) or "no failure event"


@contextmanager
def sqlite_instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@contextmanager
def postgres_instance(pg_url: str) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": pg_url}}}) as instance:
        yield instance


@contextmanager
def harness_for(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxServers,
    world: SandboxWorld,
    instance: dg.DagsterInstance,
    database_url: str,
    generation: str = "v1",
) -> Iterator[SyncHarness]:
    harness = SyncHarness(monkeypatch, sandbox, world, instance, database_url, generation)
    try:
        yield harness
    finally:
        harness.close()


def sqlite_ledger_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'shipnav-ledger.db'}"


# Scenario helpers shared by the end-to-end tests -------------------------------------------

Record = dict[str, Any]


def ago(**delta: float) -> datetime:
    """Naive Pacific wall-clock time ``delta`` before now (ShipStation's clock)."""
    return pacific_now() - timedelta(**delta)


def nav(world: SandboxWorld, no: str) -> Record:
    return world.nav.sales_orders[no.upper()]


def key(shipment: Record) -> str:
    if "fulfillmentId" in shipment:
        return f"fulfillment:{shipment['fulfillmentId']}"
    return f"shipment:{shipment['shipmentId']}"


def order_with_label(
    world: SandboxWorld, number: str, *, created: datetime | None = None, **kwargs: Any
) -> tuple[Record, Record, Record]:
    """A ShipStation order (placed two hours ago), its NAV order, and one UPS label bought now."""
    kwargs.setdefault("order_date", ago(hours=2))
    order, header = sc.add_customer_order(world, order_number=number, **kwargs)
    assert header is not None
    label = sc.buy_label(world, order["orderId"], created=created)
    return order, header, label


def assert_written(run: SyncRun, label: Record, nav_no: str, *, tier: int | None = None) -> Record:
    row = run.record(key(label))
    assert row["status"] == "written", row["status_reason"]
    assert row["nav_order_no"] == nav_no
    if tier is not None:
        assert row["match_tier"] == tier
    assert nav(run.world, nav_no)["Package_Tracking_No"] == label["trackingNumber"]
    return row
