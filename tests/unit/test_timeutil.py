"""Pacific wall-clock <-> UTC: 7-digit fractions, both DST changes, midnight, naive inputs."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shipnav_dagster.shipstation.v1.timeutil import (
    NaiveDatetimeError,
    pacific_date,
    pacific_wallclock_window,
    parse_pacific,
    parse_pacific_date,
    to_pacific_wallclock,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # PDT (UTC-7) with ShipStation's 7 fractional digits; the 7th (100 ns) is truncated.
        ("2024-09-17T10:51:14.5030000", utc(2024, 9, 17, 17, 51, 14, 503000)),
        ("2024-09-17T10:51:14.1234567", utc(2024, 9, 17, 17, 51, 14, 123456)),
        # Item timestamps carry fewer digits.
        ("2015-08-17T09:24:14.78", utc(2015, 8, 17, 16, 24, 14, 780000)),
        # PST (UTC-8), no fraction, space separator (the filter format).
        ("2024-01-05 23:59:59", utc(2024, 1, 6, 7, 59, 59)),
        ("2024-01-05T23:59", utc(2024, 1, 6, 7, 59)),
        # Date only: Pacific midnight.
        ("2024-07-01", utc(2024, 7, 1, 7, 0)),
        # An explicit offset (V2 style) is honoured, not reinterpreted as Pacific.
        ("2026-09-03T07:00:00Z", utc(2026, 9, 3, 7, 0)),
        ("2020-01-01T10:00:00-00:00", utc(2020, 1, 1, 10, 0)),
    ],
)
def test_parse_pacific_formats(text: str, expected: datetime) -> None:
    parsed = parse_pacific(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_spring_forward_gap_shifts_forward() -> None:
    # 2024-03-10 02:00-03:00 does not exist in Pacific time; 02:30 is read as 03:30 PDT.
    assert parse_pacific("2024-03-10T02:30:00.0000000") == utc(2024, 3, 10, 10, 30)
    # Either side of the gap is exact.
    assert parse_pacific("2024-03-10T01:59:59.0000000") == utc(2024, 3, 10, 9, 59, 59)
    assert parse_pacific("2024-03-10T03:00:00.0000000") == utc(2024, 3, 10, 10, 0)


def test_fall_back_ambiguous_hour_takes_earlier_instant() -> None:
    # 2024-11-03 01:30 happens twice (PDT then PST); the earlier (PDT, 08:30 UTC) is chosen.
    assert parse_pacific("2024-11-03T01:30:00.0000000") == utc(2024, 11, 3, 8, 30)
    assert parse_pacific("2024-11-03T00:59:59.0000000") == utc(2024, 11, 3, 7, 59, 59)
    assert parse_pacific("2024-11-03T02:00:00.0000000") == utc(2024, 11, 3, 10, 0)


def test_to_pacific_wallclock_across_dst_and_midnight() -> None:
    assert to_pacific_wallclock(utc(2024, 3, 10, 9, 59, 59)) == "2024-03-10 01:59:59"
    assert to_pacific_wallclock(utc(2024, 3, 10, 10, 0, 0)) == "2024-03-10 03:00:00"
    assert to_pacific_wallclock(utc(2024, 11, 3, 8, 30)) == "2024-11-03 01:30:00"
    assert to_pacific_wallclock(utc(2024, 11, 3, 9, 30)) == "2024-11-03 01:30:00"
    # UTC 03:00 on July 1st is still June 30th in Pacific time.
    assert to_pacific_wallclock(utc(2024, 7, 1, 3, 0, 0, 999999)) == "2024-06-30 20:00:00"
    # Any aware zone is accepted, not just UTC.
    assert to_pacific_wallclock(datetime(2024, 7, 1, 5, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-06-30 20:00:00"
    )


def test_pacific_date_at_midnight() -> None:
    assert pacific_date(utc(2024, 7, 1, 6, 59, 59)) == date(2024, 6, 30)
    assert pacific_date(utc(2024, 7, 1, 7, 0, 0)) == date(2024, 7, 1)
    assert pacific_date(utc(2024, 1, 1, 7, 59)) == date(2023, 12, 31)
    assert pacific_date(date(2024, 1, 1)) == date(2024, 1, 1)


def test_parse_pacific_date() -> None:
    assert parse_pacific_date("2024-09-17") == date(2024, 9, 17)
    assert parse_pacific_date("2016-06-07T00:00:00.0000000") == date(2016, 6, 7)
    # An instant with an offset means its Pacific calendar date (V2's midnight-in-UTC dates).
    assert parse_pacific_date("2026-09-03T07:00:00Z") == date(2026, 9, 3)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(NaiveDatetimeError, match="naive"):
        to_pacific_wallclock(datetime(2024, 1, 1, 12, 0))
    with pytest.raises(NaiveDatetimeError):
        pacific_date(datetime(2024, 1, 1, 12, 0))
    with pytest.raises(NaiveDatetimeError):
        pacific_wallclock_window(datetime(2024, 1, 1), utc(2024, 1, 2))


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "2024-09-17T25:00:00", "17/09/2024"])
def test_parse_pacific_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_pacific(text)


def test_window_without_transition_is_exact_and_rounds_outwards() -> None:
    start = utc(2024, 9, 17, 17, 0, 0, 500000)
    end = utc(2024, 9, 17, 18, 0, 0, 1)
    assert pacific_wallclock_window(start, end) == ("2024-09-17 10:00:00", "2024-09-17 11:00:01")


def test_window_across_spring_forward_is_exact() -> None:
    lower, upper = pacific_wallclock_window(utc(2024, 3, 10, 9, 30), utc(2024, 3, 10, 10, 30))
    assert (lower, upper) == ("2024-03-10 01:30:00", "2024-03-10 03:30:00")


def test_window_across_fall_back_covers_every_instant() -> None:
    # 08:50 UTC is 01:50 PDT, 09:10 UTC is 01:10 PST: naive conversion would give an empty,
    # reversed window. Every wall-clock value of the window must lie inside the bounds.
    start, end = utc(2024, 11, 3, 8, 50), utc(2024, 11, 3, 9, 10)
    lower, upper = pacific_wallclock_window(start, end)
    assert lower <= upper
    moment = start
    while moment <= end:
        assert lower <= to_pacific_wallclock(moment) <= upper
        moment += timedelta(minutes=1)


def test_window_rejects_reversed_bounds() -> None:
    with pytest.raises(ValueError, match="before its start"):
        pacific_wallclock_window(utc(2024, 1, 2), utc(2024, 1, 1))
