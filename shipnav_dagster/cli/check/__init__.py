"""``shipnav check``: ping ShipStation, NAV and the ledger with the configured settings.

Every check is a small function returning :class:`CheckResult` objects (what works, what does
not, and what to change); :func:`format_report` turns them into text and is pure, so the wording
can be tested without a network. :func:`run` ties both together for the console script.
"""

import sys
import time
from collections.abc import Callable
from typing import TextIO

import click

from shipnav_dagster.cli.check.ledger import check_ledger
from shipnav_dagster.cli.check.nav import check_nav
from shipnav_dagster.cli.check.report import CheckResult, Report, _one_line, fail, format_report
from shipnav_dagster.cli.check.settings import check_settings, environment_secrets, settings_secrets
from shipnav_dagster.cli.check.shipstation import SS, check_shipstation
from shipnav_dagster.settings import Settings, load_settings


def run_checks(
    load: Callable[[], Settings] = load_settings, *, sleep: Callable[[float], None] = time.sleep
) -> Report:
    settings, results = check_settings(load)
    if settings is None:
        return Report(results, environment_secrets())
    report = Report(results, settings_secrets(settings) + environment_secrets())
    report.results += _guarded(SS, lambda: check_shipstation(settings, sleep=sleep))
    report.results += _guarded("NAV", lambda: check_nav(settings, sleep=sleep))
    report.results += _guarded("Ledger", lambda: check_ledger(settings))
    return report


def _guarded(system: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """A surprise (an odd answer no client error covers) is one FAIL line, not a traceback that
    would also hide the verdicts on the other systems."""
    try:
        return check()
    except Exception as exc:
        return [fail(system, f"unexpected error: {type(exc).__name__}: {_one_line(str(exc), 200)}")]


def run(stream: TextIO, load: Callable[[], Settings] = load_settings) -> int:
    """``shipnav check``: print one line per check and the summary; 1 when anything failed."""
    report = run_checks(load)
    print(format_report(report), file=stream, flush=True)
    return report.exit_code


@click.command(
    "check",
    help="Check the settings, the ShipStation credentials, rate limit, stores and /shipments, the NAV "
    "token or Basic login, $metadata, the published services with the fields shipnav uses and the "
    "tracking length, and the ledger. One OK / WARN / FAIL line per check; exit code 1 when anything "
    "failed. Secrets are never printed.",
    short_help="ping ShipStation, NAV and the ledger with the configured settings and say what works",
)
def check() -> int:
    return run(sys.stdout)
