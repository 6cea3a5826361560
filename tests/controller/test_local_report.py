"""controller.report and controller.progress: results.json, the plot, the live view."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from controller.logic import Outcome, OutcomeReason, TrialCounts
from controller.progress import Progress
from controller.report import (
    plot_progress,
    results_document,
    results_table,
    write_results,
)
from controller.store import TrialRow
from kubenas.trials import Objective, ObjectiveType, TrialCondition

C = TrialCondition
OBJ = Objective(ObjectiveType.MAXIMIZE, "acc", goal=0.95, additional_metric_names=("loss",))
ROWS = [
    TrialRow("e-a", {"lr": "0.1"}, condition=C.SUCCEEDED, observation={"acc": 0.8, "loss": 0.5},
             exit_code=0, duration_s=1.5, seed=3, start_time="2024-01-01T00:00:00Z",
             completion_time="2024-01-01T00:00:01.5Z"),
    TrialRow("e-b", {"lr": "0.2"}, condition=C.FAILED, exit_code=1, message="exited with status 1"),
    TrialRow("e-c", {"lr": "0.3"}, condition=C.SUCCEEDED, observation={"acc": 0.9}, exit_code=0),
    TrialRow("e-d", {"lr": "0.4"}, condition=C.KILLED, observation={"acc": 0.99}),
]


def test_results_document_schema_and_best(tmp_path: Path) -> None:
    outcome = Outcome(OutcomeReason.MAX_TRIALS_REACHED, True, "4 trials completed")
    doc = results_document("e", "random", OBJ, outcome, ROWS)
    path = tmp_path / "results.json"
    write_results(path, doc)
    loaded = json.loads(path.read_text())
    assert loaded == doc
    assert (loaded["status"], loaded["reason"]) == ("Succeeded", "ExperimentMaxTrialsReached")
    assert loaded["objective"] == {"type": "maximize", "metric": "acc", "goal": 0.95, "additional_metrics": ["loss"]}
    # the killed trial's 0.99 does not count: only Succeeded/EarlyStopped trials can be best
    assert loaded["best_trial"] == {"name": "e-c", "objective": 0.9, "assignments": {"lr": "0.3"},
                                    "observation": {"acc": 0.9}, "architecture": None}  # an HPO trial has none
    assert [t["name"] for t in loaded["trials"]] == ["e-a", "e-b", "e-c", "e-d"]
    first = loaded["trials"][0]
    assert set(first) == {"name", "condition", "assignments", "labels", "observation", "start_time",
                          "completion_time", "duration_s", "exit_code", "seed", "message"}
    assert (first["seed"], first["duration_s"], first["exit_code"]) == (3, 1.5, 0)
    assert loaded["counts"]["failed"] == 1 and loaded["counts"]["killed"] == 1
    interrupted = results_document("e", "random", OBJ, None, ROWS, interrupted=True)
    assert interrupted["status"] == "Interrupted" and interrupted["reason"] is None
    assert not list(tmp_path.glob("*.tmp"))


def test_plot_is_a_png_and_skipped_without_values(tmp_path: Path) -> None:
    assert plot_progress(tmp_path / "p.png", OBJ, ROWS) is None
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    note = plot_progress(tmp_path / "q.png", OBJ, ROWS[1:2])
    assert note and "skipped" in note and not (tmp_path / "q.png").exists()


def test_results_table_marks_the_best() -> None:
    console = Console(file=io.StringIO(), width=200)
    console.print(results_table(OBJ, ROWS, "e-c"))
    text = console.file.getvalue()
    assert "e-c *" in text and "exited" not in text and "lr=0.3" in text and "Failed" in text


def test_progress_prints_lines_when_not_a_terminal() -> None:
    console = Console(file=io.StringIO(), width=200)
    with Progress(console, "e", OBJ, 4) as progress:
        progress.started(ROWS[0], gpu="1")
        progress.finished(ROWS[0])
        progress.finished(ROWS[1])
    lines = console.file.getvalue().splitlines()
    assert lines == ["trial e-a started gpu=1: lr=0.1", "trial e-a Succeeded acc=0.8 in 1.5s",
                     "trial e-b Failed (exited with status 1)"]


def test_progress_live_view_on_a_terminal() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    with Progress(console, "e", OBJ, 4) as progress:
        assert progress.live_mode
        progress.started(ROWS[2])
        progress.metrics("e-c", {"acc": 0.5})
        progress.status(TrialCounts(running=1, succeeded=1), ROWS[0])
        progress._live.refresh()  # draw now rather than on the 4 Hz timer
    text = console.file.getvalue()
    assert "e-c" in text and "acc=0.5" in text and "1/4 trials done" in text and "1 running, 1 succeeded" in text and "failed" not in text and "best: e-a acc=0.8" in text
    assert "trial e-c started" not in text  # no log lines in live mode


def test_control_characters_reach_neither_the_live_view_nor_the_table() -> None:
    # Before: a parameter value or a metric captured as text could retitle the terminal
    # (\x1b]0;...\x07) or erase what kubenas printed (\r\x1b[2K).
    hostile = "\x1b]0;pwned\x07\r\x1b[2K"
    row = TrialRow("e-x", {"lr": hostile}, condition=C.SUCCEEDED, observation={"acc": 0.5, "loss": hostile})
    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None)
    with Progress(console, "e", OBJ, 4) as progress:
        progress.started(row)
        progress.metrics("e-x", {"genotype" + hostile: hostile})
        progress.note(f"a note quoting {hostile}")
        progress._live.refresh()
    console.print(results_table(OBJ, [row], "e-x"))
    shown = console.file.getvalue()
    assert "\x1b]0;pwned" not in shown  # (rich's own cursor control is all the ESC bytes left)
    assert "\\x1b]0;pwned\\x07" in shown
    piped = Console(file=io.StringIO(), width=200)
    with Progress(piped, "e", OBJ, 4) as progress:
        progress.started(row)
        progress.finished(row)
    assert "\x1b" not in piped.file.getvalue() and "lr=\\x1b]0;pwned\\x07\\r\\x1b[2K" in piped.file.getvalue()
