"""The code location's public names, as operators and scripts know them: a rename fails here.

Assets and their checks, jobs, schedules and sensors are what the UI shows, what schedules and
sensors are toggled by, and what `dagster job execute -j …` names; CONTRACT-level names among
them (`shipnav_sync_job`, `shipnav_replay_job`, `shipnav_sync_schedule`, the two sensors) must
never change. Adding one is a deliberate change of this snapshot.
"""

from shipnav_dagster.definitions import defs

SNAPSHOT = {
    "assets": [
        "nav_month_end_report",
        "nav_reconciliation",
        "nav_sales_orders",
        "nav_tracking_lag",
        "nav_tracking_writeback",
        "shipment_matches",
        "shipstation_shipments",
    ],
    "checks": [
        "nav_reconciliation:shipments_in_nav_or_explained",
        "nav_tracking_lag:tracking_lag_within_limits",
        "shipment_matches:one_nav_order_per_shipment",
    ],
    "jobs": ["shipnav_reconcile_job", "shipnav_replay_job", "shipnav_sync_job"],
    "schedules": ["shipnav_reconcile_schedule", "shipnav_sync_schedule"],
    "sensors": ["shipnav_run_failure_sensor", "shipnav_unmatched_retry_sensor", "shipnav_webhook_sensor"],
}


def test_the_code_location_names_are_the_snapshot() -> None:
    repo = defs.get_repository_def()
    found = {
        "assets": sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()),
        "checks": sorted(
            f"{k.asset_key.to_user_string()}:{k.name}" for k in repo.asset_graph.asset_check_keys
        ),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        "sensors": sorted(s.name for s in repo.sensor_defs),
    }
    assert found == SNAPSHOT
