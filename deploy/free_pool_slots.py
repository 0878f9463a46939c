"""List the runs holding slots of a Dagster pool, and free the slots of runs that have ended.

A run whose process died while one of its steps held a pool slot (``shipnav_nav_writes``) keeps
the slot after the run is marked failed; every later NAV-writing step then waits. The
dagster-daemon frees such slots ``run_monitoring.free_slots_after_run_end_seconds`` after the run
ended. This does it now, for example when the daemon is not running. Dagster 1.13's CLI has no
command for it (``dagster instance concurrency`` only has ``get`` and ``set``); the UI has "Free
concurrency slots" in a finished run's menu.

Slots of runs still in progress are never freed here: if such a run's process is gone, first
terminate the run in the UI with "Force termination immediately", then run this again.

Run it as the service user with the services' environment (DAGSTER_HOME, DAGSTER_PG_*), e.g.:

    /opt/shipnav/venv/bin/python /opt/shipnav/src/deploy/free_pool_slots.py            # list
    /opt/shipnav/venv/bin/python /opt/shipnav/src/deploy/free_pool_slots.py --free     # free
"""

import argparse
import sys

import dagster as dg

DEFAULT_POOL = "shipnav_nav_writes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default=DEFAULT_POOL, help=f"the pool (default {DEFAULT_POOL})")
    parser.add_argument("--free", action="store_true", help="free the slots of ended runs (default: list)")
    args = parser.parse_args(argv)
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        if not storage.supports_global_concurrency_limits:
            print("this Dagster instance's storage has no pool slots (run `dagster instance migrate`)")
            return 1
        info = storage.get_concurrency_info(args.pool)
        print(f"{args.pool}: {len(info.claimed_slots)} of {info.slot_count} slots held")
        stuck = 0
        for run_id in sorted({slot.run_id for slot in info.claimed_slots}):
            run = instance.get_run_by_id(run_id)
            status = run.status.value if run else "deleted"
            ended = run is None or run.is_finished
            if ended and args.free:
                storage.free_concurrency_slots_for_run(run_id)
                verdict = "freed"
            elif ended:
                stuck += 1
                verdict = "ended: free it with --free"
            else:
                verdict = "in progress: terminate the run first if its process is gone"
            print(f"  run {run_id} ({status}): {verdict}")
    return 1 if stuck else 0


if __name__ == "__main__":
    sys.exit(main())
