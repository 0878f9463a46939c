"""The receiver's share of keeping the webhook inbox bounded: refuse while it is full, prune it.

* Full: while ``SHIPNAV_WEBHOOK_MAX_PENDING`` notifications wait to be processed, a new one is
  answered ``503 Service Unavailable`` with ``Retry-After`` (RFC 9110, section 15.6.4), so the
  sender delivers it again later; nothing already stored is dropped to make room. ShipStation
  does not document its retries, and polling finds every shipment anyway: webhooks only make
  shipnav faster.
* Pruned: processed notifications older than ``SHIPNAV_WEBHOOK_RETENTION_DAYS`` are deleted when
  the receiver starts and then at most once per ``PRUNE_INTERVAL`` while it receives.
"""

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from shipnav_dagster.ledger.inbox import prune_processed, unprocessed_at_least
from shipnav_dagster.settings import Settings

if TYPE_CHECKING:
    from shipnav_dagster.ledger.repository import Ledger

log = logging.getLogger("shipnav_dagster.webhooks")

DEFAULT_MAX_PENDING: int = Settings.model_fields["shipnav_webhook_max_pending"].default
DEFAULT_RETENTION = timedelta(days=Settings.model_fields["shipnav_webhook_retention_days"].default)
PRUNE_INTERVAL_SECONDS = 3600.0
# A replay run drains the inbox every 30 seconds or so (shipnav_webhook_sensor); a few minutes
# leaves it time to make room.
RETRY_AFTER_SECONDS = 300
FULL_WARNING_INTERVAL_SECONDS = 60.0


class InboxBounds:
    """Thread-safe: the receiver calls ``is_full`` and ``maybe_prune`` from its thread pool."""

    def __init__(
        self,
        ledger: "Ledger",
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        retention: timedelta = DEFAULT_RETENTION,
        prune_interval: float = PRUNE_INTERVAL_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.max_pending = max_pending
        self.retention = retention
        self.prune_interval = prune_interval
        self._lock = threading.Lock()
        self._next_prune = 0.0
        self._next_full_warning = 0.0

    def is_full(self) -> bool:
        full = unprocessed_at_least(self.ledger, self.max_pending)
        if full and self._due("_next_full_warning", FULL_WARNING_INTERVAL_SECONDS):
            log.warning(
                "webhook inbox full: %d notifications wait to be processed "
                "(SHIPNAV_WEBHOOK_MAX_PENDING); new ones are answered 503 until runs drain it "
                "(is shipnav_webhook_sensor on, and the dagster-daemon running?)",
                self.max_pending,
            )
        return full

    def maybe_prune(self) -> int:
        """Prune now if the last prune is older than the interval; rows deleted (0 if not due).

        A failure is logged, never raised: pruning must not cost a notification its answer.
        """
        if not self._due("_next_prune", self.prune_interval):
            return 0
        try:
            deleted = prune_processed(self.ledger, self.retention)
        except Exception:
            log.exception("could not prune processed webhook notifications; trying again later")
            return 0
        if deleted:
            log.info(
                "pruned %d processed webhook notifications older than %d days",
                deleted,
                self.retention.days,
            )
        return deleted

    def _due(self, attribute: str, interval: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < getattr(self, attribute):
                return False
            setattr(self, attribute, now + interval)
            return True
