"""Sensors are doorbells: one cheap indexed ledger query, never an API call; the run does the work."""

import logging
from collections.abc import Callable

import dagster as dg

from shipnav_dagster.defs.liveness import runs_over
from shipnav_dagster.defs.replay import ReplayConfig, shipnav_replay_job
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.ledger import inbox
from shipnav_dagster.ledger.repository import Ledger

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
log = logging.getLogger("shipnav")


def _replay_in_flight(context: dg.SensorEvaluationContext) -> str | None:
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=shipnav_replay_job.name, statuses=IN_FLIGHT), limit=1
    )
    return runs[0].run_id if runs else None


def _runs_over(context: dg.SensorEvaluationContext, ledger: Ledger) -> set[str]:
    """Claims of runs that are over do not hide due records from the sensor."""
    return runs_over(context.instance, ledger.claim_holders())


def _next_attempt(context: dg.SensorEvaluationContext) -> int:
    # Dagster never reuses a run key, even of a failed run: every request gets a new number.
    return int(context.cursor or 0) + 1


def _doorbell(
    context: dg.SensorEvaluationContext,
    shipnav: ShipnavResource,
    *,
    count: Callable[[Ledger], int],
    nothing: str,
    key_prefix: str,
    config: ReplayConfig,
    trigger: str,
) -> dg.SensorResult:
    """One replay run when the ledger says there is work and no replay is already running."""
    running = _replay_in_flight(context)
    if running:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"replay run {running} is in flight"))
    ledger = shipnav.ledger
    try:
        waiting = count(ledger)
    finally:
        ledger.dispose()
    if not waiting:
        return dg.SensorResult(skip_reason=dg.SkipReason(nothing))
    attempt = _next_attempt(context)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{key_prefix}-{attempt}",
                run_config=dg.RunConfig(ops={"replay_records": config}),
                tags={"shipnav/trigger": trigger, "shipnav/waiting": str(waiting)},
            )
        ],
        cursor=str(attempt),
    )


@dg.sensor(
    name="shipnav_unmatched_retry_sensor",
    job=shipnav_replay_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests shipnav_replay_job when queued records (NAV order not there yet, failed "
    "writes) are due for their next attempt and no replay is in flight.",
)
def shipnav_unmatched_retry_sensor(
    context: dg.SensorEvaluationContext, shipnav: ShipnavResource
) -> dg.SensorResult:
    return _doorbell(
        context,
        shipnav,
        count=lambda ledger: ledger.due_count(dead_runs=_runs_over(context, ledger)),
        nothing="no queued records are due",
        key_prefix="retry-due",
        config=ReplayConfig(only_due=True),
        trigger="retry_sensor",
    )


@dg.sensor(
    name="shipnav_webhook_sensor",
    job=shipnav_replay_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Turns the notifications stored by `shipnav webhooks serve` (V1 SHIP_NOTIFY / "
    "ORDER_NOTIFY, V2 LABEL_CREATED_V2 / FULFILLMENT_SHIPPED_V2) into a replay run that fetches them "
    "and writes the shipments back.",
)
def shipnav_webhook_sensor(context: dg.SensorEvaluationContext, shipnav: ShipnavResource) -> dg.SensorResult:
    return _doorbell(
        context,
        shipnav,
        count=inbox.pending_count,
        nothing="no webhook notifications waiting",
        key_prefix="webhook",
        config=ReplayConfig(from_inbox=True, only_due=True),
        trigger="webhook_sensor",
    )
