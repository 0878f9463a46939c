"""Which runs are over, as far as anyone can tell: their claims and journal entries count for
nothing any more, so a killed run's work is picked up by the very next run.

Dagster's run status is the first answer (finished, failed, canceled, or a run id the instance
does not know). It is not enough on its own: a run whose process was killed stays STARTED until
the daemon's run monitoring notices, and without a daemon (``dagster job execute``, ``shipnav
replay``) it never does. So each shipnav run tags itself with its host, process id and process
start time; a STARTED run whose process is gone from this host is over too.
"""

import os
import socket
from collections.abc import Collection
from pathlib import Path

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
HOST_TAG, PID_TAG, PID_START_TAG = "shipnav/host", "shipnav/pid", "shipnav/pid_start"


def process_tags() -> dict[str, str]:
    """Tags that identify the process running a run (added by the resource when a run starts)."""
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        PID_START_TAG: _start_time(os.getpid()),
    }


def runs_over(instance: dg.DagsterInstance, run_ids: Collection[str], *, own: str | None = None) -> set[str]:
    ids = sorted({r for r in run_ids if r and r != own})
    if not ids:
        return set()
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=ids))
    alive = {
        r.dagster_run.run_id
        for r in records
        if r.dagster_run.status in IN_PROGRESS and not _process_gone(r.dagster_run.tags)
    }
    return set(ids) - alive


def _process_gone(tags: dict[str, str]) -> bool:
    """True only when the run's process is known to be gone: it ran on this host and no process
    with its pid and start time exists any more. A run on another host is trusted to Dagster."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by someone else
    # The pid exists: the same process only if it started when the run's process did.
    started = tags.get(PID_START_TAG, "")
    return bool(started) and _start_time(pid) not in ("", started)


def _start_time(pid: int) -> str:
    """The process start time in clock ticks since boot (Linux /proc/<pid>/stat field 22); empty
    where /proc does not exist. It tells a reused pid from the original process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    return stat.rsplit(")", 1)[-1].split()[19]
