"""What the dashboard shows, and the one interface every place it reads from implements.

A `DataSource` answers three questions — which experiments are there, what is in one
experiment, what is in one trial — with plain frozen data (`to_json()` for the API). The
local source reads `kubenas run` work directories; the cluster source reads the Kubernetes
API and the DBManager. Pages and the JSON API see only this module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kubenas.trials import Objective, ObjectiveType, TrialCondition, best_of

__all__ = [
    "DataSource",
    "ExperimentDetail",
    "ExperimentSummary",
    "LogTail",
    "MetricLogView",
    "NotFound",
    "SourceError",
    "StatusChange",
    "TrialDetail",
    "TrialView",
    "best_trial",
]

# Trials whose objective counts (Katib's rule: EarlyStopped trials keep what they reported).


class SourceError(Exception):
    """The source cannot answer now (a store that cannot be read, an API that does not
    answer); the message names what and why. Pages show it; the server keeps running."""


class NotFound(LookupError):
    """An experiment or trial the source does not hold; the message names it and what exists."""

    def __init__(self, what: str, value: str, known: Sequence[str]) -> None:
        self.what, self.value = what, value
        shown = ", ".join(repr(k) for k in list(known)[:10]) or "none"
        more = f" and {len(known) - 10} more" if len(known) > 10 else ""
        super().__init__(f"no {what} {value[:200]!r}; known: {shown}{more}")


@dataclass(frozen=True)
class TrialView:
    """One trial as the tables and charts show it."""

    name: str
    condition: str
    assignments: Mapping[str, str] = field(default_factory=dict)
    observation: Mapping[str, float | str] = field(default_factory=dict)
    start_time: str | None = None
    completion_time: str | None = None
    duration_s: float | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies, the larger part of a 1,000-trial answer
        return {"name": self.name, "condition": self.condition, "assignments": dict(self.assignments),
                "observation": dict(self.observation), "start_time": self.start_time,
                "completion_time": self.completion_time, "duration_s": self.duration_s, "message": self.message}


@dataclass(frozen=True)
class ExperimentSummary:
    """A row of the experiment list. `id` is the URL key (unique within the source)."""

    id: str
    name: str
    algorithm: str
    status: str                      # Running | Succeeded | Failed | Interrupted | Stopped | Starting | Unreadable
    reason: str
    objective_metric: str
    objective_type: str              # maximize | minimize | "" when unknown
    best_trial: str | None
    best_value: float | str | None
    counts: Mapping[str, int]
    created: str | None              # RFC 3339
    location: str                    # a work directory, or namespace/name

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = dict(self.counts)
        return data


@dataclass(frozen=True)
class ExperimentDetail:
    """Everything the experiment page draws, except the intermediate curves (`curves`)."""

    summary: ExperimentSummary
    trials: Sequence[TrialView]
    spec: Mapping[str, Any] | None   # the Experiment as a document (YAML keys), None when unknown
    spec_source: str                 # where the spec was read from, for the reader
    reproducibility: Mapping[str, Any] | None
    early_stopping: bool

    @property
    def is_nas(self) -> bool:
        """Whether the spec has a nasConfig (its trials have architectures to draw)."""
        body = (self.spec or {}).get("spec")
        return isinstance(body, Mapping) and bool(body.get("nasConfig"))

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary.to_json(),
            "trials": [t.to_json() for t in self.trials],
            "spec": self.spec,
            "spec_source": self.spec_source,
            "reproducibility": self.reproducibility,
            "early_stopping": self.early_stopping,
        }


@dataclass(frozen=True)
class MetricLogView:
    metric: str
    value: str
    time_stamp: str


@dataclass(frozen=True)
class StatusChange:
    condition: str
    time: str | None
    message: str = ""


@dataclass(frozen=True)
class TrialDetail:
    experiment: ExperimentSummary
    trial: TrialView
    metric_logs: Sequence[MetricLogView]
    status_history: Sequence[StatusChange]
    labels: Mapping[str, str]
    nn_hints: Mapping[str, Any]      # what the architecture drawing needs beyond assignments (genotype text)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.to_json(),
            "trial": self.trial.to_json(),
            "metric_logs": [asdict(m) for m in self.metric_logs],
            "status_history": [asdict(s) for s in self.status_history],
            "labels": dict(self.labels),
        }


@dataclass(frozen=True)
class LogTail:
    """The end of a trial's output. `available` is False where the source has no log (a
    cluster trial: its pod log is read with kubectl), with `note` saying so."""

    text: str
    size: int
    truncated: bool
    available: bool = True
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DataSource(ABC):
    """Read-only access to experiments. Calls are made from the server's worker threads,
    several at once, while the experiments are being written: a source never writes,
    never holds a lock a run waits for, and reads each answer from one consistent snapshot."""

    @abstractmethod
    def experiments(self) -> list[ExperimentSummary]:
        """Every experiment, newest first."""

    @abstractmethod
    def problems(self) -> list[str]:
        """Why something given to the source shows no experiment (a directory that is not a
        kubenas run, an unreachable API); empty when all is well."""

    @abstractmethod
    def experiment(self, experiment_id: str) -> ExperimentDetail:
        """One experiment; raises NotFound."""

    @abstractmethod
    def curves(self, experiment_id: str) -> dict[str, dict[str, list[float]]]:
        """Per trial, per numeric metric, its reported values in report order (the steps)."""

    @abstractmethod
    def trial(self, experiment_id: str, trial_name: str) -> TrialDetail:
        """One trial with its metric logs and status history; raises NotFound."""

    @abstractmethod
    def log_tail(self, experiment_id: str, trial_name: str, max_bytes: int) -> LogTail:
        """The last `max_bytes` of the trial's output; raises NotFound."""

    def close(self) -> None:  # noqa: B027 (most sources hold nothing to release)
        """Release clients and connections."""


def best_trial(objective: Objective | None, trials: Sequence[TrialView]) -> TrialView | None:
    """The best trial by the objective (`kubenas.trials.best_of`, the rule both runtimes use)."""
    if objective is None:
        return None
    return best_of(objective, trials, condition=lambda t: t.condition,
                   value=lambda t: t.observation.get(objective.metric_name), completion_time=lambda t: t.completion_time)


def count_conditions(trials: Sequence[TrialView]) -> dict[str, int]:
    """Trial counts for the list: total and one per condition (Katib's names, lower-cased)."""
    counts = {"total": len(trials), **{condition.value: 0 for condition in TrialCondition}}
    for trial in trials:
        counts[trial.condition] = counts.get(trial.condition, 0) + 1
    return counts


def objective_of(document: Mapping[str, Any] | None) -> Objective | None:
    """The objective of an Experiment document (spec.objective), None when it has none."""
    spec = (document or {}).get("spec") if isinstance(document, Mapping) else None
    objective = spec.get("objective") if isinstance(spec, Mapping) else None
    if not isinstance(objective, Mapping) or not objective.get("objectiveMetricName"):
        return None
    kind = str(objective.get("type", "maximize")).lower()
    goal = objective.get("goal")
    return Objective(ObjectiveType.MINIMIZE if kind == "minimize" else ObjectiveType.MAXIMIZE,
                     str(objective["objectiveMetricName"]),
                     float(goal) if isinstance(goal, (int, float)) else None,
                     tuple(str(m) for m in objective.get("additionalMetricNames") or ()))
