"""Trials and objectives as plain data, shared by the controller and the algorithms."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from kubenas import rfc3339

__all__ = ["OPTIMAL_CONDITIONS", "MetricStrategy", "Objective", "ObjectiveType", "TrialCondition", "TrialRecord",
           "best_of", "observe"]

T = TypeVar("T")


class ObjectiveType(str, Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class MetricStrategy(str, Enum):
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class TrialCondition(str, Enum):
    """Katib's trial conditions (TrialStatus.TrialConditionType on the wire)."""

    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    KILLED = "Killed"
    FAILED = "Failed"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    EARLY_STOPPED = "EarlyStopped"
    UNKNOWN = "Unknown"

    @property
    def finished(self) -> bool:
        return self not in (TrialCondition.CREATED, TrialCondition.RUNNING, TrialCondition.UNKNOWN)


@dataclass(frozen=True)
class Objective:
    type: ObjectiveType
    metric_name: str
    goal: float | None = None
    additional_metric_names: tuple[str, ...] = ()
    strategies: Mapping[str, MetricStrategy] = field(default_factory=dict)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return (self.metric_name, *self.additional_metric_names)

    def strategy(self, name: str) -> MetricStrategy:
        if name in self.strategies:
            return self.strategies[name]
        return MetricStrategy.MIN if self.type is ObjectiveType.MINIMIZE else MetricStrategy.MAX

    def better(self, a: float, b: float) -> bool:
        """True if `a` is strictly better than `b`."""
        return a < b if self.type is ObjectiveType.MINIMIZE else a > b

    def reached(self, value: float) -> bool:
        if self.goal is None:
            return False
        return value <= self.goal if self.type is ObjectiveType.MINIMIZE else value >= self.goal

    def reward(self, value: float) -> float:
        """Larger is better: the value itself, negated for minimize."""
        return -value if self.type is ObjectiveType.MINIMIZE else value


@dataclass(frozen=True)
class TrialRecord:
    """What an algorithm sees of one trial: its assignments, condition and observation.

    `metrics` holds numbers only (what algorithms use as rewards). `texts` holds metrics
    whose observation is text (a DARTS genotype) and `completion_time` (RFC 3339) when the
    trial ended; only the controller's logic reads those two."""

    name: str
    assignments: Mapping[str, str]
    condition: TrialCondition = TrialCondition.CREATED
    metrics: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)
    completion_time: str | None = None

    @classmethod
    def from_observation(cls, name: str, assignments: Mapping[str, str], condition: TrialCondition,
                         observation: Mapping[str, float | str], labels: Mapping[str, str] | None = None,
                         completion_time: str | None = None) -> TrialRecord:
        """A record whose observation may mix numbers and texts; each goes to its own field."""
        return cls(name=name, assignments=dict(assignments), condition=condition,
                   metrics={k: float(v) for k, v in observation.items() if not isinstance(v, str)},
                   labels=dict(labels or {}),
                   texts={k: v for k, v in observation.items() if isinstance(v, str)},
                   completion_time=completion_time)

    def value(self, objective: Objective) -> float | None:
        return self.metrics.get(objective.metric_name)


def observe(objective: Objective, points: Iterable[tuple[str, float | str]]) -> dict[str, float | str]:
    """Reduce a metric log (name, value) in time order to one value per metric, per strategy.

    A text value (a genotype) cannot be ordered: where one is involved the latest value wins."""
    out: dict[str, float | str] = {}
    for name, value in points:
        if name not in objective.metric_names:
            continue
        strategy = objective.strategy(name)
        current = out.get(name)
        if current is None or strategy is MetricStrategy.LATEST or isinstance(value, str) \
                or isinstance(current, str):
            out[name] = value
        elif strategy is MetricStrategy.MIN:
            out[name] = min(current, value)
        else:
            out[name] = max(current, value)
    return out


#: Conditions whose observation is trusted for the best trial and the goal check.
OPTIMAL_CONDITIONS = frozenset({TrialCondition.SUCCEEDED, TrialCondition.EARLY_STOPPED})


def best_of(objective: Objective, trials: Iterable[T], *, condition: Callable[[T], str],
            value: Callable[[T], float | str | None], completion_time: Callable[[T], str | None]) -> T | None:
    """The best trial by the objective among Succeeded/EarlyStopped ones; ties keep the first.

    One rule for every view of a trial (the runtimes' records, the dashboard's rows): `value`
    is the objective's observation, a number or a text. Texts (a DARTS `Best-Genotype`) cannot
    be compared: when no such trial has a numeric objective, the best is the most recently
    completed trial whose objective is text (by RFC 3339 completion time; trials without one
    count as earliest, later in `trials` wins ties).
    """
    best: T | None = None
    best_value: float | None = None
    latest_text: T | None = None
    latest_at = None
    for trial in trials:
        if condition(trial) not in OPTIMAL_CONDITIONS:
            continue
        observed = value(trial)
        if isinstance(observed, str):
            at = rfc3339.parse_or_earliest(completion_time(trial))
            if latest_at is None or at >= latest_at:
                latest_text, latest_at = trial, at
        elif observed is not None and (best_value is None or objective.better(observed, best_value)):
            best, best_value = trial, observed
    return best if best is not None else latest_text
