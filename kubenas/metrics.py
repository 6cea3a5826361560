"""The metric line format, written by trainers and read by collectors.

Katib's StdOut collector reads `name=value` pairs with the default regex below, after an
optional leading RFC 3339 timestamp. An experiment may replace the regex with its own
`metricsFormat` filters (each with two groups: name and value).
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex

from kubenas import rfc3339

# The standard library's regex parser, used only to read the structure of a filter (see filter_problem).
_sre: Any = importlib.import_module("re._parser")

__all__ = [
    "DEFAULT_METRICS_FORMAT",
    "FILTER_TIMEOUT_S",
    "MAX_LINE_CHARS",
    "UNAVAILABLE",
    "FilterTimeoutError",
    "MetricFormatError",
    "MetricPoint",
    "compile_filters",
    "filter_problem",
    "format_metrics",
    "metrics_path_problem",
    "now_rfc3339",
    "parse_line",
    "parse_lines",
]

log = logging.getLogger(__name__)

# Longest line a collector parses for metrics; a longer one keeps its end, where the metrics
# of a line redrawn with \r are. Bounds the memory and the regex work spent on one line.
MAX_LINE_CHARS = 64 * 1024
# Longest time one metricsFormat filter may spend on one line. A filter that backtracks
# catastrophically (`((?:a|aa)+)` on a long run of a's) would otherwise run for hours; an
# honest filter needs microseconds, so this never cuts one short even on a loaded machine.
FILTER_TIMEOUT_S = 1.0

DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
_DEFAULT = re.compile(DEFAULT_METRICS_FORMAT)
# The same pattern starting only where a run of name characters starts. Katib's regex, run
# with finditer, retries every position of a long word (a hash, base64) that no `=` follows:
# quadratic, 2 s for a 16,000-character word. A match can only start at such a boundary or
# right where the previous match ended (`a=1b=2`), so `_default_matches` tries exactly those.
_DEFAULT_AT_BOUNDARY = re.compile(r"(?<![\w|-])" + DEFAULT_METRICS_FORMAT)


class MetricFormatError(ValueError):
    """A metricsFormat filter is not a usable regex."""


class FilterTimeoutError(MetricFormatError):
    """A metricsFormat filter ran longer than FILTER_TIMEOUT_S on one line."""


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


_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT}


def _is_repeat(op: Any, av: Any) -> bool:
    return op in _REPEATS and av[1] > 1


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns of one parsed item (atomic and possessive parts never backtrack)."""
    if op in _REPEATS:
        return [av[2]]
    if op is _sre.SUBPATTERN:
        return [av[3]]
    if op is _sre.BRANCH:
        return list(av[1])
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        return [av[1]]
    if op is _sre.GROUPREF_EXISTS:
        return [part for part in av[1:] if part is not None]
    return []


def _ambiguous(items: Any) -> bool:
    """Whether a repeated body can match one text in many ways: it repeats or branches itself."""
    for op, av in items:
        if _is_repeat(op, av) or op is _sre.BRANCH or any(_ambiguous(child) for child in _children(op, av)):
            return True
    return False


def _nested_repeat(items: Any) -> bool:
    for op, av in items:
        if _is_repeat(op, av) and _ambiguous(av[2]):
            return True
        if any(_nested_repeat(child) for child in _children(op, av)):
            return True
    return False


def filter_problem(text: str) -> str | None:
    """Why `text` cannot be a metricsFormat filter, or None if it can.

    Besides compiling with two groups (name, value), a filter must not repeat a part that
    itself repeats or has alternatives (`(a+)+`, `(?:a|aa)*`): such a pattern backtracks
    exponentially on a line that almost matches. Matching is time-bounded anyway
    (FILTER_TIMEOUT_S); this check refuses the pattern before a trial runs."""
    try:
        parsed = _sre.parse(text)
        pattern = regex.compile(text)
    except (re.error, regex.error) as exc:
        return f"not a valid regex: {exc}"
    if pattern.groups < 2:
        return f"must have two groups (metric name, value); this one has {pattern.groups}"
    if _nested_repeat(parsed):
        return ("repeats a group that itself repeats or has alternatives (e.g. (a+)+ or (?:a|aa)+), "
                "which backtracks catastrophically; let the repeated part match one way only "
                "(e.g. [a]+ instead of (?:a|aa)+)")
    return None


def compile_filters(filters: Sequence[str] | None) -> list[Any]:
    """Katib's default pattern, or the experiment's filters compiled (MetricFormatError names
    the first bad one). Custom filters are `regex` patterns: their matching is time-bounded."""
    if not filters:
        return [_DEFAULT]
    compiled = []
    for i, text in enumerate(filters):
        problem = filter_problem(text)
        if problem is not None:
            raise MetricFormatError(f"metricsFormat[{i}]: {text[:200]!r}: {problem}")
        compiled.append(regex.compile(text))
    return compiled


def metrics_path_problem(path: str) -> str | None:
    """Why `path` cannot be a File collector's metrics path, or None. A `..` component
    would let the path (or a parameter value substituted into it) leave its directory."""
    if "\0" in path:
        return "must not contain a NUL character"
    if ".." in path.split("/"):
        return "must not contain a '..' component"
    return None


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


def _bounded_matches(pattern: Any, body: str) -> list[Any]:
    if not isinstance(pattern, regex.Pattern):
        return list(pattern.finditer(body))  # a plain `re` pattern given by a caller
    try:
        return list(pattern.finditer(body, timeout=FILTER_TIMEOUT_S))
    except TimeoutError:
        raise FilterTimeoutError(
            f"metricsFormat filter {pattern.pattern[:200]!r} ran over {FILTER_TIMEOUT_S:g} s on one line "
            f"({len(body)} characters, starting {body[:60]!r}); it backtracks catastrophically") from None


def parse_line(
    line: str,
    names: Iterable[str] | None = None,
    patterns: Sequence[Any] | None = None,
    default_timestamp: str | None = None,
    keep_text: bool = False,
) -> list[MetricPoint]:
    """Every wanted metric in `line`. Values that are not finite numbers are skipped, except
    that with `keep_text` a captured value that is not a number at all (and not empty or
    Katib's "unavailable") is kept as its text: Katib stores whatever a custom metricsFormat
    filter captures, which is how its DARTS examples report `Best-Genotype=Genotype(...)`.
    A filter that runs over FILTER_TIMEOUT_S on the line raises FilterTimeoutError."""
    wanted = set(names) if names is not None else None
    stamp, body = _split_timestamp(line.rstrip("\n"))
    stamp = stamp or default_timestamp or now_rfc3339()
    points = []
    for pattern in patterns or [_DEFAULT]:
        if pattern is _DEFAULT and "=" not in body:
            continue  # most output lines: no `=`, no match; a substring test is far cheaper than the regex
        for match in _default_matches(body) if pattern is _DEFAULT else _bounded_matches(pattern, body):
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
    patterns: Sequence[Any] | None = None,
    keep_text: bool = False,
) -> list[MetricPoint]:
    """`parse_line` over many lines. A filter that times out on a line is dropped for the
    remaining lines (logged): each bad filter costs at most FILTER_TIMEOUT_S once."""
    wanted = list(names) if names is not None else None
    active = list(patterns or [_DEFAULT])
    out: list[MetricPoint] = []
    for line in lines:
        for pattern in list(active):
            try:
                out.extend(parse_line(line, wanted, [pattern], keep_text=keep_text))
            except FilterTimeoutError as exc:
                log.warning("%s; the filter is skipped from here on", exc)
                active.remove(pattern)
    return out
