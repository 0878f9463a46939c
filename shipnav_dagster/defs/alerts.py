"""Failed syncs and replays are announced: in the run log, and to SHIPNAV_FAILURE_WEBHOOK_URL."""

import dagster as dg

from shipnav_dagster.defs.replay import shipnav_replay_job
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sync import shipnav_sync_job
from shipnav_dagster.sync.alerts import announce_failure


@dg.run_failure_sensor(
    name="shipnav_run_failure_sensor",
    monitored_jobs=[shipnav_sync_job, shipnav_replay_job],
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Logs every failed sync or replay run and, when SHIPNAV_FAILURE_WEBHOOK_URL is set, "
    "posts a short JSON notice there (job, run id, the error's first line; never secrets).",
)
def shipnav_run_failure_sensor(context: dg.RunFailureSensorContext, shipnav: ShipnavResource) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    first_line = message.splitlines()[0][:500]
    context.log.error(f"shipnav run failed: {run.job_name} {run.run_id}: {first_line}")
    url = shipnav.settings.shipnav_failure_webhook_url
    if not url:
        return
    problem = announce_failure(url, job=run.job_name, run_id=run.run_id, first_line=first_line)
    if problem:
        context.log.warning(f"could not notify SHIPNAV_FAILURE_WEBHOOK_URL: {problem}")
