"""RFC 3339 times: the one parser and formatter every part of kubenas uses.

Written out rather than left to `datetime.fromisoformat`, whose accepted forms differ
between Python versions (3.10 refuses a trailing `Z` and fractions other than 3 or 6
digits), so the same text means the same instant on every supported Python.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["EARLIEST", "HELP", "TimeFormatError", "format_time", "is_rfc3339", "now", "parse",
           "parse_or_earliest", "to_micros"]

HELP = "an RFC 3339 time such as 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.5+02:00"

_PATTERN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: What an unreadable or missing time sorts as: before every real one.
EARLIEST = datetime.min.replace(tzinfo=UTC)


class TimeFormatError(ValueError):
    """`text` is not an RFC 3339 time; the message says why and what is expected."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"{text[:64]!r}: {reason}")


def is_rfc3339(text: str) -> bool:
    """Whether `text` has the shape of an RFC 3339 time (ranges are checked by `parse`)."""
    return _PATTERN.fullmatch(text) is not None


def parse(text: str) -> datetime:
    """The aware UTC datetime of an RFC 3339 time; fractions below a microsecond are truncated."""
    match = _PATTERN.fullmatch(text.strip())
    if not match:
        raise TimeFormatError(text, f"expected {HELP}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise TimeFormatError(text, f"the UTC offset {zone} is out of range (at most ±23:59); expected {HELP}")
        offset = timedelta(hours=hours, minutes=minutes) * (1 if zone[0] == "+" else -1)
    try:
        stamp = datetime(year, month, day, hour, minute, second, int(fraction.ljust(6, "0")[:6]),
                         tzinfo=timezone(offset))
        return stamp.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise TimeFormatError(text, f"{exc}; expected {HELP}") from None


def parse_or_earliest(text: str | None) -> datetime:
    """`parse(text)`, or `EARLIEST` for a missing or unreadable time (ordering, never failing)."""
    if not text:
        return EARLIEST
    try:
        return parse(text)
    except TimeFormatError:
        return EARLIEST


def to_micros(stamp: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = stamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_time(stamp: datetime) -> str:
    """`stamp` in UTC as RFC 3339 with microseconds and a `Z`."""
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> str:
    """The current time, formatted by `format_time`."""
    return format_time(datetime.now(UTC))
