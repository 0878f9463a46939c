"""Time in the two generations: V1 stores naive Pacific wall-clock, V2 answers UTC with ``Z``.

V2 timestamps are ISO-8601 in UTC with trailing zeros of the fraction dropped
(``2026-08-12T19:46:28.8Z``); date-only values (``ship_date``) come back as the Pacific midnight
of that day expressed in UTC (``2026-09-03T07:00:00Z`` during PDT), as captured production
responses show. The account's time zone is Pacific.
"""

import functools
from datetime import UTC, date, datetime

from shipnav_dagster.sandbox.state import PACIFIC


@functools.lru_cache(maxsize=262_144)
def pacific_instant(value: str | None) -> datetime | None:
    """A stored naive Pacific timestamp (7 fractional digits) as an aware UTC datetime."""
    if not value:
        return None
    naive = datetime.fromisoformat(value)
    return naive.replace(tzinfo=PACIFIC).astimezone(UTC)


def pacific_midnight(value: str | None) -> datetime | None:
    """The Pacific midnight (as UTC) of a stored date or midnight-datetime (``2024-09-17…``)."""
    if not value:
        return None
    day = date.fromisoformat(value[:10])
    return datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)


def format_utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{value.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def utc_text(value: str | None) -> str | None:
    return format_utc(pacific_instant(value))


def midnight_text(value: str | None) -> str | None:
    return format_utc(pacific_midnight(value))
