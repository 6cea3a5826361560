"""Text-valued metrics (Katib's DARTS `Best-Genotype`): kept only where asked for."""

from __future__ import annotations

from kubenas.metrics import (
    DEFAULT_METRICS_FORMAT,
    MetricPoint,
    compile_filters,
    parse_line,
    parse_lines,
)

KATIB_DARTS_FILTER = compile_filters([r"([\w-]+)=(Genotype.*)"])
GENOTYPE = ("Genotype(normal=[('max_pooling_3x3', 0), ('skip_connection', 1)], normal_concat=range(2, 3), "
            "reduce=[('max_pooling_3x3', 0), ('max_pooling_3x3', 1)], reduce_concat=range(2, 3))")
STAMP = "2026-01-02T03:04:05Z"


def test_a_filter_capture_that_is_no_number_is_kept_as_text_when_asked() -> None:
    [point] = parse_line(f"{STAMP} Best-Genotype={GENOTYPE}", ["Best-Genotype"], KATIB_DARTS_FILTER,
                         keep_text=True)
    assert point == MetricPoint("Best-Genotype", GENOTYPE, STAMP)
    assert point.is_text
    assert point.stored_value() == GENOTYPE


def test_without_keep_text_a_text_capture_is_dropped_as_before() -> None:
    assert parse_line(f"Best-Genotype={GENOTYPE}", ["Best-Genotype"], KATIB_DARTS_FILTER) == []


def test_only_the_wanted_text_metrics_are_kept() -> None:
    lines = [f"Current-Genotype={GENOTYPE}", f"Best-Genotype={GENOTYPE}"]
    points = parse_lines(lines, ["Best-Genotype"], KATIB_DARTS_FILTER, keep_text=True)
    assert [p.name for p in points] == ["Best-Genotype"]


def test_numbers_stay_numbers_and_unavailable_or_empty_text_is_never_kept() -> None:
    patterns = compile_filters([r"(\w+):\s*(\S*)"])
    points = parse_line(f"{STAMP} acc: 0.5 loss: unavailable note: ok empty: ", None, patterns, keep_text=True)
    assert [(p.name, p.value) for p in points] == [("acc", 0.5), ("note", "ok")]
    assert isinstance(points[0].value, float) and points[0].stored_value() == "0.5"


def test_non_finite_numbers_are_skipped_even_with_keep_text() -> None:
    patterns = compile_filters([r"(\w+)=(\S+)"])
    points = parse_line(f"{STAMP} a=nan b=inf c=1e3", None, patterns, keep_text=True)
    assert points == [MetricPoint("c", 1000.0, STAMP)]


def test_the_default_regex_never_yields_text_even_with_keep_text() -> None:
    # Katib's default regex can match an empty value (`name=word`); that is no text metric.
    points = parse_line("epoch=3 arch=Genotype(x) loss=0.25", None, None, keep_text=True)
    assert [(p.name, p.value) for p in points] == [("epoch", 3.0), ("loss", 0.25)]
    assert all(not p.is_text for p in points)
    assert compile_filters(None)[0].pattern == DEFAULT_METRICS_FORMAT
