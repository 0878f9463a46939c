"""The shipnav code location: one explicit Definitions object."""

import dagster as dg

from shipnav_dagster.defs.alerts import shipnav_run_failure_sensor
from shipnav_dagster.defs.reconcile import (
    nav_reconciliation,
    shipnav_reconcile_job,
    shipnav_reconcile_schedule,
)
from shipnav_dagster.defs.replay import shipnav_replay_job
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
    assets=[nav_sales_orders, shipstation_shipments, shipment_matches, nav_tracking_writeback],
    asset_checks=[nav_reconciliation],
    jobs=[shipnav_sync_job, shipnav_replay_job, shipnav_reconcile_job],
    schedules=[build_sync_schedule(), shipnav_reconcile_schedule],
    sensors=[shipnav_unmatched_retry_sensor, shipnav_webhook_sensor, shipnav_run_failure_sensor],
    resources={"shipnav": ShipnavResource()},
)
