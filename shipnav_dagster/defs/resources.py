"""The one Dagster resource: settings from the environment, and the clients built from them.

Nothing secret is a resource field, so nothing secret can reach run config, the launchpad or
the event log: the values are read from the environment inside the run process.
"""

import contextlib
import sys
from collections.abc import Callable
from datetime import timedelta

import dagster as dg
from pydantic import PrivateAttr

from shipnav_dagster import redaction
from shipnav_dagster.core.carriers import CarrierMapping, load_mapping
from shipnav_dagster.defs.liveness import process_tags, runs_over
from shipnav_dagster.ledger import journal
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.nav.client import NavClient
from shipnav_dagster.nav.platform import posted_shipments_writable
from shipnav_dagster.settings import Settings, SettingsError, check_settings
from shipnav_dagster.shipstation.factory import open_source
from shipnav_dagster.shipstation.source import ShipStationSource
from shipnav_dagster.sync.write import WriteOptions


class ShipnavResource(dg.ConfigurableResource):
    """Settings, ledger and API clients for one run."""

    _settings: Settings | None = PrivateAttr(default=None)
    _ledger: Ledger | None = PrivateAttr(default=None)
    _shipstation: ShipStationSource | None = PrivateAttr(default=None)
    _nav: NavClient | None = PrivateAttr(default=None)
    _mapping: CarrierMapping | None = PrivateAttr(default=None)
    _instance: dg.DagsterInstance | None = PrivateAttr(default=None)
    _run_id: str | None = PrivateAttr(default=None)
    # sys.tracebacklimit as this resource found it, once it hides stack traces: (None,) = unset.
    _saved_tracebacklimit: tuple[int | None] | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._instance = context.instance
        self._run_id = context.run.run_id if context.run is not None else None
        if self._instance is not None and self._run_id is not None:
            # So a later run can tell that this one's process is gone if it is killed.
            self._instance.add_run_tags(self._run_id, process_tags())
        # Settings (and so the log redaction) before any client exists or anything is logged.
        # A bad setting fails the step that uses it (the run's first), so it is not raised here.
        with contextlib.suppress(dg.Failure):
            _ = self.settings

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = self._settings_or_failure(lambda: check_settings(systems=False))
            # Every secret value of these settings (and its wire forms) leaves the logs as ***.
            redaction.install_for_settings(settings)
            self._settings = settings
        return self._settings

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.settings.database_url).create_all()
        return self._ledger

    @property
    def mapping(self) -> CarrierMapping:
        if self._mapping is None:
            self._mapping = load_mapping(self.settings.shipnav_mapping_file)
        return self._mapping

    @property
    def shipstation(self) -> ShipStationSource:
        """The configured API generation (SHIPSTATION_API_VERSION): its streams and parsers."""
        if self._shipstation is None:
            self._shipstation = open_source(self.settings_for_both_systems())
        return self._shipstation

    @property
    def nav(self) -> NavClient:
        if self._nav is None:
            self._nav = NavClient.from_settings(self.settings_for_both_systems())
            # The OAuth bearer token is fetched during the run: redact whatever it is by then.
            redaction.install(watch=[self._nav.auth])
        return self._nav

    def settings_for_both_systems(self) -> Settings:
        """The settings once ShipStation and NAV both have what they need: a run that lacks
        anything fails at its first step, and the one message names everything either lacks."""
        settings = self.settings
        return self._settings_or_failure(settings.require)

    def write_options(self, *, dry_run: bool | None = None, record_state: bool = True) -> WriteOptions:
        s = self.settings
        return WriteOptions(
            mapping=self.mapping,
            tracking_max_length=s.nav_tracking_max_length,
            write_line_quantities=s.shipnav_write_line_quantities,
            dry_run=s.shipnav_dry_run if dry_run is None else dry_run,
            max_concurrency=s.nav_max_concurrency,
            chunk=s.shipnav_nav_filter_chunk,
            posted_writable=posted_shipments_writable(s.nav_platform, s.nav_odata_url),
            record_state=record_state,
            # NAV 2013-2018 has no $batch; elsewhere try it, and fall back on the first refusal.
            batch=s.nav_batch == "auto" and s.nav_platform != "nav",
        )

    def dead_runs(self) -> set[str]:
        """Runs holding claims or unsettled journal entries that the Dagster instance reports as
        over (or does not know): their work is free for this run at once."""
        if self._instance is None:
            return set()  # outside Dagster (a benchmark calling the steps): the claim TTL applies
        holders = self.ledger.claim_holders() | journal.holders(self.ledger)
        return runs_over(self._instance, holders, own=self._run_id)

    @property
    def max_unmatched_age(self) -> timedelta:
        return timedelta(hours=self.settings.shipnav_unmatched_max_age_hours)

    # Settings errors: one message, no stack trace -------------------------------------------

    def _settings_or_failure(self, read: Callable[[], Settings]) -> Settings:
        """Settings errors end the step as one ``dg.Failure`` whose description is the message
        that lists every problem."""
        try:
            return read()
        except SettingsError as exc:
            if self._run_id is not None:
                self._hide_stack_traces()
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    def _hide_stack_traces(self) -> None:
        """Dagster's UI prints a step failure's stack trace under its message unless the stack is
        empty, and a settings failure's stack holds nothing but Dagster's own frames. Python
        formats every traceback to depth ``sys.tracebacklimit``
        (https://docs.python.org/3/library/sys.html#sys.tracebacklimit), so it is 0 from here
        until this run's resources are torn down; the run stops at this step anyway."""
        if self._saved_tracebacklimit is None:
            self._saved_tracebacklimit = (getattr(sys, "tracebacklimit", None),)
            sys.tracebacklimit = 0

    def _restore_stack_traces(self) -> None:
        if self._saved_tracebacklimit is None:
            return
        (limit,), self._saved_tracebacklimit = self._saved_tracebacklimit, None
        if limit is None:
            with contextlib.suppress(AttributeError):
                del sys.tracebacklimit
        else:
            sys.tracebacklimit = limit

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._restore_stack_traces()
        # Whatever step failed, the run's claims end with it.
        if self._ledger is not None and self._run_id is not None:
            self._ledger.release(self._run_id)
        for client in (self._shipstation, self._nav):
            if client is not None:
                client.close()
        if self._ledger is not None:
            self._ledger.dispose()
