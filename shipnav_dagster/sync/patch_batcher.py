"""PATCHes of many orders gathered into ``$batch`` requests while each order's writer waits for
its own answer, so the per-order write logic (ETags, conflicts, refusals) is the same with and
without batching.

Writers hand in one PATCH at a time and block until its operation's answer arrives. A batch is
sent when it is full (100 operations) or when no further PATCH has arrived for a short moment;
batches go out side by side up to NAV_MAX_CONCURRENCY. The first batch a server refuses as such
(NAV 2013-2018 has no ``$batch``) turns batching off for the rest of the run: every waiting and
later PATCH goes out on its own.
"""

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shipnav_dagster.nav.batch import MAX_OPERATIONS, BatchUnsupported, Patch, PatchResult, patch_all
from shipnav_dagster.nav.client import NavClient

# How long a partly filled batch waits for more PATCHes when some writers are still busy planning
# (a batch is sent at once when every writer is waiting for its answer).
LINGER_SECONDS = 0.25


class PatchBatcher:
    def __init__(self, nav: NavClient, *, on_unsupported: Callable[[str], None] = lambda _why: None) -> None:
        self.nav = nav
        self.supported = True
        self.batches = 0
        self._on_unsupported = on_unsupported
        self._pending: list[tuple[Patch, Future[PatchResult]]] = []
        self._first_at = 0.0
        self._cond = threading.Condition()
        self._closed = False
        self._active = 0  # writers between writer() enter and exit
        self._senders = ThreadPoolExecutor(
            max_workers=nav.max_concurrency, thread_name_prefix="shipnav-batch"
        )
        self._loop = threading.Thread(target=self._run, name="shipnav-batcher", daemon=True)
        self._loop.start()

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Around one order's write: while it runs, the batcher waits for its PATCHes."""
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def patch(self, path: str, etag: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH one entity; NAV's answer to this operation, or its error raised as NavError."""
        if not self.supported:
            return self.nav.patch_path(path, etag, changes)
        future: Future[PatchResult] = Future()
        with self._cond:
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending.append((Patch(path, etag, changes), future))
            self._cond.notify_all()
        result = future.result()
        if result.error is not None:
            raise result.error
        return result.entity or {}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._loop.join(timeout=30)
        self._senders.shutdown(wait=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ready():
                    if self._closed and not self._pending:
                        return
                    wait = LINGER_SECONDS - (time.monotonic() - self._first_at) if self._pending else None
                    self._cond.wait(timeout=max(wait, 0.001) if wait is not None else 0.5)
                batch = self._pending[:MAX_OPERATIONS]
                del self._pending[:MAX_OPERATIONS]
                if self._pending:
                    self._first_at = time.monotonic()
            self._senders.submit(self._send, batch)

    def _ready(self) -> bool:
        if not self._pending:
            return False
        full = len(self._pending) >= MAX_OPERATIONS
        everyone_waits = len(self._pending) >= self._active
        return full or everyone_waits or self._closed or time.monotonic() - self._first_at >= LINGER_SECONDS

    def _send(self, batch: list[tuple[Patch, Future[PatchResult]]]) -> None:
        try:
            if self.supported:
                try:
                    results = patch_all(self.nav, [p for p, _f in batch])
                    self.batches += 1
                except BatchUnsupported as exc:
                    self.supported = False
                    self._on_unsupported(str(exc))
                    results = [self._single(p) for p, _f in batch]
            else:
                results = [self._single(p) for p, _f in batch]
        except BaseException as exc:  # the whole request failed (NAV down): every operation did
            for _p, future in batch:
                future.set_exception(exc)
            return
        for (_p, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    def _single(self, patch: Patch) -> PatchResult:
        from shipnav_dagster.nav.errors import NavError

        try:
            return PatchResult(self.nav.patch_path(patch.path, patch.etag, patch.changes), None)
        except NavError as exc:
            return PatchResult(None, exc)
