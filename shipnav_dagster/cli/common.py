"""What every ``shipnav`` command shares: settings errors as one message, exit codes, env output."""

import functools
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import ParamSpec

import click

from shipnav_dagster.settings import Settings, SettingsError, load_settings

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


def settings() -> Settings:
    """The settings (environment, ``.env`` and stored secrets), or :class:`CommandError`."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


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


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
