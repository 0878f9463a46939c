"""Delete finished Dagster runs, with their event logs, older than a retention period.

Dagster OSS never deletes runs or event logs (dagster.yaml's ``retention`` covers schedule and
sensor ticks only), so the run database grows for ever. This removes what is older than
``--older-than-days``; it only lists what it would delete unless ``--delete`` is given.

The shipnav ledger is the record-level audit trail: every decision and NAV write is there with
its Dagster run id, and stays there after the run is deleted. Choose a retention that still covers
the period in which someone may want to open a run's logs in the UI.

Run it as the service user with the services' environment (DAGSTER_HOME, DAGSTER_PG_*), e.g.:

    /opt/shipnav/venv/bin/python /opt/shipnav/deploy/prune_dagster_runs.py --older-than-days 180
"""

import argparse
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--older-than-days", type=int, required=True, help="keep runs newer than this")
    parser.add_argument("--delete", action="store_true", help="delete (default: only list)")
    parser.add_argument("--batch", type=int, default=500, help="runs per query (default 500)")
    args = parser.parse_args(argv)
    if args.older_than_days < 1:
        parser.error("--older-than-days must be at least 1")
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than_days)
    total = 0
    with dg.DagsterInstance.get() as instance:
        cursor = None  # listing pages with a cursor; deleting re-reads the oldest page each time
        while True:
            records = instance.get_run_records(
                filters=dg.RunsFilter(statuses=FINISHED, created_before=cutoff),
                limit=args.batch,
                cursor=None if args.delete else cursor,
            )
            for record in records:
                run = record.dagster_run
                created = f"{record.create_timestamp:%Y-%m-%d %H:%M}"
                print(f"{created} {run.status.value:<8} {run.job_name} {run.run_id}")
                if args.delete:
                    instance.delete_run(run.run_id)
            total += len(records)
            if len(records) < args.batch:
                break
            cursor = records[-1].dagster_run.run_id
    verb = "deleted" if args.delete else "would delete (pass --delete)"
    print(f"{verb}: {total} runs created before {cutoff:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
