"""Time in ShipStation API V2: UTC instants in, UTC instants out, dates read in the account's zone.

V2 timestamps are ISO-8601 with ``Z`` or an offset (``"2026-08-12T19:46:28.8Z"``), and its
date-time filters take the same form (``created_at_start=2019-03-12T19:24:13.657Z``, the spec's
example). A ``date`` such as a label's ``ship_date`` comes back as a midnight instant: UTC
midnight (``"2026-09-03T00:00:00Z"``) in the spec's examples, the account's (Pacific) midnight
expressed in UTC (``"2026-09-03T07:00:00Z"``) in captured production responses. Both name the
same calendar day, which :func:`calendar_date` returns.
"""

from datetime import UTC, date, datetime, timedelta

from shipnav_dagster.shipstation.v1.timeutil import PACIFIC, require_aware

FILTER_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def parse_instant(text: str) -> datetime:
    """An ISO-8601 date-time as an aware UTC datetime; one without an offset is taken as UTC.

    Fractions of any length are accepted (Python keeps microseconds)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a timestamp string, got {type(text).__name__}")
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def calendar_date(text: str) -> date:
    """The calendar day a V2 ``date`` value names, in the account's time zone (Pacific).

    A bare date is that date. A midnight in its own offset (``…T00:00:00Z``) is the date as
    written: it is how a date is sent, not a moment on the previous Pacific evening. Any other
    instant (``…T07:00:00Z``, Pacific midnight in UTC) is read on the Pacific calendar.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a date string, got {type(text).__name__}")
    stripped = text.strip()
    if len(stripped) == 10:
        return date.fromisoformat(stripped)
    value = datetime.fromisoformat(stripped)
    if value.tzinfo is None or (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
        return value.date()
    return value.astimezone(PACIFIC).date()


def filter_window(start: datetime, end: datetime) -> tuple[str, str]:
    """Inclusive filter bounds covering every instant of ``[start, end]``: the start floored and
    the end ceiled to whole seconds (a superset; records are deduplicated by id)."""
    require_aware(start, "start")
    require_aware(end, "end")
    if end < start:
        raise ValueError(f"window end {end.isoformat()} is before its start {start.isoformat()}")
    lower = start.astimezone(UTC).replace(microsecond=0)
    upper = end.astimezone(UTC)
    if upper.microsecond:
        upper = upper.replace(microsecond=0) + timedelta(seconds=1)
    return lower.strftime(FILTER_FORMAT), upper.strftime(FILTER_FORMAT)
