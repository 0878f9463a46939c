"""What every ``shipnav`` command shares: settings errors as one message, exit codes, env output."""

import contextlib
import functools
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import ParamSpec

import click

from shipnav_dagster.ledger.locate import LedgerUnavailable, NoLedger, display_url, open_existing
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.settings import Settings, SettingsError, check_settings

# Exit codes: 0 done, 1 the work failed (a FAIL line, a failed run), 2 the command cannot run as
# configured or asked (a bad argument or setting, an unknown record), 75 not now: another run is
# in the way, try again later (EX_TEMPFAIL of sysexits.h, which schedulers treat as retryable).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 75

P = ParamSpec("P")


class CommandError(click.ClickException):
    """A refusal with one message for the operator, exit code 2: the command cannot run as
    configured or asked (a bad setting, an unknown record)."""

    exit_code = EXIT_USAGE

    def show(self, file: object = None) -> None:
        click.echo(f"shipnav: {self.format_message()}", err=True)


def settings_errors_exit(func: Callable[P, int]) -> Callable[P, int]:
    """A bad or missing setting ends the command with its one message and exit code 2, never a
    traceback: the message already names every variable at fault and what it should hold."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            raise CommandError(str(exc)) from None

    return wrapper


def settings(*, systems: bool = False) -> Settings:
    """The settings (environment, ``.env`` and stored secrets), or :class:`CommandError` with the
    one message that lists every invalid variable and everything ShipStation and NAV still lack.
    With ``systems`` the command talks to ShipStation or NAV, so missing credentials stop it too."""
    try:
        return check_settings(systems=systems)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


def open_ledger_for_reading(s: Settings) -> Ledger:
    """The ledger the settings point at, if it exists; reading commands never create one. Says on
    standard error which ledger it opened; no ledger, or an unreachable one, is a CommandError."""
    try:
        ledger = open_existing(s.ledger_url)
    except NoLedger as exc:
        raise CommandError(f"{exc}. {_where_the_ledger_is(s)}") from None
    except LedgerUnavailable as exc:
        raise CommandError(
            f"{exc} (check SHIPNAV_DATABASE_URL and that the database accepts connections)"
        ) from None
    err(f"shipnav: reading the ledger at {display_url(s.ledger_url)}")
    return ledger


def _where_the_ledger_is(s: Settings) -> str:
    if s.shipnav_database_url is not None and s.shipnav_database_url.get_secret_value():
        return "SHIPNAV_DATABASE_URL points there; the first sync creates the ledger."
    if os.environ.get("DAGSTER_HOME"):
        return (
            "Without SHIPNAV_DATABASE_URL the ledger is the file shipnav-ledger.db in DAGSTER_HOME; "
            "is DAGSTER_HOME the instance the syncs ran on?"
        )
    return (
        "DAGSTER_HOME is not set, so shipnav looked in ./.shipnav; set DAGSTER_HOME to the Dagster "
        "instance folder the syncs ran on (the demo's is .shipnav/demo, `shipnav dev`'s .shipnav/dev) "
        "or SHIPNAV_DATABASE_URL to the ledger."
    )


def format_env(env: dict[str, str]) -> str:
    """``NAME=value`` lines that a POSIX shell can source and a ``.env`` file can hold."""
    return "\n".join(f"{name}={env_quote(value)}" for name, value in env.items())


def env_quote(value: str) -> str:
    """Quote a value only where needed, so that ``sh`` reads it back exactly.

    ``shlex.quote`` handles everything without a single quote. A value with one (the NAV OData
    root ends in ``Company('CRONUS…')``) goes in double quotes instead of shlex's ``'"'"'``
    splicing, so the lines also work as a ``.env`` file (python-dotenv reads double-quoted values
    back exactly unless they contain ``$`` or a backtick, which sandbox values never do).
    """
    if "'" not in value:
        return shlex.quote(value)
    escaped = re.sub(r'([\\"$`])', r"\\\1", value)
    return f'"{escaped}"'


def stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so serving loops end cleanly with exit code 0."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handle)
    return stop


def shipnav_command() -> str:
    """How to run this shipnav from the caller's folder, whether or not its virtualenv is active."""
    script = Path(sys.executable).parent / "shipnav"
    if not script.exists():
        return "shipnav"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
