"""The sync as three assets over the ledger (poll -> match -> write back), its job and schedule.
Thin over ``shipnav_dagster.sync``."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from shipnav_dagster.defs import tables
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.ledger import reports
from shipnav_dagster.settings import read_environment_leniently
from shipnav_dagster.sync.match import match_open_records
from shipnav_dagster.sync.poll import poll_shipstation
from shipnav_dagster.sync.write import write_back

GROUP = "shipnav"
SAMPLE_ROWS = 50

nav_sales_orders = dg.AssetSpec(
    "nav_sales_orders",
    group_name=GROUP,
    kinds={"navision"},
    description="NAV / Business Central sales orders and posted shipments (OData V4 page web "
    "services). External: shipnav reads the orders a batch can match and writes tracking back.",
)


def table(rows: list[dict[str, str]], columns: list[str]) -> dg.MetadataValue:
    """A sample: the first SAMPLE_ROWS rows."""
    return tables.table(rows[:SAMPLE_ROWS], columns)


@dg.asset(
    group_name=GROUP,
    kinds={"shipstation"},
    description="ShipStation labels (new and voided), mark-as-shipped fulfillments and edited orders "
    "(V1 or V2, as SHIPSTATION_API_VERSION says), polled by overlapping windows and stored in the "
    "ledger before anything else.",
)
def shipstation_shipments(
    context: dg.AssetExecutionContext, shipnav: ShipnavResource
) -> dg.MaterializeResult:
    s = shipnav.settings
    summary = poll_shipstation(
        shipnav.shipstation,
        shipnav.ledger,
        now=datetime.now(UTC),
        overlap=timedelta(minutes=s.shipnav_poll_overlap_minutes),
        lookback=timedelta(hours=s.shipnav_initial_lookback_hours),
        run_id=context.run.run_id,
        log=context.log.info,
    )
    metadata: dict[str, object] = {
        "records_fetched": dg.MetadataValue.int(summary.fetched),
        "records_new": dg.MetadataValue.int(len(summary.new_keys)),
        "records_changed": dg.MetadataValue.int(len(summary.changed_keys)),
        "orders_fetched_by_id": dg.MetadataValue.int(summary.orders_fetched_by_id),
        "shipstation_requests": dg.MetadataValue.int(shipnav.shipstation.stats.total_requests),
        "shipstation_api_version": dg.MetadataValue.text(shipnav.shipstation.generation),
        "windows": table(
            [
                {
                    "stream": r.stream,
                    "from_utc": r.window_start.isoformat(timespec="seconds"),
                    "to_utc": r.window_end.isoformat(timespec="seconds"),
                    "fetched": str(r.fetched),
                    "new": str(r.new),
                    "changed": str(r.changed),
                }
                for r in summary.streams
            ],
            ["stream", "from_utc", "to_utc", "fetched", "new", "changed"],
        ),
    }
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name=GROUP,
    kinds={"python"},
    deps=[shipstation_shipments, nav_sales_orders],
    check_specs=[
        dg.AssetCheckSpec(
            "one_nav_order_per_shipment",
            asset="shipment_matches",
            blocking=True,
            description="No shipment is matched to two NAV orders and no match came from an "
            "ambiguous tier; a failure stops the write-back in the same run.",
        )
    ],
    description="Each open ShipStation record matched to exactly one NAV sales order (tier 1 "
    "External_Document_No, tier 2 No, tier 3 customer name + order date), or queued with the reason.",
)
def shipment_matches(context: dg.AssetExecutionContext, shipnav: ShipnavResource) -> dg.MaterializeResult:
    # Claimed atomically: a replay running beside this sync never decides the same records; the
    # claims of runs that are over (a killed sync) count for nothing.
    keys = shipnav.ledger.claim(
        context.run.run_id, work=True, max_age=shipnav.max_unmatched_age, dead_runs=shipnav.dead_runs()
    )
    summary = match_open_records(
        shipnav.ledger,
        shipnav.nav,
        run_id=context.run.run_id,
        chunk=shipnav.settings.shipnav_nav_filter_chunk,
        max_age=shipnav.max_unmatched_age,
        keys=keys,
        log=context.log.info,
    )
    if summary.failed and not summary.decided:
        # Everything was queued because NAV could not be asked: fail loudly (the failure sensor
        # tells the operator); the records wait in the ledger for the retry sensor.
        raise dg.Failure(
            description=f"NAV unavailable: {len(summary.failed)} records wait for the next run that "
            f"reaches NAV ({summary.error})",
            metadata={"queued_for_retry": dg.MetadataValue.int(len(summary.failed))},
        )
    counts = summary.counts
    conflicts = shipnav.ledger.match_conflicts(context.run.run_id)
    bad = summary.not_unique
    problems = conflicts + [f"{k}: matched from an ambiguous tier" for k in bad]
    return dg.MaterializeResult(
        metadata={
            "decided": dg.MetadataValue.int(summary.decided),
            **{
                f"outcome_{k}": dg.MetadataValue.int(counts.get(k, 0))
                for k in ("matched", "no_order_yet", "ambiguous", "invalid")
            },
            "tier_counts": dg.MetadataValue.json({str(t): n for t, n in summary.tiers.items()}),
            "nav_lookup_requests": dg.MetadataValue.int(summary.nav_lookups),
            # Waiting records asked again in the same lookups (their NAV order may exist now).
            "waiting_rechecked": dg.MetadataValue.int(summary.rechecked),
            "queued_nav_unavailable": dg.MetadataValue.int(len(summary.failed)),
            "sample": table(
                [
                    {
                        "record": d.record_key,
                        "outcome": d.outcome,
                        "tier": str(d.tier or ""),
                        "nav_order": d.nav_order_no or "",
                        "reason": d.reason,
                    }
                    for d in summary.sample
                ],
                ["record", "outcome", "tier", "nav_order", "reason"],
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="one_nav_order_per_shipment",
                passed=not problems,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "problems": dg.MetadataValue.json(problems[:SAMPLE_ROWS]),
                    "problem_count": dg.MetadataValue.int(len(problems)),
                },
            )
        ],
    )


@dg.asset(
    group_name=GROUP,
    kinds={"navision"},
    deps=[shipment_matches],
    pool="shipnav_nav_writes",
    description="Tracking number, shipping agent, service and shipment date written to the matched "
    "NAV sales orders and their posted shipments (read-compare-write with If-Match).",
)
def nav_tracking_writeback(
    context: dg.AssetExecutionContext, shipnav: ShipnavResource
) -> dg.MaterializeResult:
    options = shipnav.write_options()
    orders = shipnav.ledger.nav_orders_claimed_by(context.run.run_id)
    # The run's claims are released by the resource's teardown, whatever step fails.
    summary = write_back(
        shipnav.ledger,
        shipnav.nav,
        options,
        run_id=context.run.run_id,
        nav_order_nos=orders,
        dead_runs=shipnav.dead_runs(),
        log=context.log.info,
    )
    counts = summary.counts
    if summary.orders and counts["failed"] == summary.orders:
        # Every order failed: NAV is down or refusing us. The records are queued for the retry
        # sensor; failing the run makes sure an operator hears about it.
        raise dg.Failure(
            description=f"every NAV write failed ({summary.orders} orders queued for retry): "
            f"{summary.first_failure}",
            metadata={"orders_queued_for_retry": dg.MetadataValue.int(summary.orders)},
        )
    if counts["failed"]:
        context.log.warning(f"{counts['failed']} NAV orders failed and were queued for retry")
    waiting = reports.waiting(shipnav.ledger)
    if not summary.orders:
        context.log.info(f"nothing to write to NAV: {describe_waiting(waiting)}")
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(
                f"{summary.orders} NAV orders: "
                + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                + f". {describe_waiting(waiting)}."
                if summary.orders
                else f"Nothing to write to NAV. {describe_waiting(waiting).capitalize()}."
            ),
            "waiting": dg.MetadataValue.json(waiting.counts),
            "next_due_utc": dg.MetadataValue.text(
                waiting.next_due.isoformat(timespec="seconds") if waiting.next_due else "-"
            ),
            "dry_run": dg.MetadataValue.bool(options.dry_run),
            "orders": dg.MetadataValue.int(summary.orders),
            **{
                k: dg.MetadataValue.int(counts.get(k, 0))
                for k in ("written", "already_correct", "parked", "failed", "dry_run")
            },
            "nav_patches": dg.MetadataValue.int(summary.patches),
            "nav_batches": dg.MetadataValue.int(summary.batches),
            "orders_busy_elsewhere": dg.MetadataValue.int(len(summary.busy)),
            "crashed_writes_settled": dg.MetadataValue.int(summary.recovered),
            "nav_requests": dg.MetadataValue.json(
                {"GET": shipnav.nav.stats.get, "PATCH": shipnav.nav.stats.patch}
            ),
            "ledger_status": dg.MetadataValue.json(reports.status_counts(shipnav.ledger)),
            "sample": table(
                [
                    {"nav_order": r.nav_order_no, "outcome": r.outcome, "reason": r.reason}
                    for r in summary.sample
                ],
                ["nav_order", "outcome", "reason"],
            ),
        }
    )


# Runs carrying this tag are limited to one at a time by dagster.yaml's tag_concurrency_limits,
# so a sync and a replay never write NAV together.
WRITES_NAV_TAG = {"shipnav/writes-nav": "true"}

shipnav_sync_job = dg.define_asset_job(
    "shipnav_sync_job",
    # The sync and its tracking lag (defs/lag.py). Reconciliation reads NAV back for a whole
    # window: it runs daily on its own (shipnav_reconcile_job), never in a sync.
    selection=dg.AssetSelection.assets(
        shipstation_shipments, shipment_matches, nav_tracking_writeback, "nav_tracking_lag"
    ),
    tags={**WRITES_NAV_TAG, "dagster/max_retries": "1", "dagster/retry_on_asset_or_op_failure": "false"},
    description="One full sync: poll ShipStation, match to NAV sales orders, write tracking back, "
    "measure the tracking lag.",
    # The three steps run one after another anyway: a process per step only adds start-up time.
    executor_def=dg.in_process_executor,
)


def build_sync_schedule() -> dg.ScheduleDefinition:
    # Cron and time zone only: loading the code location never needs (or decrypts) secrets, and
    # never fails on a bad setting (an invalid one is at its default here; the runs report it).
    settings, _invalid = read_environment_leniently()
    return dg.ScheduleDefinition(
        name="shipnav_sync_schedule",
        job=shipnav_sync_job,
        cron_schedule=settings.shipnav_sync_cron,
        execution_timezone=settings.shipnav_sync_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Runs shipnav_sync_job on SHIPNAV_SYNC_CRON (default every 15 minutes). "
        "The poll reads from the stored cursor, so missed ticks lose nothing.",
    )


def describe_waiting(waiting: reports.Waiting) -> str:
    """What is queued and when the next retry is due, in a sentence."""
    if not waiting.counts:
        return "no records are queued"
    counts = ", ".join(f"{n} {status}" for status, n in sorted(waiting.counts.items()))
    due = ""
    if waiting.next_due:
        due = f"; the next retry is due at {waiting.next_due.isoformat(timespec='seconds')}"
    return f"queued: {counts}{due}"
