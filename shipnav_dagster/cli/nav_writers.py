"""Is another run writing to NAV? Asked before a ``shipnav`` command starts a run in process.

A command's run executes in the command's own process, outside the run queue, so the queue's
``shipnav/writes-nav`` limit does not hold it back; the NAV-writing step would instead wait for
the ``shipnav_nav_writes`` pool slot. Dagster 1.13.27 waits for a slot without sleeping
(``InstanceConcurrencyContext.interval_to_next_pending_claim_check`` returns ``min([0, ...])``;
https://github.com/dagster-io/dagster/pull/20367 describes it and was closed unmerged), and when
the holder died the wait lasts until run monitoring frees the slot, if it ever does. So the
command looks first, and refuses to start while a writer is in progress or a slot is held.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

WRITER_JOBS = ("shipnav_sync_job", "shipnav_replay_job")
# Runs that started, or were created to start now (execute_in_process creates them NOT_STARTED).
# QUEUED runs are left out: the daemon does not dequeue one while our run carries the tag.
ACTIVE_STATUSES = [dg.DagsterRunStatus.NOT_STARTED, *IN_PROGRESS_RUN_STATUSES]


@dataclass(frozen=True)
class Writer:
    """A run in the way: in progress as a NAV writer, or holding a slot of a NAV pool."""

    run_id: str
    job_name: str
    status: str
    reason: str


def writer_tags(defs: dg.Definitions) -> dict[str, str]:
    """The tags every NAV-writing job carries (the queue's limit is on them)."""
    jobs = [defs.resolve_job_def(name) for name in WRITER_JOBS]
    shared = dict(jobs[0].tags)
    for job in jobs[1:]:
        shared = {k: v for k, v in shared.items() if job.tags.get(k) == v}
    return {k: v for k, v in shared.items() if k.startswith("shipnav/")}


def writer_pools(defs: dg.Definitions) -> set[str]:
    """The pools of the NAV-writing steps, read from the jobs (``shipnav_nav_writes``)."""
    pools: set[str] = set()
    for name in WRITER_JOBS:
        for op in defs.resolve_job_def(name).graph.iterate_op_defs():
            if op.pool:
                pools.add(op.pool)
    return pools


def nav_writers(
    instance: dg.DagsterInstance, *, tags: Mapping[str, str], pools: Iterable[str]
) -> list[Writer]:
    """Runs writing NAV now (by job name or tag), then finished runs still holding a pool slot."""
    found: dict[str, Writer] = {}
    filters = [dg.RunsFilter(job_name=name, statuses=ACTIVE_STATUSES) for name in WRITER_JOBS]
    if tags:
        filters.append(dg.RunsFilter(tags=dict(tags), statuses=ACTIVE_STATUSES))
    for runs_filter in filters:
        for run in instance.get_runs(filters=runs_filter, limit=20):
            found.setdefault(run.run_id, Writer(run.run_id, run.job_name, run.status.value, "in progress"))
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return list(found.values())
    for pool in sorted(pools):
        for slot in storage.get_concurrency_info(pool).claimed_slots:
            if slot.run_id in found:
                continue
            run = instance.get_run_by_id(slot.run_id)
            found[slot.run_id] = Writer(
                slot.run_id,
                run.job_name if run else "(deleted run)",
                run.status.value if run else "unknown",
                f"holds a {pool} slot",
            )
    return list(found.values())


def refusal(writers: list[Writer], pools: Iterable[str]) -> str:
    """The operator's message: who is in the way, and what to do about each kind."""
    lines = [
        "another run is writing to NAV, so this one would only wait for it:",
        *(f"  {w.job_name} run {w.run_id} ({w.status}): {w.reason}" for w in writers),
        "Run the command again when it has finished.",
    ]
    if any(w.status in ("STARTED", "STARTING", "NOT_STARTED") for w in writers):
        lines.append(
            "If that run's process is gone (killed, machine restarted), open the run in the Dagster "
            "UI and Terminate it with 'Force termination immediately'."
        )
    if any(w.reason.startswith("holds") for w in writers):
        pool = ", ".join(sorted(pools))
        lines.append(
            f"A finished run that still holds a {pool} slot died before giving it back: the "
            "dagster-daemon frees it after run_monitoring.free_slots_after_run_end_seconds; free "
            "it now with 'Free concurrency slots' in the run's menu in the UI, or with "
            "deploy/free_pool_slots.py --free (operations guide, 'A stuck NAV slot')."
        )
    return "\n".join(lines)
