"""Counts of the HTTP requests a NAV client sent, safe to read while other threads send more."""

import threading


class NavStats:
    """Thread-safe counters of the HTTP requests this client sent (retries included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)

    @property
    def get(self) -> int:
        return self["GET"]

    @property
    def patch(self) -> int:
        return self["PATCH"]

    @property
    def retries(self) -> int:
        return self["retries"]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
