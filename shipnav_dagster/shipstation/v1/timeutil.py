"""Pacific wall-clock <-> UTC for ShipStation V1.

ShipStation V1 returns timestamps as naive America/Los_Angeles wall-clock time with 7 fractional
digits (``2024-09-17T10:51:14.5030000``) and expects filter datetimes as Pacific wall-clock
``yyyy-mm-dd hh:mm:ss``. Everything inside shipnav is aware UTC; this
module is the only place that crosses the boundary.
"""

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
WALLCLOCK_FORMAT = "%Y-%m-%d %H:%M:%S"

_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?)?$"
)
# Pacific offsets only change at transitions months apart, so sampling a window every few hours
# cannot miss one.
_OFFSET_SAMPLE_STEP = timedelta(hours=6)


class NaiveDatetimeError(ValueError):
    """A naive datetime was given where an aware (UTC) instant is required."""


def require_aware(value: datetime, what: str = "datetime") -> datetime:
    """Refuse naive datetimes: guessing their zone is exactly the bug this module exists to stop."""
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{what} is naive ({value.isoformat()}); pass an aware UTC datetime, "
            "e.g. datetime.now(timezone.utc)"
        )
    return value


def to_pacific(value: datetime) -> datetime:
    """The aware Pacific datetime of an aware instant."""
    return require_aware(value).astimezone(PACIFIC)


def to_pacific_wallclock(value: datetime) -> str:
    """An aware instant as ShipStation's filter format, Pacific ``yyyy-mm-dd hh:mm:ss``.

    Fractional seconds are truncated; use :func:`pacific_wallclock_window` for query windows,
    which rounds outwards so that no instant of the window is lost.
    """
    return to_pacific(value).strftime(WALLCLOCK_FORMAT)


def pacific_date(value: datetime | date) -> date:
    """The Pacific calendar date of an aware instant (a ``date`` is returned unchanged)."""
    if isinstance(value, datetime):
        return to_pacific(value).date()
    if isinstance(value, date):
        return value
    raise TypeError(f"expected a datetime or date, got {type(value).__name__}")


def parse_pacific(text: str) -> datetime:
    """A ShipStation timestamp (naive Pacific) as an aware UTC datetime.

    Accepts 7 fractional digits (the 7th, 100 ns, is truncated: Python keeps microseconds), fewer
    digits, none, a ``T`` or space separator, and date-only values (Pacific midnight). A value
    that does carry an offset or ``Z`` (V2 style) is honoured as such.

    DST rules, because naive Pacific times are not unique:

    * Fall-back hour (e.g. 2024-11-03 01:30 happens twice): the *earlier* instant (PDT, fold=0).
      Python's default and deterministic; for polling it is the conservative choice: a record
      placed up to an hour early is still inside any window that overlaps by an hour or more,
      whereas placing it late could push it past a cursor that already moved on.
    * Spring-forward gap (e.g. 2024-03-10 02:30 never happens): shifted forward by the gap
      (02:30 is read with the pre-transition offset, i.e. 03:30 PDT = 10:30 UTC), as
      PEP 495 specifies for fold=0 in a gap.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a timestamp string, got {type(text).__name__}")
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not a ShipStation timestamp: {text!r}")
    day = date.fromisoformat(match["date"])
    micro = int((match["frac"] or "0")[:6].ljust(6, "0"))
    naive = datetime(
        day.year,
        day.month,
        day.day,
        int(match["h"] or 0),
        int(match["m"] or 0),
        int(match["s"] or 0),
        micro,
    )
    if match["tz"]:
        return naive.replace(tzinfo=_fixed_offset(match["tz"])).astimezone(UTC)
    return naive.replace(tzinfo=PACIFIC, fold=0).astimezone(UTC)


def parse_pacific_date(text: str) -> date:
    """The calendar date of a date-only value or of a (midnight) Pacific datetime string."""
    if not isinstance(text, str):
        raise TypeError(f"expected a date string, got {type(text).__name__}")
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not a ShipStation date: {text!r}")
    if match["tz"]:
        # An explicit offset (V2 style "2026-09-03T07:00:00Z") names an instant: its Pacific date.
        return pacific_date(parse_pacific(text))
    return date.fromisoformat(match["date"])


def pacific_wallclock_window(start: datetime, end: datetime) -> tuple[str, str]:
    """Filter bounds in Pacific wall-clock covering every instant of ``[start, end]``.

    ShipStation compares wall-clock values, so a window that contains the fall-back transition
    maps to wall-clock bounds that can be out of order (01:50 PDT .. 01:10 PST). The bounds are
    therefore computed with the smallest and largest UTC offset seen in the window: exact when no
    transition is inside, one hour wider on each side around fall-back (a superset; callers
    dedupe on ids). The start is floored and the end ceiled to whole seconds because the filter
    format has no fractions.
    """
    require_aware(start, "start")
    require_aware(end, "end")
    if end < start:
        raise ValueError(f"window end {end.isoformat()} is before its start {start.isoformat()}")
    offsets = _pacific_offsets(start, end)
    lower = start.astimezone(UTC).replace(tzinfo=None) + min(offsets)
    upper = end.astimezone(UTC).replace(tzinfo=None) + max(offsets)
    return _floor_second(lower).strftime(WALLCLOCK_FORMAT), _ceil_second(upper).strftime(WALLCLOCK_FORMAT)


def _pacific_offsets(start: datetime, end: datetime) -> set[timedelta]:
    offsets: set[timedelta] = set()
    moment = start
    while moment < end:
        offsets.add(_offset(moment))
        moment += _OFFSET_SAMPLE_STEP
    offsets.add(_offset(end))
    return offsets


def _offset(moment: datetime) -> timedelta:
    offset = moment.astimezone(PACIFIC).utcoffset()
    assert offset is not None  # zoneinfo always knows the offset of an aware instant
    return offset


def _floor_second(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def _ceil_second(value: datetime) -> datetime:
    return value if value.microsecond == 0 else value.replace(microsecond=0) + timedelta(seconds=1)


def _fixed_offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return timezone(sign * timedelta(minutes=minutes))
