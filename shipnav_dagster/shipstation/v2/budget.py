"""The V2 rate-limit budget, counted on this side: ShipStation reports nothing until a 429.

https://docs.shipstation.com/rate-limits: 200 requests per minute by default (more on request,
20 on ShipEngine sandbox keys); a request over the limit gets 429 with ``Retry-After`` seconds,
and no response carries the budget left. So the client counts its own requests in a sliding
minute and spends the budget in full, waiting only when all but a small reserve is used (the
reserve leaves room for another shipnav process on the same key, e.g. the webhook drain). A 429
is still possible (another client, a lower limit): it is waited out by ``Retry-After``.
"""

import time
from collections import deque
from collections.abc import Callable

DEFAULT_LIMIT = 200
DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_RESERVE = 2


class RequestBudget:
    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        reserve: int = DEFAULT_RESERVE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_seconds <= 0 or reserve < 0:
            raise ValueError("the budget needs limit >= 1, window_seconds > 0 and reserve >= 0")
        self.limit = limit
        self.window = window_seconds
        self.reserve = min(reserve, limit - 1)
        self._clock = clock
        self._sent: deque[float] = deque()

    def _forget_old(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def used(self) -> int:
        """Requests sent within the last window."""
        self._forget_old(self._clock())
        return len(self._sent)

    def remaining(self) -> int:
        return max(self.limit - self.used(), 0)

    def delay(self) -> float:
        """Seconds to wait before the next request so no more than ``limit - reserve`` are sent in
        any window; 0 while the budget lasts."""
        now = self._clock()
        self._forget_old(now)
        usable = self.limit - self.reserve
        if len(self._sent) < usable:
            return 0.0
        # The request that has to leave the window before the next may go.
        leaving = self._sent[len(self._sent) - usable]
        return max(leaving + self.window - now, 0.0)

    def spend(self) -> None:
        self._sent.append(self._clock())
