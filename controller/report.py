"""What `kubenas run` leaves behind: results.json, progress.png and the final table.

The JSON document is the stable, machine-readable result of a local experiment (its
schema is documented in README.md); the table and the plot are for people.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

import kubenas
from controller.logic import OPTIMAL_CONDITIONS, Outcome, count_trials, optimal_trial
from controller.store import TrialRow, observation_json
from kubenas.printable import printable
from kubenas.trials import Objective, TrialRecord

__all__ = [
    "RESULTS_VERSION",
    "code_version",
    "plot_progress",
    "print_unsqueezed",
    "provenance",
    "record_of",
    "results_document",
    "results_table",
    "write_results",
]

log = logging.getLogger(__name__)

RESULTS_VERSION = 1
_GIT_TIMEOUT_S = 10.0


def record_of(row: TrialRow) -> TrialRecord:
    """The algorithm's view of a stored trial (what GetSuggestions and the logic see)."""
    return TrialRecord.from_observation(row.name, row.assignments, row.condition, row.observation,
                                        labels=row.labels, completion_time=row.completion_time)


def _trial_json(row: TrialRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "condition": row.condition.value,
        "assignments": dict(row.assignments),
        "labels": dict(row.labels),
        "observation": observation_json(row.observation),
        "start_time": row.start_time,
        "completion_time": row.completion_time,
        "duration_s": row.duration_s,
        "exit_code": row.exit_code,
        "seed": row.seed,
        "message": row.message,
    }


def results_document(
    experiment_name: str,
    algorithm: str,
    objective: Objective,
    outcome: Outcome | None,
    rows: Sequence[TrialRow],
    interrupted: bool = False,
    reproducibility: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The results.json document (see README.md for the schema); `reproducibility` is
    `provenance(...)` of the run, kept as given."""
    records = [record_of(r) for r in rows]
    best = optimal_trial(objective, records)
    best_row = next((r for r in rows if best is not None and r.name == best.name), None)
    counts = count_trials(records)
    if outcome is not None:
        status = "Succeeded" if outcome.succeeded else "Failed"
    else:
        status = "Interrupted" if interrupted else "Running"
    return {
        "version": RESULTS_VERSION,
        "experiment": experiment_name,
        "algorithm": algorithm,
        "status": status,
        "reason": outcome.reason.value if outcome else None,
        "message": outcome.message if outcome else ("interrupted; resume with --resume" if interrupted else ""),
        "objective": {
            "type": objective.type.value,
            "metric": objective.metric_name,
            "goal": objective.goal,
            "additional_metrics": list(objective.additional_metric_names),
        },
        "counts": {
            "total": counts.total,
            "succeeded": counts.succeeded,
            "failed": counts.failed,
            "killed": counts.killed,
            "metrics_unavailable": counts.metrics_unavailable,
            "early_stopped": counts.early_stopped,
            "running": counts.running,
            "pending": counts.pending,
        },
        "best_trial": None if best_row is None else {
            "name": best_row.name,
            "objective": best_row.observation.get(objective.metric_name),
            "assignments": dict(best_row.assignments),
            "observation": observation_json(best_row.observation),
        },
        "trials": [_trial_json(r) for r in rows],
        "reproducibility": dict(reproducibility) if reproducibility is not None else None,
    }


def _git_describe(source: Path) -> str:
    """`git describe --always --dirty` of the checkout `source` lives in, else "unknown"
    (an installed wheel, no git, a broken repository)."""
    root = next((d for d in (source, *source.parents) if (d / ".git").exists()), None)
    if root is None:
        return "unknown"
    try:
        done = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=_GIT_TIMEOUT_S, check=False,
                              # --dirty refreshes the index; without the optional lock a commit
                              # running at the same moment never sees an index.lock of ours
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else "unknown"


def code_version() -> dict[str, str]:
    """The kubenas package version and the git description of its source checkout."""
    return {"kubenas": kubenas.__version__, "git": _git_describe(Path(kubenas.__file__).resolve().parent)}


def _version(distribution: str) -> str | None:
    # Read from the installed metadata: importing torch only to print its version costs seconds.
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def provenance(
    seeds: Mapping[str, Any],
    settings: Mapping[str, Any],
    started_at: float,
    wall_clock_s: float,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """What a results.json needs to be reproduced: the seeds, the algorithm settings as sent,
    the code and library versions, the command line, the start time (RFC 3339, UTC) and the
    total wall clock of the command in seconds."""
    return {
        "seeds": dict(seeds),
        "settings": dict(settings),
        "code_version": code_version(),
        "versions": {"python": platform.python_version(), "torch": _version("torch"), "numpy": _version("numpy")},
        "command": list(sys.argv if argv is None else argv),
        "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "wall_clock_s": round(wall_clock_s, 3),
    }


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file (e.g. after Ctrl-C)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _import_pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_progress(path: Path, objective: Objective, rows: Sequence[TrialRow]) -> str | None:
    """Objective per trial and best-so-far, to a PNG. Returns a note when skipped, else None."""
    try:
        plt = _import_pyplot()
    except ImportError:
        return "matplotlib is not installed; progress.png skipped (pip install matplotlib)"
    xs, ys, best_xs, best_ys = [], [], [], []
    best: float | None = None
    for i, row in enumerate(rows, start=1):
        value = row.observation.get(objective.metric_name) if row.condition in OPTIMAL_CONDITIONS else None
        if value is None or isinstance(value, str):  # a text (genotype) has no place on an axis
            continue
        xs.append(i)
        ys.append(value)
        if best is None or objective.better(value, best):
            best = value
        best_xs.append(i)
        best_ys.append(best)
    if not xs:
        return "no trial reported the objective; progress.png skipped"
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.scatter(xs, ys, s=18, label=f"{objective.metric_name} per trial")
    ax.step(best_xs, best_ys, where="post", color="tab:red", label="best so far")
    if objective.goal is not None:
        ax.axhline(objective.goal, color="tab:green", linestyle="--", linewidth=1, label="goal")
    ax.set_xlabel("trial (in creation order)")
    ax.set_ylabel(f"{objective.metric_name} ({objective.type.value})")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def print_unsqueezed(console: Console, renderable: RenderableType, width: int = 160,
                     on_terminal: bool = False) -> None:
    """Print a table at least `width` columns wide where the console is narrower: a pipe or a
    log file (rich assumes 80 columns there) and, with `on_terminal`, a terminal too (which
    then wraps lines instead of rich folding cells)."""
    if console.width >= width or (console.is_terminal and not on_terminal):
        console.print(renderable)
        return
    Console(file=console.file, width=width, highlight=False, no_color=console.no_color).print(renderable)


def _fmt(value: float | str | None) -> str:
    if isinstance(value, str):  # a genotype: results.json has it whole
        value = printable(value)
        return value if len(value) <= 40 else value[:37] + "..."
    return "" if value is None else f"{value:.6g}"


def _clip(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def results_table(objective: Objective, rows: Sequence[TrialRow], best_name: str | None, limit: int = 50) -> Table:
    """Every trial (the last `limit`) with condition, assignments and metrics; the best marked."""
    table = Table(title="trials", show_lines=False)
    table.add_column("trial", no_wrap=True)
    table.add_column("condition", no_wrap=True)
    for name in objective.metric_names:
        table.add_column(name, justify="right")
    table.add_column("assignments", overflow="fold")
    table.add_column("s", justify="right")
    for row in rows[-limit:]:
        marker = " *" if row.name == best_name else ""
        assignments = " ".join(f"{k}={_clip(printable(v))}" for k, v in row.assignments.items())
        table.add_row(
            row.name + marker,
            row.condition.value,
            *(Text(_fmt(row.observation.get(n))) for n in objective.metric_names),  # brackets are no markup
            assignments,
            "" if row.duration_s is None else f"{row.duration_s:.1f}",
        )
    return table
