"""What ``shipnav check`` reports: one verdict per check, and how the verdicts are printed (pure).

Secrets never reach the output: messages are built from variable names, URLs without user info
and server error texts the clients already redact, and :func:`format_report` masks every secret
value of the settings (and of the environment, when the settings could not even be loaded) as a
last line of defence.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from shipnav_dagster.core.model import RecordStatus

# A check must answer quickly: one retry, short back-off, and no minute-long rate-limit waits.
ATTEMPTS = 2
BACKOFF_SECONDS = 0.2
MAX_WAIT_SECONDS = 5.0
MAX_TIMEOUT_SECONDS = 15.0
STORES_LISTED = 10  # beyond this the line gets unreadable; the rest is counted
QUEUE_STATUSES = (
    RecordStatus.NO_ORDER_YET,
    RecordStatus.NEEDS_ATTENTION,
    RecordStatus.FAILED,
)  # in print order
SALES_ORDER_PAGE, POSTED_SHIPMENT_PAGE = 42, 130


class Level(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    system: str  # Settings | ShipStation | NAV | Ledger
    level: Level
    message: str
    fix: str = ""  # what the operator should change; empty when there is nothing to do

    @property
    def text(self) -> str:
        return f"{self.message}: {self.fix}" if self.fix else self.message


def ok(system: str, message: str) -> CheckResult:
    return CheckResult(system, Level.OK, message)


def warn(system: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(system, Level.WARN, message, fix)


def fail(system: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(system, Level.FAIL, message, fix)


@dataclass
class Report:
    results: list[CheckResult] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # values masked in the output

    def count(self, level: Level) -> int:
        return sum(1 for r in self.results if r.level is level)

    @property
    def exit_code(self) -> int:
        return 1 if self.count(Level.FAIL) else 0


def format_result(result: CheckResult) -> str:
    return f"{result.level.value:<4} {result.system}: {result.text}"


def format_summary(report: Report) -> str:
    counts = f"{report.count(Level.OK)} OK, {report.count(Level.WARN)} WARN, {report.count(Level.FAIL)} FAIL"
    if report.count(Level.FAIL):
        return f"shipnav check: {counts}; fix the FAIL lines above and run it again"
    if report.count(Level.WARN):
        return f"shipnav check: {counts}; shipnav can run, but read the WARN lines"
    return f"shipnav check: {counts}; ShipStation, NAV and the ledger are ready"


def format_report(report: Report) -> str:
    lines = [format_result(r) for r in report.results] + [format_summary(report)]
    return redact("\n".join(lines), report.secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret containing another is masked whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def safe_url(url: str | None) -> str:
    """The URL without user info, query or fragment (a URL may carry a password or a token)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
