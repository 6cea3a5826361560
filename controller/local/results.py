"""What a local run leaves behind when it ends: results.json, progress.png and the summary
printed on the terminal (the formats themselves are `controller.report`'s)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from controller import report
from controller.logic import Outcome, optimal_trial
from controller.report import plot_progress, provenance, results_document, write_results
from controller.store import TrialRow
from kubenas.trials import Objective, TrialRecord

__all__ = ["best_row", "print_summary", "write_result_files"]


def best_row(objective: Objective, rows: Mapping[str, TrialRow], records: Sequence[TrialRecord]) -> TrialRow | None:
    """The row of the optimal trial (`controller.logic.optimal_trial`), or None."""
    best = optimal_trial(objective, records)
    return None if best is None else rows.get(best.name)


def write_result_files(workdir: Path, experiment: Any, seed: int | None, outcome: Outcome | None,
                       rows: Sequence[TrialRow], started_at: float, console: Console,
                       note: Callable[[str], None],
                       curves: Mapping[str, Sequence[tuple[int, float]]] | None = None) -> None:
    """results.json (with the reproducibility block) and progress.png; `outcome` None: interrupted.
    The trials are safe in the store already: a file that cannot be written is reported, not raised.
    `curves`: each trial's objective over its reports, drawn in progress.png."""
    objective = experiment.objective()
    provenance_block = provenance({"random_state": seed}, experiment.algorithm_settings(), started_at,
                                  time.time() - started_at)
    document = results_document(experiment.name, experiment.algorithm_name, objective, outcome, list(rows),
                                interrupted=outcome is None, reproducibility=provenance_block)
    try:
        write_results(workdir / "results.json", document)
    except OSError as exc:  # disk full, a directory in its place
        console.print(f"error: cannot write {workdir / 'results.json'}: {exc.strerror or exc}; "
                      f"the trials are kept in {workdir / 'kubenas.db'}", soft_wrap=True, markup=False)
    try:
        text = plot_progress(workdir / "progress.png", objective, list(rows), curves)
    except OSError as exc:
        text = f"progress.png skipped: {exc.strerror or exc}"
    if text:
        note(text)


def print_summary(console: Console, name: str, objective: Objective, workdir: Path, outcome: Outcome,
                  rows: Mapping[str, TrialRow]) -> None:
    """The trials' table fitted to the terminal, how the experiment ended, its best trial and
    the architecture it found (`controller.report.print_summary`)."""
    report.print_summary(console, name, objective, list(rows.values()), outcome, workdir / "results.json")
