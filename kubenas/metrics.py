"""The metric line format, written by trainers and read by collectors.

Katib's StdOut collector reads `name=value` pairs with the default regex below, after an
optional leading RFC 3339 timestamp. An experiment may replace the regex with its own
`metricsFormat` filters (each with two groups: name and value).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from kubenas import rfc3339

__all__ = [
    "DEFAULT_METRICS_FORMAT",
    "UNAVAILABLE",
    "MetricFormatError",
    "MetricPoint",
    "compile_filters",
    "format_metrics",
    "now_rfc3339",
    "parse_line",
    "parse_lines",
]

DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
_DEFAULT = re.compile(DEFAULT_METRICS_FORMAT)
# The same pattern starting only where a run of name characters starts. Katib's regex, run
# with finditer, retries every position of a long word (a hash, base64) that no `=` follows:
# quadratic, 2 s for a 16,000-character word. A match can only start at such a boundary or
# right where the previous match ended (`a=1b=2`), so `_default_matches` tries exactly those.
_DEFAULT_AT_BOUNDARY = re.compile(r"(?<![\w|-])" + DEFAULT_METRICS_FORMAT)


class MetricFormatError(ValueError):
    """A metricsFormat filter is not a usable regex."""


#: What Katib's collector reports for a metric it did not find; never kept as a text value.
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class MetricPoint:
    """One reported value: a finite number, or (only where text is asked for, see
    `parse_line`'s `keep_text`) the captured text, e.g. a DARTS genotype."""

    name: str
    value: float | str
    timestamp: str

    @property
    def is_text(self) -> bool:
        return isinstance(self.value, str)

    def stored_value(self) -> str:
        """The value as the store and the wire carry it: full-precision number or the text."""
        return self.value if isinstance(self.value, str) else repr(self.value)


#: The time stamp writers put before their metric lines (kubenas.rfc3339 is its one definition).
now_rfc3339 = rfc3339.now


def format_metrics(metrics: Mapping[str, float], timestamp: str | None = None) -> str:
    """One line `[timestamp ]name=value name=value`; values in full precision."""
    pairs = " ".join(f"{name}={float(value)!r}" for name, value in metrics.items())
    return f"{timestamp} {pairs}" if timestamp else pairs


def compile_filters(filters: Sequence[str] | None) -> list[re.Pattern[str]]:
    if not filters:
        return [_DEFAULT]
    compiled = []
    for i, text in enumerate(filters):
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise MetricFormatError(f"metricsFormat[{i}]: {text!r} is not a valid regex: {exc}") from None
        if pattern.groups < 2:
            raise MetricFormatError(f"metricsFormat[{i}]: {text!r} must have two groups (name, value)")
        compiled.append(pattern)
    return compiled


def _split_timestamp(line: str) -> tuple[str | None, str]:
    head, _, rest = line.partition(" ")
    if rest and rfc3339.is_rfc3339(head):
        return head, rest
    return None, line


def _default_matches(body: str) -> Iterator[re.Match[str]]:
    """What `_DEFAULT.finditer(body)` yields, in linear time (see _DEFAULT_AT_BOUNDARY)."""
    pos = 0
    while True:
        match = (_DEFAULT.match(body, pos) if pos else None) or _DEFAULT_AT_BOUNDARY.search(body, pos)
        if match is None:
            return
        yield match
        pos = match.end()


def parse_line(
    line: str,
    names: Iterable[str] | None = None,
    patterns: Sequence[re.Pattern[str]] | None = None,
    default_timestamp: str | None = None,
    keep_text: bool = False,
) -> list[MetricPoint]:
    """Every wanted metric in `line`. Values that are not finite numbers are skipped, except
    that with `keep_text` a captured value that is not a number at all (and not empty or
    Katib's "unavailable") is kept as its text: Katib stores whatever a custom metricsFormat
    filter captures, which is how its DARTS examples report `Best-Genotype=Genotype(...)`."""
    wanted = set(names) if names is not None else None
    stamp, body = _split_timestamp(line.rstrip("\n"))
    stamp = stamp or default_timestamp or now_rfc3339()
    points = []
    for pattern in patterns or [_DEFAULT]:
        for match in _default_matches(body) if pattern is _DEFAULT else pattern.finditer(body):
            name, raw = match.group(1).strip(), match.group(2).strip()
            if wanted is not None and name not in wanted:
                continue
            try:
                value = float(raw)
            except ValueError:
                if keep_text and raw and raw != UNAVAILABLE:
                    points.append(MetricPoint(name, raw, stamp))
                continue
            if math.isfinite(value):
                points.append(MetricPoint(name, value, stamp))
    return points


def parse_lines(
    lines: Iterable[str],
    names: Iterable[str] | None = None,
    patterns: Sequence[re.Pattern[str]] | None = None,
    keep_text: bool = False,
) -> list[MetricPoint]:
    wanted = list(names) if names is not None else None
    out: list[MetricPoint] = []
    for line in lines:
        out.extend(parse_line(line, wanted, patterns, keep_text=keep_text))
    return out
