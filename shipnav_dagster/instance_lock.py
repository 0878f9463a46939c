"""One process at a time initialises a local Dagster instance: an exclusive file lock per folder.

Dagster's SQLite storages create their tables and stamp ``alembic_version`` on first use with no
guard between processes. Two runs started together on a fresh home can crash one of them
(``table secondary_indexes already exists``) or leave ``alembic_version`` with two rows, after
which every instance load fails with "more than one head present". Creating the instance while
holding this lock makes the first initialisation happen once; later processes find the tables
stamped and only read them.

``fcntl.flock`` locks belong to the open file and are released by the kernel when the holder
exits, even on SIGKILL, so a crashed process never leaves a stale lock behind
(https://man7.org/linux/man-pages/man2/flock.2.html).
"""

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE_NAME = ".shipnav-instance.lock"
DEFAULT_TIMEOUT_SECONDS = 120.0
_POLL_SECONDS = 0.05


class InstanceLockTimeout(RuntimeError):
    """Another live process kept the folder's lock longer than the timeout."""


# flock is per open file: a second flock on a new descriptor of the same file blocks even within
# one process. Nested acquisitions (open_instance around a storage that locks the same folder)
# are counted here instead of locked again.
_held: dict[Path, int] = {}
_held_guard = threading.Lock()
_thread_locks: dict[Path, threading.RLock] = {}


@contextmanager
def instance_init_lock(folder: str | Path, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if missing); yields the lock file's path."""
    path = (Path(folder).resolve()) / LOCK_FILE_NAME
    with _held_guard:
        thread_lock = _thread_locks.setdefault(path, threading.RLock())
    with thread_lock:
        if _held.get(path):
            _held[path] += 1
            try:
                yield path
            finally:
                _held[path] -= 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Read-only is enough for flock, so another user (an operator, the service user)
            # can lock a file the other created.
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except PermissionError:
            # A folder this process cannot write to: it cannot create SQLite files there either,
            # so there is nothing to serialise (the instance's storage is elsewhere).
            yield path
            return
        try:
            _acquire(fd, path, timeout)
            _held[path] = 1
            try:
                yield path
            finally:
                _held[path] = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _acquire(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise InstanceLockTimeout(
                    f"another process has been setting up the Dagster instance in {path.parent} for "
                    f"{timeout:.0f} seconds (it holds {path.name}); wait for it to finish, or stop it"
                ) from None
            time.sleep(_POLL_SECONDS)
