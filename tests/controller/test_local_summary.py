"""The end of `kubenas run` as a person sees it: a table that fits the terminal, the best
trial with the architecture it found, progress.png for one trial and for early stops."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from controller.logic import Outcome, OutcomeReason, TrialCounts
from controller.progress import CURVE_POINTS, CURVE_TRIALS, Progress, duration_text, time_left
from controller.report import (
    best_trial_lines,
    plot_progress,
    print_summary,
    results_document,
    results_table,
)
from controller.store import TrialRow
from kubenas.metrics import MetricPoint
from kubenas.space import ExpandedOp, GraphConfig, nn_config
from kubenas.trials import Objective, ObjectiveType, TrialCondition

C = TrialCondition
OBJ = Objective(ObjectiveType.MAXIMIZE, "Validation-Accuracy", additional_metric_names=("Training-Accuracy",))
OPS = [ExpandedOp(0, "convolution", {"filter_size": 3, "num_filter": 16, "stride": 1}),
       ExpandedOp(1, "separable_convolution", {"filter_size": 5, "num_filter": 32, "stride": 1}),
       ExpandedOp(2, "reduction", {"reduction_type": "max_pooling", "pool_size": 2})]
CONFIG = json.dumps(nn_config(GraphConfig(3, (8, 8, 1), (10,)), OPS, [0, 1, 2]))


def enas_rows(n: int = 12) -> list[TrialRow]:
    """Trials shaped like examples/enas-digits.yaml's: long architecture and nn_config assignments."""
    rows = []
    for i in range(n):
        arch = json.dumps([[i % 3], [(i + 1) % 3, 1], [(i + 2) % 3, i % 2, 1]])
        rows.append(TrialRow(f"enas-digits-{chr(97 + i) * 8}", {"architecture": arch, "nn_config": CONFIG},
                             condition=C.SUCCEEDED if i != 3 else C.METRICS_UNAVAILABLE,
                             observation={"Validation-Accuracy": 0.8 + i / 100, "Training-Accuracy": 0.9}
                             if i != 3 else {}, duration_s=12.5 + i))
    return rows


def render(width: int, rows: list[TrialRow], terminal: bool = True) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None)
    print_summary(console, "enas-digits", OBJ, rows, Outcome(OutcomeReason.MAX_TRIALS_REACHED, True, "12 done"),
                  Path("runs/enas-digits/results.json"))
    return re.sub(r"\x1b\[[0-9;]*m", "", console.file.getvalue())  # styles only: no colours asked for


def table_lines(text: str) -> list[str]:
    return text.split("experiment enas-digits Succeeded")[0].splitlines()


def test_at_80_columns_the_table_fits_with_whole_headers_and_one_line_per_trial() -> None:
    rows = enas_rows()
    text = render(80, rows)
    lines = table_lines(text)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Validation-Accuracy" in text and "Validati…" not in text
    assert "trials of enas-digits (names without 'enas-digits-')" in text  # no room for the shared prefix
    for row in rows:  # each trial one line: its name, condition and the start of its assignments
        line = next(line for line in lines if f"│ {row.name.removeprefix('enas-digits-')} " in line)
        assert row.condition.value in line and "architecture=[[" in line
    assert len(lines) <= len(rows) + 8  # title, header rules and caption: no wrapped cells
    assert "Training-Accuracy" not in "\n".join(lines[:4])  # no room: the caption says where it is
    assert "1 more metric" in text and "results.json" in text


def test_at_200_columns_more_is_shown() -> None:
    rows = enas_rows()
    narrow, wide = render(80, rows), render(200, rows)
    assert max(len(line) for line in wide.splitlines()) <= 200
    header = next(line for line in table_lines(wide) if "Validation-Accuracy" in line)
    assert "Training-Accuracy" in header and "assignments" in header
    assert rows[0].name in wide and "Validation-Accuracy" in header
    shown = [line.split("│")[5] for line in table_lines(wide) if rows[0].name in line][0]
    assert "architecture=[[0], [1, 1], [2, 0, 1]] nn_config={" in shown  # the narrow one stops at "[[0], […"
    assert len(shown.strip()) > 80 and "architecture=[[0], [1, 1]" not in narrow


def test_a_log_file_gets_whole_values() -> None:
    text = render(80, enas_rows(), terminal=False)  # rich assumes 80 columns in a pipe
    assert f"  nn_config = {CONFIG}" in text  # the best trial's values, whole
    assert "…" not in text.split("best trial")[1]


def test_very_narrow_terminal_leaves_the_assignments_out() -> None:
    table = results_table(OBJ, enas_rows(), None, width=60, experiment="enas-digits")
    console = Console(file=io.StringIO(), width=60, color_system=None)
    console.print(table)
    text = console.file.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "Validation-" in text and "Accuracy" in text and "Validati…" not in text and "architecture=" not in text
    assert "the assignments: see results.json" in " ".join(text.split())


def test_best_trial_block_names_the_architecture_in_words() -> None:
    rows = enas_rows()
    text = render(80, rows)
    best = "enas-digits-" + "l" * 8  # the last has the highest accuracy
    block = text.split(f"best trial {best}: ")[1]
    assert block.startswith("Validation-Accuracy=0.91 Training-Accuracy=0.9")
    assert "architecture found (from the trial's assignments):" in block
    # row [[2], [0, 1], [1, 1, 1]] over OPS
    assert "    layer 0: max pooling 2x2\n" in block
    assert "    layer 1: conv 3x3, 16 filters; skip from input\n" in block
    assert "    layer 2: separable conv 5x5, 32 filters; skips from input, layer 0\n" in block
    assert "results.json has them whole" in block  # the nn_config line was cut at 80 columns
    doc = results_document("enas-digits", "enas", OBJ, None, rows)
    assert doc["best_trial"]["architecture"]["text"][3] == "  layer 2: separable conv 5x5, 32 filters; skips from input, layer 0"
    assert doc["best_trial"]["architecture"]["nn_config"] == CONFIG


def test_one_trial_draws_its_curve_and_early_stops_are_marked(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # an optional extra of kubenas (progress.png is skipped without it)
    import matplotlib.image

    one = [TrialRow("d-a", {}, condition=C.SUCCEEDED, observation={"Validation-Accuracy": 0.9})]
    assert plot_progress(tmp_path / "one.png", OBJ, one, {"d-a": [(1, 0.2), (2, 0.5), (3, 0.7), (4, 0.9)]}) is None
    dot = tmp_path / "dot.png"
    assert plot_progress(dot, OBJ, one) is None
    curve = matplotlib.image.imread(tmp_path / "one.png")
    # a curve over 4 reports is drawn in one panel the size of the old dot plot; the ink differs
    assert curve.shape == matplotlib.image.imread(dot).shape
    assert (curve != matplotlib.image.imread(dot)).any()
    rows = [*one, TrialRow("d-b", {}, condition=C.EARLY_STOPPED, observation={"Validation-Accuracy": 0.4}),
            TrialRow("d-c", {}, condition=C.SUCCEEDED, observation={"Validation-Accuracy": 0.8})]
    curves = {"d-a": [(1, 0.2), (2, 0.9)], "d-b": [(1, 0.1), (2, 0.4)], "d-c": [(1, 0.5), (2, 0.8)]}
    assert plot_progress(tmp_path / "three.png", OBJ, rows, curves) is None
    both = matplotlib.image.imread(tmp_path / "three.png")
    assert both.shape[0] > curve.shape[0]  # two panels: per trial, and per report


def test_time_left_follows_the_pace_of_completed_trials() -> None:
    assert time_left(60.0, 3, 9) == 180.0
    assert time_left(60.0, 0, 9) is None  # no pace before the first completion
    assert [duration_text(s) for s in (5, 125, 3725)] == ["5s", "2m05s", "1h02m"]


def test_live_view_shows_a_bar_and_an_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("controller.progress.time.monotonic", lambda: clock[0])
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    with Progress(console, "e", OBJ, 12) as progress:
        progress.status(TrialCounts(running=2), None)
        clock[0] += 90.0
        progress.status(TrialCounts(running=2, succeeded=3), None)
        progress._live.refresh()
    text = console.file.getvalue()
    assert "3/12 trials done, 1m30s elapsed, about 4m30s left" in text and "━" in text


def test_a_log_gets_progress_lines_with_the_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("controller.progress.time.monotonic", lambda: clock[0])
    console = Console(file=io.StringIO(), width=100)
    with Progress(console, "e", OBJ, 4) as progress:
        progress.status(TrialCounts(succeeded=1), None)  # a resumed run: 1 done before
        progress.status(TrialCounts(succeeded=1, running=1), None)
        clock[0] += 30.0
        progress.status(TrialCounts(succeeded=2), None)
    assert console.file.getvalue().splitlines() == ["progress: 2/4 trials done, 30s elapsed, about 1m00s left"]


def test_curves_stay_bounded_whatever_a_trial_prints() -> None:
    progress = Progress(Console(file=io.StringIO()), "e", OBJ, None)
    stamp = "2026-01-01T00:00:00Z"
    for start in range(0, 100_000, 1000):  # a trial printing its objective 100,000 times
        progress.points("e-flood", [MetricPoint("Validation-Accuracy", float(i), stamp) for i in range(start, start + 1000)])
    progress.points("e-flood", [MetricPoint("Training-Accuracy", 1.0, stamp), MetricPoint("Validation-Accuracy", "x", stamp)])
    [(name, points)] = progress.objective_curves().items()
    assert name == "e-flood" and CURVE_POINTS // 2 <= len(points) < CURVE_POINTS
    assert points[0] == (1, 0.0) and points[-1][0] > 99_000  # spread over the whole run, in order
    assert all(a[0] < b[0] for a, b in zip(points, points[1:]))
    for i in range(CURVE_TRIALS + 5):  # only the latest trials keep a curve
        progress.points(f"e-{i}", [MetricPoint("Validation-Accuracy", 0.5, stamp)])
    curves = progress.objective_curves()
    assert len(curves) == CURVE_TRIALS and "e-flood" not in curves and f"e-{CURVE_TRIALS + 4}" in curves


def test_long_numbers_are_abbreviated_in_the_table_only() -> None:
    row = TrialRow("e-a", {"lr": "0.867348934638575", "opt": "adamw-with-a-long-name", "n": "12"},
                   condition=C.SUCCEEDED, observation={"Validation-Accuracy": 0.5})
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(results_table(OBJ, [row], "e-a", width=200))
    assert "lr=0.867349 opt=adamw-with-a-long-name n=12" in console.file.getvalue()
    assert "0.867348934638575" in " ".join(best_trial_lines(OBJ, row, None))
