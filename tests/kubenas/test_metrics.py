"""The metric line format (kubenas.metrics): what trainers print is what collectors read."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenas.metrics import (
    DEFAULT_METRICS_FORMAT,
    MetricFormatError,
    compile_filters,
    format_metrics,
    now_rfc3339,
    parse_line,
    parse_lines,
)

STAMP = "2026-01-02T03:04:05Z"


def values(line: str, **kwargs: object) -> list[tuple[str, float]]:
    return [(p.name, p.value) for p in parse_line(line, default_timestamp="t0", **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("loss=0.3", [("loss", 0.3)]),
        ("accuracy=.98", [("accuracy", 0.98)]),
        ("Score=-7.53e-05", [("Score", -7.53e-05)]),
        ("Score=1E0", [("Score", 1.0)]),
        ("Validation-accuracy=0.9 Train-accuracy=0.95", [("Validation-accuracy", 0.9), ("Train-accuracy", 0.95)]),
        ("loss = 2", [("loss", 2.0)]),
        ("epoch 3: loss=+1.5", [("loss", 1.5)]),
    ],
)
def test_default_format_reads_numbers(line: str, expected: list[tuple[str, float]]) -> None:
    assert values(line) == expected


@pytest.mark.parametrize("line", ["accuracy=abc", "loss=", "no metrics here", "loss=-"])
def test_non_numbers_are_skipped(line: str) -> None:
    assert values(line) == []


def test_mixed_line_keeps_the_numbers() -> None:
    assert values("accuracy=abc loss=0.25") == [("loss", 0.25)]


@pytest.mark.parametrize("stamp", ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05+02:00"])
def test_leading_rfc3339_timestamp_is_the_point_time(stamp: str) -> None:
    (point,) = parse_line(f"{stamp} loss=0.5", default_timestamp="t0")
    assert (point.name, point.value, point.timestamp) == ("loss", 0.5, stamp)


def test_without_timestamp_the_default_is_used() -> None:
    (point,) = parse_line("loss=0.5", default_timestamp="t0")
    assert point.timestamp == "t0"
    (point,) = parse_line("loss=0.5")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", point.timestamp)


def test_a_timestamp_not_at_the_start_is_not_a_time() -> None:
    (point,) = parse_line(f"at {STAMP} loss=0.5", default_timestamp="t0")
    assert point.timestamp == "t0"


def test_names_filter() -> None:
    assert values("loss=1 acc=0.5 lr=0.1", names=["acc", "loss"]) == [("loss", 1.0), ("acc", 0.5)]


def test_metrics_format_filters() -> None:
    patterns = compile_filters([r"^(\w+):\s*([\d.]+)", r"\{metricName: (\w+), metricValue: ([\d.]+)\}"])
    line = "acc: 0.9 {metricName: loss, metricValue: 0.4}"
    assert values(line, patterns=patterns) == [("acc", 0.9), ("loss", 0.4)]


def test_default_filter_when_none_given() -> None:
    (pattern,) = compile_filters(None)
    assert pattern.pattern == DEFAULT_METRICS_FORMAT
    assert compile_filters([]) == [pattern]


@pytest.mark.parametrize("bad, fragment", [("(a", "not a valid regex"), ("a=(b)", "two groups")])
def test_bad_filters_say_which(bad: str, fragment: str) -> None:
    with pytest.raises(MetricFormatError) as info:
        compile_filters([r"(\w+)=(\d+)", bad])
    assert str(info.value).startswith("metricsFormat[1]:")
    assert fragment in str(info.value)


def test_format_metrics_writes_what_parse_reads() -> None:
    line = format_metrics({"loss": 0.1, "accuracy": 1 / 3}, STAMP)
    assert line.startswith(STAMP + " ")
    points = parse_line(line)
    assert [(p.name, p.value, p.timestamp) for p in points] == [("loss", 0.1, STAMP), ("accuracy", 1 / 3, STAMP)]


def test_now_rfc3339_parses_as_a_timestamp() -> None:
    stamp = now_rfc3339()
    (point,) = parse_line(f"{stamp} x=1")
    assert point.timestamp == stamp


def test_parse_lines_keeps_order() -> None:
    points = parse_lines([f"{STAMP} loss=3", "noise", f"{STAMP} loss=2 acc=0.5"], names=["loss"])
    assert [p.value for p in points] == [3.0, 2.0]


@given(st.dictionaries(st.from_regex(r"[A-Za-z][\w-]{0,10}", fullmatch=True),
                       st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=5))
def test_any_finite_value_round_trips_exactly(metrics: dict[str, float]) -> None:
    points = parse_line(format_metrics(metrics, STAMP))
    assert {p.name: p.value for p in points} == metrics
    assert all(math.isfinite(p.value) for p in points)
