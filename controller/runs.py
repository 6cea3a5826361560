"""`kubenas runs`: the local runs under a directory, one line each, newest last.

A run is a work directory of `kubenas run` (it holds experiment.json). A finished or
interrupted run is read from its results.json; a run whose process is still alive (the
pid in experiment.json) is read from its SQLite store, which `kubenas run` keeps writing
(WAL: readers never block it), with the objective from its Experiment YAML.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from controller.logic import count_trials, optimal_trial
from controller.progress import duration_text
from controller.report import record_of
from controller.store import StoreError, open_store
from kubenas.printable import printable

__all__ = ["RunSummary", "find_runs", "runs_table", "summarize_run"]

_MARKER = "experiment.json"
_DB = "kubenas.db"
_MAX_DEPTH = 3  # runs/<experiment>, or one level more (runs/<group>/<experiment>)


@dataclass(frozen=True)
class RunSummary:
    workdir: Path
    experiment: str
    algorithm: str = ""
    status: str = ""
    completed: int | None = None
    total: int | None = None                 # maxTrialCount, else the trials created
    metric: str = ""
    best: float | str | None = None
    best_trial: str = ""
    started: float | None = None             # epoch seconds
    duration_s: float | None = None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _started_at(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _from_results(workdir: Path, doc: Mapping[str, Any], name: str) -> RunSummary:
    def part(key: str) -> Mapping[str, Any]:
        value = doc.get(key)
        return value if isinstance(value, Mapping) else {}

    counts, best, objective, repro = part("counts"), part("best_trial"), part("objective"), part("reproducibility")
    completed = None
    if counts:
        completed = sum(int(counts.get(k) or 0) for k in
                        ("succeeded", "failed", "killed", "metrics_unavailable", "early_stopped"))
    wall = repro.get("wall_clock_s")
    return RunSummary(
        workdir, str(doc.get("experiment") or name), str(doc.get("algorithm") or ""), str(doc.get("status") or ""),
        completed, int(counts["total"]) if isinstance(counts.get("total"), int) else None,
        str(objective.get("metric") or ""), best.get("objective"), str(best.get("name") or ""),
        _started_at(repro.get("started_at")), float(wall) if isinstance(wall, (int, float)) else None)


def _from_store(workdir: Path, marker: Mapping[str, Any], name: str) -> RunSummary:
    """A run still in progress: its trials from the store, the objective from its YAML."""
    started = (workdir / _MARKER).stat().st_mtime
    summary = RunSummary(workdir, name, status="Running", started=started, duration_s=time.time() - started)
    algorithm, objective, max_trials = "", None, None
    try:
        from kubenas.experiment import SpecError, load_experiment_file

        exp = load_experiment_file(str(marker.get("file")))
        algorithm, objective, max_trials = exp.algorithm_name, exp.objective(), exp.max_trial_count
    except (SpecError, OSError, ValueError):
        pass
    try:
        store = open_store(str(workdir / _DB))
    except StoreError:
        return summary
    try:
        rows = store.list_trials(name)
    except StoreError:
        rows = []
    finally:
        store.close()
    records = [record_of(r) for r in rows]
    counts = count_trials(records)
    best_record = optimal_trial(objective, records) if objective is not None else None
    best = next((r for r in rows if best_record is not None and r.name == best_record.name), None)
    return RunSummary(workdir, name, algorithm, "Running", counts.completed,
                      max_trials if max_trials is not None else counts.total,
                      objective.metric_name if objective is not None else "",
                      None if best is None or objective is None else best.observation.get(objective.metric_name),
                      best.name if best is not None else "", started, summary.duration_s)


def summarize_run(workdir: Path) -> RunSummary | None:
    """The run in `workdir`, or None when it is no `kubenas run` work directory."""
    marker = _read_json(workdir / _MARKER)
    if not isinstance(marker, Mapping):
        return None
    name = str(marker.get("experiment") or workdir.name)
    if _alive(marker.get("pid")) and (workdir / _DB).exists():
        return _from_store(workdir, marker, name)
    doc = _read_json(workdir / "results.json")
    if isinstance(doc, Mapping):
        return _from_results(workdir, doc, name)
    # killed without a chance to write results.json (SIGKILL, a crash)
    return RunSummary(workdir, name, status="Stopped",
                      started=(workdir / _MARKER).stat().st_mtime)


def find_runs(roots: Iterable[Path]) -> list[RunSummary]:
    """Every run in or under `roots` (a run directory itself, or up to 3 levels below), oldest first."""
    found: list[RunSummary] = []
    seen: set[Path] = set()

    def visit(directory: Path, depth: int) -> None:
        key = directory.resolve()
        if key in seen:
            return
        seen.add(key)
        summary = summarize_run(directory)
        if summary is not None:
            found.append(summary)
            return  # a run's trials/ holds no runs
        if depth >= _MAX_DEPTH:
            return
        try:
            children = sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return
        for child in children:
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    return sorted(found, key=lambda r: (r.started or 0.0, str(r.workdir)))


def _best(run: RunSummary) -> str:
    if run.best is None:
        return ""
    value = printable(run.best) if isinstance(run.best, str) else f"{run.best:.6g}"
    return value if len(value) <= 24 else value[:23] + "…"


def runs_table(runs: Sequence[RunSummary], width: int = 160) -> Table:
    """experiment, algorithm, status, trials done, best objective and duration always; when
    it started (local time), the objective's metric and the directory as `width` allows."""
    columns: dict[str, list[str]] = {
        "experiment": [printable(r.experiment) for r in runs],
        "algorithm": [printable(r.algorithm) for r in runs],
        "status": [r.status for r in runs],
        "trials": ["" if r.completed is None else f"{r.completed}/{r.total}" if r.total else str(r.completed)
                   for r in runs],
        "best": [_best(r) for r in runs],
        "metric": [printable(r.metric) for r in runs],
        "started": ["" if r.started is None else datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M")
                    for r in runs],
        "took": ["" if r.duration_s is None else duration_text(r.duration_s) for r in runs],
        "directory": [printable(str(r.workdir)) for r in runs],
    }

    def cost(name: str) -> int:
        return max(len(name), *map(len, columns[name])) + 3

    shown = ["experiment", "algorithm", "status", "trials", "best", "took"]
    used = 1 + sum(cost(c) for c in shown)
    if used + cost("started") > width:  # the year goes first: month and day tell runs apart
        columns["started"] = [text[5:] for text in columns["started"]]
    for optional in ("started", "metric", "directory"):
        if used + cost(optional) <= width:
            shown.append(optional)
            used += cost(optional)
    order = [c for c in columns if c in shown]
    table = Table(title="kubenas runs")
    for name in order:
        table.add_column(name, no_wrap=True, justify="right" if name in ("trials", "best", "took") else "left")
    for i in range(len(runs)):
        table.add_row(*(Text(columns[name][i]) for name in order))
    return table
