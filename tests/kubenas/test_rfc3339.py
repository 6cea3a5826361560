"""kubenas.rfc3339: one reading of a time on every Python the package supports."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenas import rfc3339

UTC = timezone.utc


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01 12:00:00+00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T14:00:00.5+02:00", datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
    ("2024-05-01T12:00:00.1234567Z", datetime(2024, 5, 1, 12, 0, 0, 123_456, tzinfo=UTC)),
    ("2024-05-01T12:00:00.123456789-01:30", datetime(2024, 5, 1, 13, 30, 0, 123_456, tzinfo=UTC)),
    ("  2024-05-01T12:00:00Z\n", datetime(2024, 5, 1, 12, tzinfo=UTC)),
])
def test_parses_every_rfc3339_form_to_utc(text: str, expected: datetime) -> None:
    assert rfc3339.parse(text) == expected
    assert rfc3339.parse(text).tzinfo == UTC


@pytest.mark.parametrize(("text", "fragment"), [
    ("2024-05-01", "expected an RFC 3339 time"),
    ("2024-05-01T12:00:00", "expected an RFC 3339 time"),
    ("2024-13-01T12:00:00Z", "month must be in 1..12"),
    ("2024-02-30T12:00:00Z", "day is out of range"),
    ("2024-05-01T24:00:00Z", "hour must be in 0..23"),
    ("2024-05-01T12:00:00+24:00", "UTC offset +24:00 is out of range"),
    ("2024-05-01T12:00:00.Z", "expected an RFC 3339 time"),
    ("0001-01-01T00:00:00+01:00", "out of range"),
    ("9999-12-31T23:59:59-01:00", "out of range"),
    ("x" * 10_000, "expected an RFC 3339 time"),
])
def test_refuses_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(rfc3339.TimeFormatError) as info:
        rfc3339.parse(text)
    assert fragment in info.value.reason
    assert len(str(info.value)) < 300  # the echoed text is shortened


def test_unreadable_or_missing_times_sort_first() -> None:
    assert rfc3339.parse_or_earliest(None) == rfc3339.EARLIEST
    assert rfc3339.parse_or_earliest("") == rfc3339.EARLIEST
    assert rfc3339.parse_or_earliest("yesterday") == rfc3339.EARLIEST
    assert rfc3339.parse_or_earliest("2024-05-01T12:00:00Z") > rfc3339.EARLIEST


def test_now_is_utc_with_microseconds_and_reads_back() -> None:
    text = rfc3339.now()
    assert text.endswith("Z") and len(text) == len("2024-05-01T12:00:00.000000Z")
    assert abs(rfc3339.parse(text) - datetime.now(UTC)) < timedelta(seconds=5)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9000, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])))
def test_format_then_parse_is_the_same_instant(stamp: datetime) -> None:
    assert rfc3339.parse(rfc3339.format_time(stamp)) == stamp
    assert rfc3339.to_micros(stamp) == (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)))
def test_agrees_with_the_standard_library_where_it_reads_the_form(stamp: datetime) -> None:
    text = stamp.isoformat()
    assert rfc3339.parse(text) == datetime.fromisoformat(text)
