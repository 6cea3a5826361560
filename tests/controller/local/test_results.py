"""controller.local.results: the files and the summary a local run ends with."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from rich.console import Console

from controller.local.results import best_row, print_summary, write_result_files
from controller.logic import Outcome, OutcomeReason
from controller.report import record_of
from controller.store import TrialRow
from kubenas.trials import TrialCondition
from tests.controller.local.parts import experiment

OUTCOME = Outcome(OutcomeReason.MAX_TRIALS_REACHED, True, "2 trials completed; maxTrialCount is 2")


def _rows() -> dict[str, TrialRow]:
    rows = [TrialRow(name="unit-a", assignments={"lr": "0.05"}, condition=TrialCondition.SUCCEEDED,
                     observation={"loss": 0.3}, seed=5),
            TrialRow(name="unit-b", assignments={"lr": "0.02"}, condition=TrialCondition.SUCCEEDED,
                     observation={"loss": 0.1}, seed=5)]
    return {r.name: r for r in rows}


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, highlight=False), out


def test_the_best_row_is_the_optimal_trial() -> None:
    rows = _rows()
    exp = experiment(settings={"random_state": "5"})
    assert best_row(exp.objective(), rows, [record_of(r) for r in rows.values()]) is rows["unit-b"]
    assert best_row(exp.objective(), rows, []) is None


def test_results_json_records_the_trials_and_the_seed(tmp_path: Path) -> None:
    exp = experiment(settings={"random_state": "5"})
    console, out = _console()
    notes: list[str] = []
    write_result_files(tmp_path, exp, 5, OUTCOME, list(_rows().values()), time.time() - 2, console, notes.append)
    document = json.loads((tmp_path / "results.json").read_text())
    assert [t["name"] for t in document["trials"]] == ["unit-a", "unit-b"]
    assert document["reproducibility"]["seeds"] == {"random_state": 5}
    assert out.getvalue() == ""


def test_a_results_file_that_cannot_be_written_is_reported(tmp_path: Path) -> None:
    (tmp_path / "results.json").mkdir()
    (tmp_path / "progress.png").mkdir()
    console, out = _console()
    notes: list[str] = []
    write_result_files(tmp_path, experiment(), None, None, list(_rows().values()), time.time(), console,
                       notes.append)
    assert out.getvalue().startswith(f"error: cannot write {tmp_path / 'results.json'}: ")
    assert f"the trials are kept in {tmp_path / 'kubenas.db'}" in out.getvalue()
    assert len(notes) == 1 and "progress.png" in notes[0]


def test_the_summary_names_the_outcome_and_the_best_trial(tmp_path: Path) -> None:
    console, out = _console()
    exp = experiment()
    print_summary(console, "unit", exp.objective(), tmp_path, OUTCOME, _rows())
    text = out.getvalue()
    assert "experiment unit Succeeded (ExperimentMaxTrialsReached): 2 trials completed; maxTrialCount is 2" in text
    assert "best trial unit-b: loss=0.1\n  lr = 0.02\n" in text
    assert text.endswith(f"results: {tmp_path / 'results.json'}\n")
    console, out = _console()
    print_summary(console, "unit", exp.objective(), tmp_path, OUTCOME, {})
    assert "no trial reported the objective metric" in out.getvalue()
