"""Jobs and the schedule."""

import dagster as dg

from shipnav_dagster.defs.assets import nav_tracking_writeback, shipment_matches, shipstation_shipments
from shipnav_dagster.defs.checks import nav_reconciliation
from shipnav_dagster.settings import read_environment

# Runs carrying this tag are limited to one at a time by dagster.yaml's tag_concurrency_limits,
# so a sync and a replay never write NAV together.
WRITES_NAV_TAG = {"shipnav/writes-nav": "true"}

shipnav_sync_job = dg.define_asset_job(
    "shipnav_sync_job",
    # Reconciliation reads NAV back for a whole window: it runs daily on its own, not every sync.
    selection=dg.AssetSelection.assets(shipstation_shipments, shipment_matches, nav_tracking_writeback)
    - dg.AssetSelection.checks(nav_reconciliation),
    tags={**WRITES_NAV_TAG, "dagster/max_retries": "1", "dagster/retry_on_asset_or_op_failure": "false"},
    description="One full sync: poll ShipStation, match to NAV sales orders, write tracking back.",
    # The three steps run one after another anyway: a process per step only adds start-up time.
    executor_def=dg.in_process_executor,
)


def build_sync_schedule() -> dg.ScheduleDefinition:
    # Cron and time zone only: loading the code location never needs (or decrypts) secrets.
    settings = read_environment()
    return dg.ScheduleDefinition(
        name="shipnav_sync_schedule",
        job=shipnav_sync_job,
        cron_schedule=settings.shipnav_sync_cron,
        execution_timezone=settings.shipnav_sync_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Runs shipnav_sync_job on SHIPNAV_SYNC_CRON (default every 15 minutes). "
        "The poll reads from the stored cursor, so missed ticks lose nothing.",
    )
