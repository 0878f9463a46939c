"""Benchmark of one full shipnav sync against the sandbox. Not a test: it prints figures.

    /work/venv/bin/python bench/sync_bench.py                 # 1,000 shipments, steps and job
    /work/venv/bin/python bench/sync_bench.py --n 10000
    /work/venv/bin/python bench/sync_bench.py --n 100000 --mode job
    /work/venv/bin/python bench/sync_bench.py --shipstation v2   # the same world through API V2

The sandbox (bulk world of N labels on orders of 1-2 labels, each order in NAV) runs in a
separate process, so its memory is not counted in the bench's peak RSS; it has the per-request
latency on both APIs and ShipStation's 40 requests/minute. The bench then runs one full sync into
a fresh ledger, prints wall time (total and per step), peak RSS, the API calls of each system
beside their floor, and the wall-time floor; then a second run right after (it must PATCH
nothing) and its numbers.

``--mode steps`` calls the three sync steps (poll_shipstation, match_open_records, write_back)
directly; ``--mode job`` runs ``shipnav_sync_job`` with ``execute_in_process`` on an ephemeral
Dagster instance (what operators run); ``--mode both`` (default) runs each in its own process
with its own sandbox, so neither inherits the other's RSS high-water mark.

Floors (what the requirement allows):
* ShipStation: max(1, ceil(records / 500)) per stream window (an empty window still costs 1);
* NAV: one PATCH per order whose values change, plus ceil(candidates / chunk) lookups, where a
  candidate is one NAV order that a record of this run can match (one value per order);
* wall: PATCH floor x latency / concurrency + GET floor x latency + ShipStation floor x latency
  + the ShipStation rate-limit wait ((ceil(calls / limit) - 1) x 60 s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PAGE = 500  # ShipStation page size
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# The sandbox process
# --------------------------------------------------------------------------------------------


def install_nav_filter_index() -> None:
    """Bench-only speed-up of the NAV sandbox's ``$filter`` (this process only; no product change).

    The sandbox answers every collection query by building the page view of *every* sales order
    and evaluating the filter on each: O(orders) CPU per request, which at 10k+ orders costs more
    than the injected latency and would be charged to shipnav. Real NAV answers these from SQL.
    For the one shape shipnav sends, ``(F eq 'a' or F eq 'b' ...)`` on one string field, this
    looks the values up in a per-field index and hands only those records to the original
    ``_matching``, which still applies the full filter and NAV's ordering, so answers are the same
    as long as the indexed field is not changed after the index is built (the sync never writes
    External_Document_No, No or Order_No; the index is rebuilt whenever the record count changes).
    ``_orders`` (page 42's view: every record with Document_Type Order, rebuilt per request, 16 ms
    at 83k orders) is cached the same way: same record objects, rebuilt when the count changes.
    """
    from shipnav_dagster.sandbox.nav import odata_filter as f
    from shipnav_dagster.sandbox.nav import query as nav_query
    from shipnav_dagster.sandbox.nav.schema import view

    original = nav_query._matching
    original_orders = nav_query._orders
    orders_cache: dict[int, tuple[int, list[dict[str, Any]]]] = {}

    def orders(nav: Any) -> list[dict[str, Any]]:
        cached = orders_cache.get(id(nav))
        if cached is None or cached[0] != len(nav.sales_orders):
            cached = orders_cache[id(nav)] = (len(nav.sales_orders), original_orders(nav))
        return cached[1]

    indexes: dict[tuple[str, str], tuple[int, dict[Any, list[dict[str, Any]]]]] = {}

    def one_field_values(node: Any, out: list[Any]) -> str | None:
        if isinstance(node, f.BoolOp) and node.op == "or":
            left = one_field_values(node.left, out)
            right = one_field_values(node.right, out)
            return left if left is not None and left == right else None
        if (
            isinstance(node, f.Compare)
            and node.op == "eq"
            and isinstance(node.left, f.FieldRef)
            and isinstance(node.right, f.Literal)
            and node.right.kind == "string"
        ):
            out.append(node.right.value)
            return node.left.name
        return None

    def matching(entity: Any, records: Any, opts: Any) -> list[dict[str, Any]]:
        values: list[Any] = []
        name = one_field_values(opts.filter, values) if opts.filter is not None else None
        if name is None or entity.field_types.get(name) != "Edm.String":
            return original(entity, records, opts)
        records = records if isinstance(records, list) else list(records)
        cached = indexes.get((entity.name, name))
        if cached is None or cached[0] != len(records):
            index: dict[Any, list[dict[str, Any]]] = {}
            for record in records:
                index.setdefault(view(entity, record)[name], []).append(record)
            cached = indexes[(entity.name, name)] = (len(records), index)
        picked = {id(r): r for v in dict.fromkeys(values) for r in cached[1].get(v, ())}
        return original(entity, list(picked.values()), opts)

    nav_query._matching = matching
    nav_query._orders = orders


def serve_sandbox(
    n: int,
    seed: int,
    latency_ms: float,
    rate_limit: int,
    nav_auth: str,
    stock: bool,
    waiting: float,
    generation: str,
    platform: str,
) -> int:
    """Build the bulk world, serve it, print one JSON line, serve until stdin closes."""
    from shipnav_dagster.sandbox.seed import build_bulk_world
    from shipnav_dagster.sandbox.server import SandboxServers

    if not stock:
        install_nav_filter_index()

    started = time.perf_counter()
    world = build_bulk_world(n, seed=seed, waiting=waiting)
    world.nav.apply_platform(platform)
    built = time.perf_counter() - started
    world.shipstation.rate_limit_per_minute = rate_limit
    world.shipstation.v2.rate_limit_per_minute = rate_limit
    world.shipstation.faults.latency_ms = latency_ms
    world.shipstation.v2.faults.latency_ms = latency_ms
    world.nav.faults.latency_ms = latency_ms
    servers = SandboxServers(world).start()
    try:
        print(
            json.dumps(
                {
                    "env": servers.env(nav_auth=nav_auth, shipstation_api_version=generation),
                    # The admin stats of the ShipStation API the sync reads.
                    "shipstation_url": servers.shipstation_v2_url
                    if generation == "v2"
                    else servers.shipstation_url,
                    "nav_url": servers.nav_base_url,
                    "facts": world_facts(world),
                    "build_seconds": built,
                }
            ),
            flush=True,
        )
        sys.stdin.read()  # the bench closes our stdin when it is done (or dies)
    finally:
        servers.stop()
    return 0


def world_facts(world: Any) -> dict[str, int]:
    """Ground truth for the floors: orders with a live label whose NAV order lacks its tracking."""
    by_ext: dict[str, list[dict[str, Any]]] = {}
    for nav_order in world.nav.sales_orders.values():
        by_ext.setdefault(str(nav_order.get("External_Document_No") or "").upper(), []).append(nav_order)
    labelled: dict[int, set[str]] = {}
    for s in world.shipstation.shipments.values():
        if not s.get("voided") and not s.get("isReturnLabel") and s.get("trackingNumber"):
            labelled.setdefault(s["orderId"], set()).add(s["trackingNumber"])
    to_write = 0
    for order_id, numbers in labelled.items():
        order = world.shipstation.orders[order_id]
        candidates = by_ext.get(str(order["orderNumber"]).upper(), [])
        if len(candidates) == 1 and candidates[0].get("Package_Tracking_No") not in numbers:
            to_write += 1
    return {
        "shipstation_orders": len(world.shipstation.orders),
        "shipstation_shipments": len(world.shipstation.shipments),
        "nav_sales_orders": len(world.nav.sales_orders),
        "nav_posted_shipments": len(world.nav.posted_shipments),
        "labelled_orders": len(labelled),
        "orders_to_write": to_write,
    }


class Sandbox:
    """The sandbox child process: its environment, admin stats and resource use."""

    def __init__(self, args: argparse.Namespace) -> None:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-sandbox",
            "--n",
            str(args.n),
            "--seed",
            str(args.seed),
            "--latency-ms",
            str(args.latency_ms),
            "--ss-rate-limit",
            str(args.ss_rate_limit),
            "--nav-auth",
            args.nav_auth,
            "--waiting",
            str(args.waiting),
            "--shipstation",
            args.shipstation,
            "--platform",
            args.platform,
            *(["--stock-sandbox"] if args.stock_sandbox else []),
        ]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"sandbox process exited with {self.proc.wait()} before it was ready")
        info = json.loads(line)
        self.env: dict[str, str] = info["env"]
        self.shipstation_url: str = info["shipstation_url"]
        self.nav_url: str = info["nav_url"]
        self.facts: dict[str, int] = info["facts"]
        self.build_seconds: float = info["build_seconds"]

    def stats(self) -> dict[str, Any]:
        import httpx

        ss = httpx.get(f"{self.shipstation_url}/_sandbox/stats", timeout=60).json()
        nav = httpx.get(f"{self.nav_url}/_sandbox/stats", timeout=60).json()
        return {"shipstation": ss, "nav": nav, "cpu": self.cpu_seconds()}

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------------
# Measuring the bench process
# --------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_BYTES / MB


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RssSampler:
    """Samples this process's RSS every ``interval`` s, so a peak can be pinned to a step."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.time(), current_rss_mb()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> str:
        peak = max((rss for t, rss in self.samples if start <= t <= end), default=None)
        return "-" if peak is None else f"{peak:.1f}"


class FilterCounter:
    """Counts the NAV $filter lookups (requests and values per field) the bench process sends.

    Wraps ``nav.client.chunked`` for the duration of a run (bench process only): every chunk it
    yields becomes exactly one filtered query (plus server pages, none at these sizes).
    """

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self._original: Any = None

    def __enter__(self) -> FilterCounter:
        from shipnav_dagster.nav import client

        original = self._original = client.chunked
        counts = self.counts

        def counting(field_name: str, values: Any, size: int, max_chars: int) -> Any:
            for group in original(field_name, values, size, max_chars):
                entry = counts.setdefault(field_name, [0, 0])
                entry[0] += 1
                entry[1] += len(group)
                yield group

        client.chunked = counting
        return self

    def __exit__(self, *exc: object) -> None:
        from shipnav_dagster.nav import client

        client.chunked = self._original

    def result(self) -> dict[str, tuple[int, int]]:
        return {name: (r, v) for name, (r, v) in self.counts.items()}


# --------------------------------------------------------------------------------------------
# One sync run, two ways
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    label: str
    wall: float
    steps: dict[str, tuple[float, float]]  # step -> (start epoch, end epoch)
    streams: list[tuple[str, int]]  # (stream, records fetched in its window)
    written: int
    outcomes: dict[str, int]
    candidates: int  # NAV orders the open records of this run can match (floor of the lookups)
    stats_before: dict[str, Any]
    stats_after: dict[str, Any]
    cpu: float
    ok: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, tuple[int, int]] = field(default_factory=dict)  # what -> (requests, values)

    def delta(self, system: str, *path: str) -> int:
        def dig(stats: dict[str, Any]) -> int:
            value: Any = stats[system]
            for part in path:
                value = value.get(part, 0) if isinstance(value, dict) else 0
            return int(value or 0)

        return dig(self.stats_after) - dig(self.stats_before)


def decided_orders(ledger_url: str, run_id: str) -> int:
    """Distinct ShipStation orders of the records the match step decided in this run: each is
    one NAV order its records can match, i.e. one lookup value (the floor's candidates)."""
    import sqlalchemy as sa

    from shipnav_dagster.ledger import schema as t

    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            query = (
                sa.select(sa.func.count(sa.distinct(t.records.c.order_id)))
                .select_from(t.decisions.join(t.records, t.decisions.c.record_key == t.records.c.record_key))
                .where(t.decisions.c.run_id == run_id)
            )
            return int(conn.execute(query).scalar() or 0)
    finally:
        engine.dispose()


def run_steps(label: str, sandbox: Sandbox, ledger_url: str, claim_limit: int | None = None) -> RunResult:
    """The job's three steps called directly, the way the assets call them (claim, match the
    claimed records, write the NAV orders they matched, release), with the job's own resource."""
    from shipnav_dagster.defs.resources import ShipnavResource
    from shipnav_dagster.ledger import reports
    from shipnav_dagster.sync.match import match_open_records
    from shipnav_dagster.sync.poll import poll_shipstation
    from shipnav_dagster.sync.write import write_back

    run_id = f"bench-{label.split()[1]}-{int(time.time())}"
    res = ShipnavResource()
    settings = res.settings
    ledger = res.ledger
    before = sandbox.stats()
    cpu0 = cpu_seconds()
    steps: dict[str, tuple[float, float]] = {}
    t0 = time.time()
    poll = poll_shipstation(
        res.shipstation,
        ledger,
        now=datetime.now(UTC),
        overlap=timedelta(minutes=settings.shipnav_poll_overlap_minutes),
        lookback=timedelta(hours=settings.shipnav_initial_lookback_hours),
        run_id=run_id,
    )
    t1 = time.time()
    steps["poll_shipstation"] = (t0, t1)
    streams = [(s.stream, s.fetched) for s in poll.streams]
    fetched_by_id = poll.orders_fetched_by_id
    del poll
    keys = ledger.claim(
        run_id, work=True, max_age=res.max_unmatched_age, **({"limit": claim_limit} if claim_limit else {})
    )
    match = match_open_records(
        ledger,
        res.nav,
        run_id=run_id,
        chunk=settings.shipnav_nav_filter_chunk,
        max_age=res.max_unmatched_age,
        keys=keys,
    )
    t2 = time.time()
    steps["match_open_records"] = (t1, t2)
    lookups = match.nav_lookups
    del match  # as in the job, where the asset's summary is garbage once the step returns
    try:
        orders = ledger.nav_orders_claimed_by(run_id)
        write = write_back(ledger, res.nav, res.write_options(), run_id=run_id, nav_order_nos=orders)
    finally:
        ledger.release(run_id)
    steps["write_back"] = (t2, time.time())
    wall = time.time() - t0
    cpu = cpu_seconds() - cpu0
    ss = res.shipstation.stats
    extra = {
        "match_lookups": lookups,
        "claimed": len(keys),
        "ss_paced_seconds": round(ss.paced_seconds, 1),
        "ss_throttled": ss.throttled,
        "ss_retries": ss.retries,
        "nav_retries": res.nav.stats.retries,
        "orders_fetched_by_id": fetched_by_id,
        "ledger_status": reports.status_counts(ledger),
    }
    res.teardown_after_execution(None)  # type: ignore[arg-type]
    after = sandbox.stats()
    outcomes = Counter(write.counts)
    return RunResult(
        label=label,
        wall=wall,
        steps=steps,
        streams=streams,
        written=outcomes.get("written", 0),
        outcomes=dict(outcomes),
        candidates=decided_orders(settings.database_url, run_id),
        stats_before=before,
        stats_after=after,
        cpu=cpu,
        extra=extra,
    )


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_job(label: str, sandbox: Sandbox, ledger_url: str, _claim_limit: int | None = None) -> RunResult:
    """shipnav_sync_job via execute_in_process on an ephemeral instance."""
    import dagster as dg

    from shipnav_dagster.definitions import defs

    job = defs.resolve_job_def("shipnav_sync_job")
    before = sandbox.stats()
    cpu0 = cpu_seconds()
    with dg.DagsterInstance.ephemeral() as instance:
        t0 = time.time()
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
        wall = time.time() - t0
        cpu = cpu_seconds() - cpu0
        steps = {
            s.step_key: (s.start_time or t0, s.end_time or t0)
            for s in instance.get_run_step_stats(result.run_id)
        }
        meta: dict[str, dict[str, Any]] = {}
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization  # type: ignore[union-attr]
            meta[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    after = sandbox.stats()
    poll = meta.get("shipstation_shipments", {})
    windows = poll.get("windows")
    streams = [(r.data["stream"], int(r.data["fetched"])) for r in getattr(windows, "records", [])]
    write = meta.get("nav_tracking_writeback", {})
    outcomes = {
        k: int(write.get(k, 0)) for k in ("written", "already_correct", "parked", "failed", "dry_run")
    }
    return RunResult(
        label=label,
        wall=wall,
        steps=dict(sorted(steps.items(), key=lambda kv: kv[1][0])),
        streams=streams,
        written=outcomes["written"],
        outcomes=outcomes,
        candidates=decided_orders(ledger_url, result.run_id),
        stats_before=before,
        stats_after=after,
        cpu=cpu,
        ok=result.success,
        extra={
            "match_lookups": meta.get("shipment_matches", {}).get("nav_lookup_requests"),
            "decided": meta.get("shipment_matches", {}).get("decided"),
            "orders_fetched_by_id": poll.get("orders_fetched_by_id"),
            "ledger_status": write.get("ledger_status"),
        },
    )


# --------------------------------------------------------------------------------------------
# Floors and the report
# --------------------------------------------------------------------------------------------


def ss_floor(streams: list[tuple[str, int]]) -> int:
    return sum(max(1, math.ceil(fetched / PAGE)) for _stream, fetched in streams)


def rate_wait(calls: int, limit: int) -> float:
    return (math.ceil(calls / limit) - 1) * 60.0 if limit and calls else 0.0


BATCH_OPERATIONS = 100  # Business Central online: operations in one $batch


def batch_used(args: argparse.Namespace) -> bool:
    return bool(args.batch == "auto" and args.platform == "bc")


def wall_floor(ss: int, gets: int, patches: int, args: argparse.Namespace) -> float:
    latency = args.latency_ms / 1000
    return (
        patches * latency / args.concurrency
        + gets * latency
        + ss * latency
        + rate_wait(ss, args.ss_rate_limit)
    )


def ratio(actual: float, floor: float) -> str:
    return f"{actual / floor:.2f}x" if floor else ("-" if not actual else "inf")


def row(name: str, actual: int, floor: int, note: str = "") -> str:
    return f"{name:<20} {actual:>9} {floor:>9} {ratio(actual, floor):>8}   {note}".rstrip()


def report(run: RunResult, args: argparse.Namespace, patch_floor: int, sampler: RssSampler) -> dict[str, Any]:
    """Print the run's figures; return the headline ones (for ``--summary-json``)."""
    ss_calls = run.delta("shipstation", "requests")
    gets = run.delta("nav", "by_method", "GET")
    patches = run.delta("nav", "by_method", "PATCH")
    tokens = run.delta("nav", "token_requests")
    batches = run.delta("nav", "by_method", "POST") - tokens  # JSON $batch requests (BC)
    nav_other = run.delta("nav", "requests") - gets - patches - batches - tokens
    batching = batch_used(args)
    # With $batch the writes floor is one request per 100 changed orders, not one per order.
    write_floor = math.ceil(patch_floor / BATCH_OPERATIONS) if batching else patch_floor
    sandbox_cpu = run.stats_after["cpu"] - run.stats_before["cpu"]
    fl_ss = ss_floor(run.streams)
    fl_get = math.ceil(run.candidates / args.chunk) if run.candidates else 0
    fl_wall = wall_floor(fl_ss, fl_get, write_floor, args)
    at_counts = wall_floor(ss_calls, gets, patches + batches, args)
    total = ss_calls + gets + patches + batches + tokens + nav_other
    fl_total = fl_ss + fl_get + write_floor
    lookups = run.extra.get("match_lookups") or 0

    def per(calls: int) -> str:
        return f"{calls / run.written:.3f}" if run.written else "-"

    print(f"\n== {run.label}: {'succeeded' if run.ok else 'FAILED'}")
    print(
        f"wall time            {run.wall:9.2f} s   "
        f"(bench CPU {run.cpu:.1f} s, sandbox CPU {sandbox_cpu:.1f} s)"
    )
    for step, (start, end) in run.steps.items():
        print(
            f"  {step:<22} {end - start:8.2f} s   peak RSS in step {sampler.peak_between(start, end):>7} MB"
        )
    print(f"peak RSS (ru_maxrss) {peak_rss_mb():9.1f} MB")
    print(f"records per window   {', '.join(f'{s} {n}' for s, n in run.streams)}")
    print(f"outcomes             {run.outcomes}   ledger {run.extra.get('ledger_status')}")
    status = run.extra.get("ledger_status") or {}
    left = sum(n for s, n in status.items() if s in ("pending", "matched_pending", "failed"))
    if left or run.written < patch_floor:
        print(
            f"INCOMPLETE           {left} records still open in the ledger, {run.written} of "
            f"{patch_floor} orders written: the floors below assume the whole world in this run"
        )
    print(f"{'calls':<20} {'actual':>9} {'floor':>9} {'ratio':>8}")
    ss_by = {
        k: v - run.stats_before["shipstation"]["by_endpoint"].get(k, 0)
        for k, v in run.stats_after["shipstation"]["by_endpoint"].items()
    }
    ss_note = (
        f"429s {run.delta('shipstation', 'by_status', '429')}; { ({k: v for k, v in ss_by.items() if v}) }"
    )
    print(row("ShipStation", ss_calls, fl_ss, ss_note))
    get_note = f"match lookups {lookups} + write-back {gets - lookups}; candidates {run.candidates}"
    print(row("NAV GET", gets, fl_get, f"{get_note}, chunk {args.chunk}"))
    nav_429 = f"429s {run.delta('nav', 'by_status', '429')}"
    if batching:
        operations = run.delta("nav", "batch_operations")
        print(row("NAV $batch", batches, write_floor, f"{operations} operations; {nav_429}"))
        print(row("NAV PATCH", patches, 0, "single PATCHes beside the $batch requests"))
    else:
        print(row("NAV PATCH", patches, patch_floor, nav_429))
    print(row("NAV token/other", tokens + nav_other, 0))
    print(row("total", total, fl_total))
    print(
        f"calls per written order {per(total)} "
        f"(floor {per(fl_total)}; target <= {0.05 if batching else 1.1:.3f}; written {run.written})"
    )
    print(
        f"wall floor           {fl_wall:9.2f} s   wall/floor {ratio(run.wall, fl_wall)} (target <= 1.20x); "
        f"floor at the actual call counts {at_counts:.2f} s ({ratio(run.wall, at_counts)})"
    )
    for name, (requests, values) in sorted(run.filters.items()):
        print(
            f"  $filter {name:<28} {requests:>6} requests, {values:>7} values "
            f"({values / requests:.1f}/request)"
        )
    extra = {
        k: v for k, v in run.extra.items() if k not in ("ledger_status", "match_lookups") and v is not None
    }
    if extra:
        print(f"client notes         {extra}")
    return {
        "wall": round(run.wall, 2),
        "floor": round(fl_wall, 2),
        "calls": total,
        "shipstation_calls": ss_calls,
        "nav_get": gets,
        "nav_writes": patches + batches,
        "written": run.written,
        "calls_per_order": round(total / run.written, 3) if run.written else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def bench(args: argparse.Namespace, mode: str) -> int:
    sandbox = Sandbox(args)
    try:
        with tempfile.TemporaryDirectory(prefix="shipnav-bench-") as tmp:
            ledger_url = f"sqlite:///{Path(tmp) / 'ledger.db'}" if args.ledger == "sqlite" else args.ledger
            os.environ.update(sandbox.env)
            os.environ.update({"SHIPNAV_DATABASE_URL": ledger_url, "DAGSTER_HOME": tmp})
            if args.concurrency is not None:
                os.environ["NAV_MAX_CONCURRENCY"] = str(args.concurrency)
            if args.chunk is not None:
                os.environ["SHIPNAV_NAV_FILTER_CHUNK"] = str(args.chunk)
            os.environ["NAV_BATCH"] = args.batch
            from shipnav_dagster.settings import load_settings

            settings = load_settings()  # the effective values (product defaults unless given)
            args.concurrency = settings.nav_max_concurrency
            args.chunk = settings.shipnav_nav_filter_chunk
            warnings.filterwarnings("ignore", message=".*is currently in beta")
            import shipnav_dagster.definitions  # noqa: F401  (imports outside the measured run)

            facts = sandbox.facts
            print(
                f"shipnav sync bench: mode {mode}, N={args.n} shipments "
                f"({facts['shipstation_orders']} orders, {facts['nav_sales_orders']} NAV orders, "
                f"{facts['orders_to_write']} to write), latency {args.latency_ms:g} ms, "
                f"ShipStation {args.shipstation.upper()} {args.ss_rate_limit}/min, "
                f"NAV {args.platform} (NAV_BATCH {args.batch}), "
                f"NAV_MAX_CONCURRENCY {args.concurrency}, "
                f"chunk {args.chunk}, ledger {'sqlite (temp)' if args.ledger == 'sqlite' else 'url'}, "
                f"NAV $filter {'stock scan' if args.stock_sandbox else 'bench index'}"
                f"{f', claim limit {args.claim_limit}' if args.claim_limit else ''}; "
                f"sandbox built in {sandbox.build_seconds:.1f} s"
            )
            print(f"bench RSS before the run: {current_rss_mb():.1f} MB (imports)")
            run = run_steps if mode == "steps" else run_job
            with RssSampler() as sampler:
                with FilterCounter() as filters:
                    first = run("run 1", sandbox, ledger_url, args.claim_limit)
                first.filters = filters.result()
                summary = report(first, args, facts["orders_to_write"], sampler)
                with FilterCounter() as filters:
                    second = run("run 2 (right after)", sandbox, ledger_url, args.claim_limit)
                second.filters = filters.result()
                report(second, args, max(0, facts["orders_to_write"] - first.written), sampler)
            print(f"\nsandbox process peak RSS {sandbox.peak_rss_mb():.1f} MB (not counted above)")
            second_patches = second.delta("nav", "by_method", "PATCH")
            if args.summary_json:
                summary.update(second_run_calls=second.delta("shipstation", "requests"), facts=facts)
                Path(args.summary_json).write_text(json.dumps(summary))
            return 0 if first.ok and second.ok and second_patches == 0 else 1
    finally:
        sandbox.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="shipments in the bulk world (default 1000)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per-request latency, both APIs")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="NAV_MAX_CONCURRENCY (default: the product's, 4)"
    )
    parser.add_argument(
        "--chunk", type=int, default=None, help="SHIPNAV_NAV_FILTER_CHUNK (default: the product's)"
    )
    parser.add_argument("--ledger", default="sqlite", help="'sqlite' (fresh temp file) or an EMPTY db URL")
    parser.add_argument("--mode", choices=("steps", "job", "both"), default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ss-rate-limit",
        type=int,
        default=None,
        help="ShipStation requests/minute (default: the generation's, V1 40, V2 200)",
    )
    parser.add_argument(
        "--shipstation",
        choices=("v1", "v2"),
        default="v1",
        help="the ShipStation API generation the sync reads (SHIPSTATION_API_VERSION)",
    )
    parser.add_argument("--nav-auth", choices=("oauth2", "basic"), default="oauth2")
    parser.add_argument(
        "--stock-sandbox",
        action="store_true",
        help="serve NAV $filter queries by the sandbox's full scan (default: bench index, see "
        "install_nav_filter_index; the scan's CPU grows with the world and is charged to shipnav)",
    )
    parser.add_argument(
        "--claim-limit",
        type=int,
        default=None,
        help="steps mode only: records one run claims (default: Ledger.claim's own limit, as the job)",
    )
    parser.add_argument(
        "--waiting",
        type=float,
        default=0.0,
        help="share of orders NAV does not have yet (their labels wait and are asked about by "
        "every sync; e.g. 0.1 for a 10%% backlog)",
    )
    parser.add_argument(
        "--platform",
        choices=("nav2018", "bc"),
        default="nav2018",
        help="the NAV product the sandbox emulates: NAV 2018 (no $batch) or Business Central",
    )
    parser.add_argument(
        "--batch",
        choices=("auto", "off"),
        default="auto",
        help="NAV_BATCH: auto sends PATCHes in JSON $batch requests where NAV accepts them (BC)",
    )
    parser.add_argument("--summary-json", help="write run 1's headline figures to this file")
    parser.add_argument("--serve-sandbox", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ss_rate_limit is None:
        args.ss_rate_limit = 200 if args.shipstation == "v2" else 40
    if args.serve_sandbox:
        return serve_sandbox(
            args.n,
            args.seed,
            args.latency_ms,
            args.ss_rate_limit,
            args.nav_auth,
            args.stock_sandbox,
            args.waiting,
            args.shipstation,
            args.platform,
        )
    if args.claim_limit and args.mode != "steps":
        raise SystemExit(
            "--claim-limit only applies to --mode steps (the job claims with the product default)"
        )
    if args.mode != "both":
        return bench(args, args.mode)
    if args.ledger != "sqlite":
        raise SystemExit("--mode both needs two fresh ledgers: pass --mode steps or --mode job with a URL")
    codes = []
    for mode in ("steps", "job"):
        argv_mode = [a for a in (argv if argv is not None else sys.argv[1:])]
        codes.append(
            subprocess.call([sys.executable, str(Path(__file__).resolve()), *argv_mode, "--mode", mode])
        )
        print(flush=True)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
