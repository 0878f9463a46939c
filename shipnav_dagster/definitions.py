"""The shipnav code location: one explicit Definitions object."""

import warnings

import dagster as dg

from shipnav_dagster.defs.alerts import shipnav_run_failure_sensor
from shipnav_dagster.defs.lag import nav_tracking_lag
from shipnav_dagster.defs.reconcile import (
    nav_reconciliation,
    shipnav_reconcile_job,
    shipnav_reconcile_schedule,
)
from shipnav_dagster.defs.replay import shipnav_replay_job
from shipnav_dagster.defs.report import nav_month_end_report
from shipnav_dagster.defs.resources import ShipnavResource
from shipnav_dagster.defs.sensors import shipnav_unmatched_retry_sensor, shipnav_webhook_sensor
from shipnav_dagster.defs.sync import (
    build_sync_schedule,
    nav_sales_orders,
    nav_tracking_writeback,
    shipment_matches,
    shipnav_sync_job,
    shipstation_shipments,
)

defs = dg.Definitions(
    assets=[
        nav_sales_orders,
        shipstation_shipments,
        shipment_matches,
        nav_tracking_writeback,
        nav_tracking_lag,
        nav_reconciliation,
        nav_month_end_report,
    ],
    jobs=[shipnav_sync_job, shipnav_replay_job, shipnav_reconcile_job],
    schedules=[build_sync_schedule(), shipnav_reconcile_schedule],
    sensors=[shipnav_unmatched_retry_sensor, shipnav_webhook_sensor, shipnav_run_failure_sensor],
    resources={"shipnav": ShipnavResource()},
)

# Resolving the definitions attaches the jobs to the sensors, and Dagster 1.13 then warns
# (BetaWarning) about SensorDefinition's `owners` parameter, which Dagster passes itself. Resolved
# here once (the result is cached), without that warning, so no terminal that loads the code
# location shows it: shipnav's commands, `dagster dev`, the run workers.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    defs.get_repository_def()
