"""The metric line parser on hostile lines and filters: linear time, same answers as Katib's
regex, filters that backtrack refused or stopped; metrics paths that climb out refused."""

from __future__ import annotations

import random
import time

import pytest

from kubenas.metrics import (
    _DEFAULT,
    DEFAULT_METRICS_FORMAT,
    FilterTimeoutError,
    MetricFormatError,
    _default_matches,
    compile_filters,
    filter_problem,
    metrics_path_problem,
    parse_line,
    parse_lines,
)


@pytest.mark.parametrize("word", ["x" * 200_000, "ab|-_" * 40_000, "é" * 200_000])
def test_a_long_word_without_equals_is_parsed_in_linear_time(word: str) -> None:
    # Katib's regex with finditer took 2 s for 16,000 characters and grew quadratically.
    start = time.monotonic()
    points = parse_line(f"{word} loss=0.5 {word}", ["loss"])
    assert time.monotonic() - start < 0.5
    assert [(p.name, p.value) for p in points] == [("loss", 0.5)]


@pytest.mark.parametrize("line", ["a=1b=2", "x-y=3|z=4", "loss = 1e-3 acc=.5 acc=-.5e+1", "=1 a==2 |=3", "é=1 e=2"])
def test_matches_are_exactly_katibs(line: str) -> None:
    def spans(matches):  # type: ignore[no-untyped-def]
        return [(m.start(), m.end(), m.groups()) for m in matches]

    assert spans(_default_matches(line)) == spans(_DEFAULT.finditer(line))


def test_matches_are_exactly_katibs_on_random_lines() -> None:
    rnd = random.Random(7)
    alphabet = "ab1-|=. \te+5_é\u00a0"
    for _ in range(20_000):
        line = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))
        assert [m.span() + m.groups() for m in _default_matches(line)] == \
               [m.span() + m.groups() for m in _DEFAULT.finditer(line)], line


@pytest.mark.parametrize("pattern", [r"([\w-]+)=((?:a|aa)+|[0-9.]+)$", r"(\w+)=((\d+)*)", r"(\w+\s?)+=(x)",
                                     r"(\w+)=((?:\d|\d\.)*)", r"(\w+)=((?:a+){2,})"])
def test_a_filter_that_repeats_a_repeat_or_an_alternation_is_refused(pattern: str) -> None:
    problem = filter_problem(pattern)
    assert problem is not None and "backtracks catastrophically" in problem
    with pytest.raises(MetricFormatError, match=r"metricsFormat\[0\]: .*backtracks catastrophically"):
        compile_filters([pattern])


@pytest.mark.parametrize("pattern", [DEFAULT_METRICS_FORMAT, r"([\w-]+)=(Genotype.*)",
                                     r"\{metricName: ([\w-]+), metricValue: ([\d.]+)\}", r"(\w+)=((?:ab)+)",
                                     r"(\w+)=(a?b?)", r"(\w+)=((?:[0-9]|\.)*)"])
def test_katibs_filters_and_single_repeats_are_accepted(pattern: str) -> None:
    assert filter_problem(pattern) is None


def test_a_filter_that_backtracks_anyway_is_stopped_by_the_time_limit() -> None:
    # polynomial, not nested: the structural check lets it pass; the time limit catches it
    pattern = r"([\w-]+)=(.*a.*a.*a.*a.*!)"
    assert filter_problem(pattern) is None
    (compiled,) = compile_filters([pattern])
    start = time.monotonic()
    with pytest.raises(FilterTimeoutError, match=r"ran over 1 s on one line \(20006 characters"):
        parse_line("loss=" + "a" * 20_000 + "?", ["loss"], [compiled])
    assert time.monotonic() - start < 30  # 1 s, checked coarsely by the regex engine
    # a batch of lines (the cluster's log reader) drops the filter after its first time-out
    start = time.monotonic()
    lines = ["loss=" + "a" * 20_000 + "?"] * 5 + ["loss=aa!"]
    assert parse_lines(lines, ["loss"], [compiled], keep_text=True) == []
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(("path", "ok"), [("/m/../victim.txt", False), ("../x", False), ("/m/..", False),
                                          ("/m/a..b/x.log", True), ("/m/.../x", True), ("/m/./x", True),
                                          ("/m/x\0y", False)])
def test_a_metrics_path_must_not_climb_out(path: str, ok: bool) -> None:
    assert (metrics_path_problem(path) is None) is ok
