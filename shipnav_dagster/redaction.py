"""Keep secret values out of every log line: a ``logging.Filter`` plus a log-record factory.

The clients never put a credential into a message on purpose; this is the net under them. It
knows every configured secret value (``Settings.secret_values()``), the forms they travel in
(the Basic-auth base64 of ``user:password``, URL-encoded form fields, the password inside the
ledger URL) and the bearer token the NAV client currently holds, and replaces each with ``***``.

Where it sits, and why both:

* The filter is added to the root, ``dagster``, ``httpx``, ``httpcore`` and ``uvicorn`` loggers
  *and to their handlers*. A logger's filter only sees records logged on that very logger, while
  a handler's filter also sees the records that propagate to it from child loggers.
* Dagster's ``context.log`` is a ``DagsterLogManager`` that is not registered with ``logging``
  (one per step), so no named logger's filter ever sees its records, and those records are what
  the event log stores for ever. Every logger, that one included, builds records through the
  process-wide log-record factory, so the factory redacts each record as it is created.

``install()`` is idempotent and may be called again with more values (another run's settings).
"""

import base64
import logging
import threading
import traceback
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

import sqlalchemy as sa

REDACTED = "***"
# Shorter values would redact ordinary words; Settings.secret_values() applies the same limit.
MIN_LENGTH = 4
LOGGER_NAMES = ("", "dagster", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access")


class SecretSource(Protocol):
    """What ``secret_forms`` reads from ``Settings`` (typed loosely to avoid importing it)."""

    def secret_values(self) -> list[str]: ...


class SecretRedactionFilter(logging.Filter):
    """Replaces known secret values in a record's message, arguments and exception text."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        # Objects holding a secret that changes during a run (the NAV OAuth token cache); weak,
        # so a finished run's client is not kept alive by the filter.
        self._holders: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            merged = set(self._values) | {v for v in values if v and len(v) >= MIN_LENGTH}
            # Longest first, so a value that contains another is replaced whole.
            self._values = tuple(sorted(merged, key=len, reverse=True))

    def watch(self, holder: object) -> None:
        """Also redact ``holder``'s current bearer token (its ``_token`` attribute), whatever it
        is at the time a record is made."""
        with self._lock:
            self._holders.add(holder)

    def clear(self) -> None:
        with self._lock:
            self._values = ()
            self._holders = weakref.WeakSet()

    def needles(self) -> list[str]:
        """The values to redact now: the configured ones and the tokens currently held."""
        tokens = [getattr(holder, "_token", None) for holder in list(self._holders)]
        held = [t for t in tokens if isinstance(t, str) and len(t) >= MIN_LENGTH]
        if not held:
            return list(self._values)
        return sorted({*self._values, *held}, key=len, reverse=True)

    def redact(self, text: str, needles: list[str] | None = None) -> str:
        for needle in self.needles() if needles is None else needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        return text

    def scrub(self, record: logging.LogRecord) -> None:
        """Redact ``record`` in place; a record without secrets is left exactly as it was."""
        needles = self.needles()
        if not needles:
            return
        try:
            message: str | None = record.getMessage()
        except Exception:  # arguments that do not format: the handler reports that, not us
            message = None
        if message is not None:
            if any(n in message for n in needles):
                # Formatted once here, so no argument can bring the value back later.
                record.msg, record.args = self.redact(message, needles), ()
        else:
            record.msg = self.redact(str(record.msg), needles)
            record.args = _redact_args(record.args, lambda text: self.redact(text, needles))
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if any(n in text for n in needles):
                # Formatters use exc_text when it is set instead of formatting exc_info again.
                record.exc_text = self.redact(text, needles)

    def filter(self, record: logging.LogRecord) -> bool:
        self.scrub(record)
        return True


def _redact_args(args: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(args, tuple):
        return tuple(redact(str(a)) if isinstance(a, str) else a for a in args)
    if isinstance(args, dict):
        return {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
    return args


# The one filter of the process: every install adds to it.
FILTER = SecretRedactionFilter()
_factory_lock = threading.Lock()
_factory_installed = False


def secret_forms(settings: SecretSource) -> set[str]:
    """Every form a configured secret can take on the wire or in a message."""
    values = set(settings.secret_values())
    pairs = [
        (_plain(settings, "shipstation_api_key"), _plain(settings, "shipstation_api_secret")),
        (_plain(settings, "nav_username"), _plain(settings, "nav_password")),
        (_plain(settings, "nav_client_id"), _plain(settings, "nav_client_secret")),
    ]
    for user, password in pairs:
        if user and password:
            values.add(basic_token(user, password))
    database_url = _plain(settings, "shipnav_database_url")
    if database_url:
        password = _url_password(database_url)
        if password:
            values.add(password)
    for value in list(values):
        # As a form field (the OAuth client secret is POSTed) or in a URL.
        values.update({quote_plus(value), quote(value, safe="")})
    return {v for v in values if len(v) >= MIN_LENGTH}


def basic_token(user: str, password: str) -> str:
    """The base64 part of an ``Authorization: Basic`` header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _plain(settings: object, name: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        return ""
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return text if isinstance(text, str) else ""


def _url_password(url: str) -> str:
    try:
        return sa.engine.make_url(url).password or ""
    except sa.exc.ArgumentError:
        return ""


def install(values: Iterable[str] = (), *, watch: Iterable[object] = ()) -> SecretRedactionFilter:
    """Redact ``values`` (and the tokens of ``watch``) from every log record of this process."""
    FILTER.add(values)
    for holder in watch:
        FILTER.watch(holder)
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name or None)
        _attach(logger)
        for handler in list(logger.handlers):
            _attach(handler)
    _install_record_factory()
    return FILTER


def install_for_settings(settings: SecretSource) -> SecretRedactionFilter:
    return install(secret_forms(settings))


def _attach(target: logging.Filterer) -> None:
    if FILTER not in target.filters:
        target.addFilter(FILTER)


def _install_record_factory() -> None:
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            FILTER.scrub(record)
            return record

        logging.setLogRecordFactory(redacting_factory)
        _factory_installed = True
