"""Which runs are over, as the Dagster instance knows them: their claims and journal entries
count for nothing any more (a killed run's work is picked up by the very next run)."""

from collections.abc import Collection

import dagster as dg

# A run in one of these may still be writing; any other status (success, failure, canceled) or a
# run id the instance does not know means it is over.
IN_PROGRESS = frozenset(
    {
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    }
)


def runs_over(instance: dg.DagsterInstance, run_ids: Collection[str], *, own: str | None = None) -> set[str]:
    ids = sorted({r for r in run_ids if r and r != own})
    if not ids:
        return set()
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=ids))
    alive = {r.dagster_run.run_id for r in records if r.dagster_run.status in IN_PROGRESS}
    return set(ids) - alive
