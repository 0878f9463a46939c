"""`shipnav replay`: one run of shipnav_replay_job on the operator's Dagster instance."""

import sys
from collections.abc import Sequence

from shipnav_dagster.core.model import record_key_of


def launch_replay(records: Sequence[str], *, all_due: bool, dry_run: bool, from_inbox: bool) -> int:
    import dagster as dg

    from shipnav_dagster.definitions import defs

    try:
        keys = [record_key_of(r) for r in records]
    except ValueError as exc:
        print(f"shipnav replay: {exc}", file=sys.stderr)
        return 2
    config = {"shipment_ids": keys, "all_due": all_due, "dry_run": dry_run, "from_inbox": from_inbox}
    job = defs.resolve_job_def("shipnav_replay_job")
    # DAGSTER_HOME's instance when set (the run appears in the UI), else a throwaway one.
    instance = dg.DagsterInstance.get() if _home_set() else dg.DagsterInstance.ephemeral()
    with instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={"ops": {"replay_records": {"config": config}}},
            tags={"shipnav/trigger": "cli"},
            raise_on_error=False,
        )
    print(f"shipnav_replay_job run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    for key in keys:
        print(f"  see `shipnav ledger show {key}`")
    return 0 if result.success else 1


def _home_set() -> bool:
    import os

    return bool(os.environ.get("DAGSTER_HOME"))
