"""What `kubenas run` leaves behind: results.json, progress.png and the final table.

The JSON document is the stable, machine-readable result of a local experiment (its
schema is documented in README.md); the table and the plot are for people.
"""

from __future__ import annotations

import json
import logging
import math
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
from kubenas.architecture import FoundArchitecture, find_architecture, trial_output_lines
from kubenas.printable import printable
from kubenas.trials import Objective, TrialCondition, TrialRecord

__all__ = [
    "RESULTS_VERSION",
    "code_version",
    "best_trial_lines",
    "plot_progress",
    "print_unsqueezed",
    "provenance",
    "record_of",
    "results_document",
    "print_summary",
    "results_table",
    "table_width",
    "trial_architecture",
    "write_results",
]

log = logging.getLogger(__name__)

RESULTS_VERSION = 1
_GIT_TIMEOUT_S = 10.0


def record_of(row: TrialRow) -> TrialRecord:
    """The algorithm's view of a stored trial (what GetSuggestions and the logic see)."""
    return TrialRecord.from_observation(row.name, row.assignments, row.condition, row.observation,
                                        labels=row.labels, completion_time=row.completion_time)


def trial_architecture(row: TrialRow) -> FoundArchitecture | None:
    """The architecture a local trial found or was given (see kubenas.architecture)."""
    output = trial_output_lines(Path(row.workdir)) if row.workdir else ()
    return find_architecture(row.assignments, row.observation, output)


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
            "architecture": _architecture_json(best_row),
        },
        "trials": [_trial_json(r) for r in rows],
        "reproducibility": dict(reproducibility) if reproducibility is not None else None,
    }


def _architecture_json(row: TrialRow) -> dict[str, Any] | None:
    found = trial_architecture(row)
    return None if found is None else found.to_json()


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


def plot_progress(path: Path, objective: Objective, rows: Sequence[TrialRow],
                  curves: Mapping[str, Sequence[tuple[int, float]]] | None = None) -> str | None:
    """Objective per trial and best-so-far and, from `curves` ((report, value) points per trial,
    see `controller.progress.Progress.objective_curves`), each trial's objective over its
    reports, to a PNG; early-stopped trials are marked in both.
    One trial draws its curve alone. Returns a note when skipped, else None."""
    try:
        plt = _import_pyplot()
    except ImportError:
        return "matplotlib is not installed; progress.png skipped (pip install matplotlib)"
    xs, ys, best_xs, best_ys, stopped_xs, stopped_ys = [], [], [], [], [], []
    best: float | None = None
    for i, row in enumerate(rows, start=1):
        value = row.observation.get(objective.metric_name) if row.condition in OPTIMAL_CONDITIONS else None
        if value is None or isinstance(value, str):  # a text (genotype) has no place on an axis
            continue
        xs.append(i)
        ys.append(value)
        if row.condition is TrialCondition.EARLY_STOPPED:
            stopped_xs.append(i)
            stopped_ys.append(value)
        if best is None or objective.better(value, best):
            best = value
        best_xs.append(i)
        best_ys.append(best)
    drawn = {name: list(values) for name, values in (curves or {}).items() if len(values) >= 2}
    if not xs and not drawn:
        return "no trial reported the objective; progress.png skipped"
    panels = (len(xs) >= 2 or not drawn) + bool(drawn)
    fig, axes = plt.subplots(panels, 1, figsize=(7, 3.6 * panels), dpi=100, squeeze=False)
    label = f"{objective.metric_name} ({objective.type.value})"
    if len(xs) >= 2 or not drawn:
        ax = axes[0][0]
        ax.scatter(xs, ys, s=18, label=f"{objective.metric_name} per trial")
        if stopped_xs:
            ax.scatter(stopped_xs, stopped_ys, s=40, marker="x", color="tab:orange", label="early stopped")
        ax.step(best_xs, best_ys, where="post", color="tab:red", label="best so far")
        if objective.goal is not None:
            ax.axhline(objective.goal, color="tab:green", linestyle="--", linewidth=1, label="goal")
        ax.set_xlabel("trial (in creation order)")
        ax.set_ylabel(label)
        ax.legend(loc="best")
    if drawn:
        ax = axes[-1][0]
        stopped = {r.name for r in rows if r.condition is TrialCondition.EARLY_STOPPED}
        marked = False
        for name, points in drawn.items():
            steps, values = [p[0] for p in points], [p[1] for p in points]
            if name in stopped:
                line = ax.plot(steps, values, linestyle="--", linewidth=1)[0]
                ax.scatter([steps[-1]], [values[-1]], marker="x", s=40, color=line.get_color(),
                           label=None if marked else "early stopped")
                marked = True
            else:
                ax.plot(steps, values, linewidth=1, label=name if len(drawn) == 1 else None,
                        marker="o" if len(drawn) == 1 else None, markersize=3)
        if objective.goal is not None:
            ax.axhline(objective.goal, color="tab:green", linestyle="--", linewidth=1, label="goal")
        only = next(iter(drawn)) if len(drawn) == 1 else None
        ax.set_title(f"trial {only}: {objective.metric_name} per report" if only else
                     f"{objective.metric_name} per report, {len(drawn)} trials")
        ax.set_xlabel("report (in the order the trial printed them)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(label)
        if ax.get_legend_handles_labels()[0]:
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
    return text if len(text) <= limit else text[: limit - 1] + "…"


# A terminal narrower than this still gets the table at its width; a pipe or a log file
# (where rich assumes 80 columns) gets this many, so no value there is cut.
LOG_WIDTH = 160
_MIN_ASSIGNMENTS = 16   # narrower than this, the assignments column is left out (results.json has them)
_COLUMN_COST = 3        # a column's padding and rule in rich's default box


def table_width(console: Console) -> int:
    """The width the final table is laid out for: the terminal's, else `LOG_WIDTH`."""
    return console.width if console.is_terminal else max(console.width, LOG_WIDTH)


def _short(value: str) -> str:
    """A long number as 6 significant digits (`0.867348934638575` -> `0.867349`); other text as is.
    Only the table abbreviates: the best trial's block and results.json have the wire text."""
    if len(value) <= 8:
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.6g}" if math.isfinite(number) else value


def _folded(header: str) -> str:
    """A metric name on lines broken after its hyphens: `Validation-` over `Accuracy`."""
    return "-\n".join(header.split("-"))


def results_table(objective: Objective, rows: Sequence[TrialRow], best_name: str | None,
                  width: int = LOG_WIDTH, limit: int = 50, experiment: str | None = None) -> Table:
    """The last `limit` trials, one line each, laid out to fit `width` columns: the trial, its
    condition, the objective and its duration always; the additional metrics and the
    assignments (cut with "…") as room allows. Where it is tight, metric names go on two
    lines (broken after a hyphen) and trial names lose the `<experiment>-` they share; no
    header or value is ever cut mid-word."""
    shown = list(rows[-limit:])
    values = {m: [_fmt(r.observation.get(m)) for r in shown] for m in objective.metric_names}
    durations = ["" if r.duration_s is None else f"{r.duration_s:.1f}" for r in shown]
    assignments = [" ".join(f"{k}={_short(printable(v))}" for k, v in r.assignments.items()) for r in shown]
    natural = min(max(map(len, assignments), default=0), 200)
    prefix = f"{experiment}-" if experiment and all(r.name.startswith(f"{experiment}-") for r in shown) else ""

    def need(header: str, cells: Sequence[str]) -> int:
        return max([*map(len, header.splitlines()), *map(len, cells)]) + _COLUMN_COST

    def layout(fold: bool, short: bool) -> tuple[list[str], list[str], dict[str, str], int]:
        names = [(r.name[len(prefix):] if short else r.name) + (" *" if r.name == best_name else "") for r in shown]
        headers = {m: _folded(m) if fold else m for m in objective.metric_names}
        used = 1 + need("trial", names) + need("condition", [r.condition.value for r in shown]) + need("s", durations)
        metrics = [objective.metric_name]
        used += need(headers[objective.metric_name], values[objective.metric_name])
        for name in objective.additional_metric_names:
            cost = need(headers[name], values[name])
            if width - used - cost - _COLUMN_COST >= min(natural, 2 * _MIN_ASSIGNMENTS):
                metrics.append(name)
                used += cost
        return names, metrics, headers, width - used - _COLUMN_COST

    for fold, short in ((False, False), (True, False), (True, bool(prefix))):
        names, metrics, headers, room = layout(fold, short)
        if room >= min(natural, 2 * _MIN_ASSIGNMENTS):
            break
    with_assignments = natural > 0 and room >= _MIN_ASSIGNMENTS
    title = "trials" if len(shown) == len(rows) else f"trials (the last {len(shown)} of {len(rows)})"
    if short:
        title += f" of {experiment} (names without {prefix!r})"
    hidden = len(objective.metric_names) - len(metrics)
    notes = [f"{hidden} more metric{'s' if hidden > 1 else ''}" if hidden else "",
             "" if with_assignments or natural == 0 else "the assignments"]
    caption = " and ".join(n for n in notes if n)
    table = Table(title=title, caption=f"{caption}: see results.json or a wider terminal" if caption else None)
    table.add_column("trial", no_wrap=True)
    table.add_column("condition", no_wrap=True)
    for name in metrics:
        table.add_column(headers[name], justify="right", no_wrap=True)
    if with_assignments:
        table.add_column("assignments", no_wrap=True, overflow="ellipsis", max_width=room)
    table.add_column("s", justify="right", no_wrap=True)
    for i, row in enumerate(shown):
        cells: list[RenderableType] = [names[i], row.condition.value]
        cells += [Text(values[m][i]) for m in metrics]  # brackets are no markup
        if with_assignments:
            cells.append(Text(_clip(assignments[i], room), no_wrap=True, overflow="ellipsis"))
        cells.append(durations[i])
        table.add_row(*cells)
    return table


def best_trial_lines(objective: Objective, best: TrialRow, width: int | None) -> list[str]:
    """The "best trial" block: its metrics, its assignments (cut to `width` when given) and the
    architecture it found, in words."""
    shown = " ".join(f"{m}={printable(_fmt(best.observation.get(m)))}" for m in objective.metric_names
                     if best.observation.get(m) is not None)
    lines = [f"best trial {best.name}: {shown}"]
    found = trial_architecture(best)
    for key, val in best.assignments.items():
        text = f"  {key} = {printable(val)}"
        lines.append(text if width is None else _clip(text, width))
    if found is not None:
        lines.append(f"architecture found (from {found.source}):")
        lines += [f"  {line}" for line in found.lines()]
    return lines


def print_summary(console: Console, experiment: str, objective: Objective, rows: Sequence[TrialRow],
                  outcome: Outcome, results_path: Path) -> None:
    """What `kubenas run` prints at its end: the table, the outcome, the best trial, where the results are."""
    records = [record_of(r) for r in rows]
    best = optimal_trial(objective, records)
    best_row = next((r for r in rows if best is not None and r.name == best.name), None)
    width = table_width(console)
    table = results_table(objective, rows, best_row.name if best_row else None, width=width, experiment=experiment)
    Console(file=console.file, width=width, highlight=False, no_color=console.no_color,
            force_terminal=console.is_terminal).print(table)
    status = "Succeeded" if outcome.succeeded else "Failed"
    console.print(f"experiment {experiment} {status} ({outcome.reason.value}): {printable(outcome.message)}",
                  soft_wrap=True, markup=False)
    if best_row is not None:
        lines = best_trial_lines(objective, best_row, console.width if console.is_terminal else None)
        for line in lines:
            console.print(line, soft_wrap=True, markup=False, highlight=False)
        if any(line.endswith("…") for line in lines):
            console.print("  (values cut to the terminal's width; results.json has them whole)", markup=False,
                          style="dim")
    else:
        console.print("no trial reported the objective metric", markup=False)
    console.print(f"results: {results_path}", soft_wrap=True, markup=False)
