"""The dashboard's view of `kubenas run` work directories, read while runs write them.

A work directory is a run when it holds `kubenas.db` or `experiment.json`. The store is
opened read-only (`mode=ro`, `query_only`) for each answer and closed again: SQLite's WAL
lets such a reader see the last committed state beside the running writer without ever
making it wait, and a reader that only reads cannot damage the file. `results.json` is
replaced atomically by the run, so it is read whole or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from dashboard.source import (
    DataSource,
    ExperimentDetail,
    ExperimentSummary,
    LogTail,
    MetricLogView,
    NotFound,
    SourceError,
    StatusChange,
    TrialDetail,
    TrialView,
    best_trial,
    count_conditions,
    objective_of,
)
from kubenas.trials import Objective, ObjectiveType

__all__ = ["LocalSource", "read_json_file"]

log = logging.getLogger(__name__)

DB_FILE = "kubenas.db"
MARKER_FILE = "experiment.json"
RESULTS_FILE = "results.json"
# Bounds on what one request reads from files a user or a trial wrote.
_MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_MAX_GENOTYPE_BYTES = 1024 * 1024
_BUSY_TIMEOUT_MS = 2000
# libyaml when PyYAML has it (a spec is parsed on every experiment answer)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UnreadableRun(SourceError):
    """The run's store cannot be read (corrupt, not SQLite, permissions); the message says why."""


def read_json_file(path: Path, limit: int = _MAX_DOCUMENT_BYTES) -> Any:
    """A JSON document, or None when it is missing, too large, or not (yet) valid JSON."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return None
    if len(data) > limit:
        log.warning("%s is larger than %d bytes; ignored", path, limit)
        return None
    try:
        return json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        return None


@contextmanager
def _snapshot(db: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection inside one read transaction (a consistent snapshot)."""
    uri = "file:" + quote(str(db.resolve())) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise UnreadableRun(f"{str(db)!r}: cannot open read-only: {exc}") from None
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN")
        yield conn
    except sqlite3.Error as exc:
        text = str(exc)
        if "no such table" in text:  # a run that has not created its schema yet
            raise _NoSchema() from None
        if "not a database" in text:
            raise UnreadableRun(f"{str(db)!r}: not a SQLite database (corrupt or another kind of file)") from None
        raise UnreadableRun(f"{str(db)!r}: cannot read: {text}") from None
    finally:
        conn.close()


class _NoSchema(Exception):
    pass


def _pid_alive(pid: Any) -> bool:
    """Whether `pid` is a live kubenas process (not a later process that reused the number)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except (OSError, ProcessLookupError):
            return False
        return True  # no /proc (macOS): trust the pid
    return b"kubenas" in cmdline


def _mtime_rfc3339(path: Path) -> str | None:
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _trial_view(data: Mapping[str, Any]) -> TrialView:
    observation = data.get("observation") or {}
    return TrialView(
        name=str(data.get("name", "")),
        condition=str(data.get("condition", "Unknown")),
        assignments={str(k): str(v) for k, v in (data.get("assignments") or {}).items()},
        observation={str(k): v if isinstance(v, (int, float, str)) else str(v) for k, v in observation.items()},
        start_time=data.get("start_time"),
        completion_time=data.get("completion_time"),
        duration_s=data.get("duration_s") if isinstance(data.get("duration_s"), (int, float)) else None,
        message=str(data.get("message") or ""),
    )


@dataclass(frozen=True)
class _Run:
    """One work directory and what its small files say."""

    id: str
    path: Path

    @property
    def db(self) -> Path:
        return self.path / DB_FILE

    def marker(self) -> dict[str, Any]:
        data = read_json_file(self.path / MARKER_FILE, 1024 * 1024)
        return data if isinstance(data, dict) else {}

    def results(self) -> dict[str, Any]:
        data = read_json_file(self.path / RESULTS_FILE)
        return data if isinstance(data, dict) else {}


class LocalSource(DataSource):
    """Every run in `roots`: a root that is a run itself, or the runs one level below it
    (`runs/` holds `runs/<experiment>/`). Rescanned on each list, so new runs appear."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = [Path(r) for r in roots] or [Path("runs")]

    # --- discovery ----------------------------------------------------------------------
    @staticmethod
    def _is_run(path: Path) -> bool:
        return (path / DB_FILE).is_file() or (path / MARKER_FILE).is_file()

    def _scan(self) -> tuple[list[_Run], list[str]]:
        found: list[Path] = []
        problems: list[str] = []
        for root in self.roots:
            if not root.exists():
                problems.append(f"WORKDIR {str(root)!r}: does not exist")
                continue
            if not root.is_dir():
                problems.append(f"WORKDIR {str(root)!r}: is not a directory (give a kubenas run "
                                f"--workdir, or a directory of them such as runs/)")
                continue
            if self._is_run(root):
                found.append(root)
                continue
            try:
                children = sorted(p for p in root.iterdir() if p.is_dir() and self._is_run(p))
            except OSError as exc:
                problems.append(f"WORKDIR {str(root)!r}: cannot be listed: {exc.strerror or exc}")
                continue
            if not children:
                problems.append(f"WORKDIR {str(root)!r}: not a kubenas run (no {DB_FILE} or {MARKER_FILE} "
                                f"in it or in its subdirectories)")
            found.extend(children)
        runs: list[_Run] = []
        used: set[str] = set()
        for path in found:
            base = path.resolve().name or "run"
            key, n = base, 2
            while key in used:
                key, n = f"{base}-{n}", n + 1
            used.add(key)
            runs.append(_Run(key, path))
        return runs, problems

    def _run(self, experiment_id: str) -> _Run:
        runs, _ = self._scan()
        for run in runs:
            if run.id == experiment_id:
                return run
        raise NotFound("experiment", experiment_id, [r.id for r in runs])

    def problems(self) -> list[str]:
        return self._scan()[1]

    # --- reading one run ----------------------------------------------------------------
    def _spec(self, run: _Run, marker: Mapping[str, Any], results: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
        if isinstance(results.get("spec"), dict):
            return results["spec"], f"{RESULTS_FILE} of {run.path}"
        file = marker.get("file")
        if not isinstance(file, str):
            return None, f"unknown: {MARKER_FILE} names no Experiment file"
        try:
            with open(file, "rb") as handle:
                text = handle.read(_MAX_DOCUMENT_BYTES)
            document = yaml.load(text, Loader=_YAML_LOADER)
        except (OSError, yaml.YAMLError) as exc:
            return None, f"unreadable: {file} ({getattr(exc, 'strerror', None) or exc.__class__.__name__})"
        if not isinstance(document, dict):
            return None, f"unreadable: {file} holds no Experiment document"
        return document, f"{file} as it is now (the run read it when it started)"

    @staticmethod
    def _objective(spec: Mapping[str, Any] | None, results: Mapping[str, Any]) -> Objective | None:
        objective = objective_of(spec)
        block = results.get("objective")
        if objective is None and isinstance(block, dict) and block.get("metric"):
            kind = ObjectiveType.MINIMIZE if block.get("type") == "minimize" else ObjectiveType.MAXIMIZE
            goal = block.get("goal")
            objective = Objective(kind, str(block["metric"]), goal if isinstance(goal, (int, float)) else None)
        return objective

    def _read_trials(self, run: _Run, name: str | None) -> tuple[list[TrialView], str | None]:
        """The run's trials (of experiment `name`, or of the first one stored) and that name."""
        if not run.db.is_file():
            return [], name
        try:
            with _snapshot(run.db) as conn:
                rows = conn.execute("SELECT experiment, data FROM trials ORDER BY seq").fetchall()
        except _NoSchema:
            return [], name
        if name is None and rows:
            name = str(rows[0][0])
        trials = []
        for experiment, data in rows:
            if experiment != name:
                continue
            try:
                trials.append(_trial_view(json.loads(data)))
            except (ValueError, TypeError, AttributeError):
                log.warning("%s: a stored trial of %r is not readable JSON; skipped", run.db, experiment)
        return trials, name

    def _summary(self, run: _Run) -> tuple[ExperimentSummary, list[TrialView], dict[str, Any] | None, str,
                                           dict[str, Any]]:
        marker, results = run.marker(), run.results()
        spec, spec_source = self._spec(run, marker, results)
        name = marker.get("experiment") if isinstance(marker.get("experiment"), str) else None
        status, reason = "", ""
        try:
            trials, name = self._read_trials(run, name)
        except UnreadableRun as exc:
            trials, status, reason = [], "Unreadable", str(exc)
        objective = self._objective(spec, results)
        best = best_trial(objective, trials)
        if not status:
            status, reason = self._status(run, marker, results, trials)
        algorithm = ((spec or {}).get("spec") or {}).get("algorithm") or {}
        starts = [t.start_time for t in trials if t.start_time]
        created = min(starts) if starts else _mtime_rfc3339(run.path / MARKER_FILE) or _mtime_rfc3339(run.db)
        summary = ExperimentSummary(
            id=run.id,
            name=name or str(results.get("experiment") or run.path.name),
            algorithm=str(algorithm.get("algorithmName") if isinstance(algorithm, dict) else "")
            or str(results.get("algorithm") or ""),
            status=status,
            reason=reason,
            objective_metric=objective.metric_name if objective else "",
            objective_type=objective.type.value if objective else "",
            best_trial=best.name if best else None,
            best_value=best.observation.get(objective.metric_name) if best and objective else None,
            counts=count_conditions(trials),
            created=created,
            location=str(run.path),
        )
        return summary, trials, spec, spec_source, results

    @staticmethod
    def _status(run: _Run, marker: Mapping[str, Any], results: Mapping[str, Any],
                trials: Sequence[TrialView]) -> tuple[str, str]:
        if _pid_alive(marker.get("pid")):
            return ("Running", "") if run.db.is_file() else ("Starting", "the run is starting")
        final = results.get("status")
        if isinstance(final, str) and final:
            return final, str(results.get("reason") or results.get("message") or "")
        if not run.db.is_file():
            return "Stopped", f"no {DB_FILE}: the run ended before its first trial"
        return "Stopped", f"the run is not running and wrote no {RESULTS_FILE} (killed?); kubenas run --resume continues it"

    # --- the interface ------------------------------------------------------------------
    def experiments(self) -> list[ExperimentSummary]:
        runs, _ = self._scan()
        summaries = [self._summary(run)[0] for run in runs]
        return sorted(summaries, key=lambda s: s.created or "", reverse=True)

    def experiment(self, experiment_id: str) -> ExperimentDetail:
        run = self._run(experiment_id)
        summary, trials, spec, spec_source, results = self._summary(run)
        reproducibility = results.get("reproducibility")
        spec_body = (spec or {}).get("spec") if isinstance(spec, dict) else None
        return ExperimentDetail(
            summary=summary,
            trials=trials,
            spec=spec,
            spec_source=spec_source,
            reproducibility=reproducibility if isinstance(reproducibility, dict) else None,
            early_stopping=isinstance(spec_body, dict) and bool(spec_body.get("earlyStopping")),
        )

    def curves(self, experiment_id: str) -> dict[str, dict[str, list[float]]]:
        run = self._run(experiment_id)
        trials, _ = self._read_trials(run, run.marker().get("experiment"))
        names = {t.name for t in trials}
        out: dict[str, dict[str, list[float]]] = {}
        if not run.db.is_file():
            return out
        try:
            with _snapshot(run.db) as conn:
                rows = conn.execute("SELECT trial_name, metric_name, value FROM observation_logs "
                                    "ORDER BY trial_name, time_us, id").fetchall()
        except _NoSchema:
            return out
        for trial, metric, value in rows:
            if trial not in names:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue  # "unavailable", a genotype: no point on a curve
            if number == number and abs(number) != float("inf"):
                out.setdefault(trial, {}).setdefault(metric, []).append(number)
        return out

    def trial(self, experiment_id: str, trial_name: str) -> TrialDetail:
        run = self._run(experiment_id)
        summary, trials, _, _, _ = self._summary(run)
        found = next((t for t in trials if t.name == trial_name), None)
        if found is None:
            raise NotFound("trial", trial_name, [t.name for t in trials])
        with _snapshot(run.db) as conn:
            logs = conn.execute("SELECT metric_name, value, time_stamp FROM observation_logs WHERE trial_name = ? "
                                "ORDER BY time_us, id", (trial_name,)).fetchall()
            row = conn.execute("SELECT data FROM trials WHERE experiment = ? AND name = ?",
                               (summary.name, trial_name)).fetchone()
        labels = {}
        if row is not None:
            try:
                labels = {str(k): str(v) for k, v in (json.loads(row[0]).get("labels") or {}).items()}
            except (ValueError, AttributeError):
                labels = {}
        hints: dict[str, Any] = {}
        genotype = read_json_file(self._trial_dir(run, trial_name) / "genotype.json", _MAX_GENOTYPE_BYTES)
        if genotype is not None:
            hints["genotype"] = genotype
        return TrialDetail(
            experiment=summary,
            trial=found,
            metric_logs=[MetricLogView(str(m), str(v), str(t)) for m, v, t in logs],
            status_history=self._history(found),
            labels=labels,
            nn_hints=hints,
        )

    @staticmethod
    def _history(trial: TrialView) -> list[StatusChange]:
        """What the store keeps of a local trial's life: its start and its end."""
        if trial.start_time is None:
            return [StatusChange(trial.condition, None, trial.message)]
        history = [StatusChange("Running", trial.start_time)]
        if trial.condition != "Running":
            history.append(StatusChange(trial.condition, trial.completion_time, trial.message))
        return history

    @staticmethod
    def _trial_dir(run: _Run, trial_name: str) -> Path:
        # Trial names come from the store, but a URL could still name "../x": only a plain name
        # is ever joined to the run's directory.
        if not trial_name or "/" in trial_name or trial_name in (".", ".."):
            return run.path / "trials" / "-"
        return run.path / "trials" / trial_name

    def log_tail(self, experiment_id: str, trial_name: str, max_bytes: int) -> LogTail:
        run = self._run(experiment_id)
        trials, _ = self._read_trials(run, run.marker().get("experiment"))
        if trial_name not in {t.name for t in trials}:
            raise NotFound("trial", trial_name, [t.name for t in trials])
        base = self._trial_dir(run, trial_name) / "stdout.log"
        # CappedLog's order: the first part, then .2 (older), then .1 (the latest output).
        parts = [p for p in (base, base.with_name(base.name + ".2"), base.with_name(base.name + ".1")) if p.is_file()]
        if not parts:
            return LogTail("", 0, False, True, "no output yet")
        chunks: list[bytes] = []
        size = sum(p.stat().st_size for p in parts)
        wanted = max_bytes
        for part in reversed(parts):
            if wanted <= 0:
                break
            try:
                with open(part, "rb") as handle:
                    end = handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, end - wanted))
                    data = handle.read(wanted)
            except OSError:
                continue
            chunks.insert(0, data)
            wanted -= len(data)
        text = b"".join(chunks).decode("utf-8", errors="replace")
        return LogTail(text, size, size > max_bytes)
