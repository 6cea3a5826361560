"""Early-stopping rules as data, and the one decision both runtimes apply to a running trial.

An early-stopping service (Katib's `EarlyStopping.GetEarlyStoppingRules`) answers with
rules `metric <comparison> value, from step start_step`. Whoever watches a trial's metrics
(`kubenas run`'s runner, the cluster controller) feeds every reported value to a
`StopWatch`, which says when the trial must stop. Semantics (Katib's metrics collector):

- a rule is checked only once its metric has been reported at least `start_step` times;
- for the objective metric the value compared is the best reported so far (Katib's
  collector does this so that one noisy step does not stop a good trial); any other
  metric is compared as reported;
- a rule, once met, stays met; the trial stops when every rule has been met (Katib deletes
  met rules and stops when none is left). No rules never stop a trial.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kubenas.api.v1beta1 import api_pb2
from kubenas.errors import InvalidValue
from kubenas.trials import Objective, ObjectiveType

__all__ = [
    "Comparison",
    "RuleError",
    "StopRule",
    "StopWatch",
    "rule_from_dict",
    "rule_from_proto",
    "rule_to_dict",
    "rule_to_proto",
    "rules_met",
]


class RuleError(InvalidValue):
    """A rule that cannot be applied (a value that is not a number, an unknown comparison)."""


class Comparison(str, Enum):
    """Katib's ComparisonType; the text is what a Trial's spec.earlyStoppingRules holds."""

    EQUAL = "equal"
    LESS = "less"
    GREATER = "greater"

    def holds(self, value: float, threshold: float) -> bool:
        return _COMPARE[self](value, threshold)


_COMPARE = {
    Comparison.EQUAL: lambda v, t: v == t,
    Comparison.LESS: lambda v, t: v < t,
    Comparison.GREATER: lambda v, t: v > t,
}
_TO_PROTO = {Comparison.EQUAL: api_pb2.EQUAL, Comparison.LESS: api_pb2.LESS, Comparison.GREATER: api_pb2.GREATER}
_FROM_PROTO = {number: comparison for comparison, number in _TO_PROTO.items()}


@dataclass(frozen=True)
class StopRule:
    """Stop when `metric` compares true against `value`, once reported `start_step` times."""

    metric: str
    value: float
    comparison: Comparison
    start_step: int = 0

    def __post_init__(self) -> None:
        if not self.metric:
            raise RuleError("name", self.metric, "must name a metric")
        if not math.isfinite(self.value):
            raise RuleError("value", self.value, "must be a finite number")
        if self.start_step < 0:
            raise RuleError("startStep", self.start_step, "must be >= 0")


def rule_to_proto(rule: StopRule) -> api_pb2.EarlyStoppingRule:
    return api_pb2.EarlyStoppingRule(name=rule.metric, value=repr(rule.value),
                                     comparison=_TO_PROTO[rule.comparison], start_step=rule.start_step)


def _number(text: str, field: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise RuleError(field, text, "must be a number") from None
    if not math.isfinite(value):
        raise RuleError(field, text, "must be a finite number")
    return value


def rule_from_proto(msg: api_pb2.EarlyStoppingRule) -> StopRule:
    """Raises RuleError for an unknown comparison or a value that is not a number."""
    if msg.comparison not in _FROM_PROTO:
        raise RuleError("comparison", msg.comparison, "must be EQUAL, LESS or GREATER")
    return StopRule(msg.name, _number(msg.value, "value"), _FROM_PROTO[msg.comparison], msg.start_step)


def rule_to_dict(rule: StopRule) -> dict[str, Any]:
    """Katib's JSON form (Suggestion status / Trial spec `earlyStoppingRules` items)."""
    return {"name": rule.metric, "value": repr(rule.value), "comparison": rule.comparison.value,
            "startStep": rule.start_step}


def rule_from_dict(data: Mapping[str, Any]) -> StopRule:
    try:
        comparison = Comparison(str(data.get("comparison", "")).lower())
    except ValueError:
        raise RuleError("comparison", data.get("comparison"), "must be one of equal, less, greater") from None
    step = data.get("startStep", 0)
    if not isinstance(step, int) or isinstance(step, bool):
        raise RuleError("startStep", step, "must be an integer")
    return StopRule(str(data.get("name") or ""), _number(data.get("value", ""), "value"), comparison, step)


class _Track:
    __slots__ = ("best", "count", "met")

    def __init__(self) -> None:
        self.count = 0
        self.best: float | None = None
        self.met = False


class StopWatch:
    """Watches one trial's reported values against a fixed set of rules.

    Feed values in report order with `feed`; `stop` turns True (and stays) once every rule
    has been met. Costs O(1) per value. Not thread-safe: one watcher per trial, one thread.
    """

    def __init__(self, rules: Sequence[StopRule], objective: Objective) -> None:
        self.rules = tuple(rules)
        self._objective_metric = objective.metric_name
        self._maximize = objective.type is ObjectiveType.MAXIMIZE
        self._tracks = [_Track() for _ in self.rules]
        self._by_metric: dict[str, list[int]] = {}
        for i, rule in enumerate(self.rules):
            self._by_metric.setdefault(rule.metric, []).append(i)
        self.stop = False

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset(self._by_metric)

    def feed(self, metric: str, value: float) -> bool:
        """Account one reported value; True when the trial must stop now (or already had to)."""
        indices = self._by_metric.get(metric)
        if indices is None or self.stop or not math.isfinite(value):
            return self.stop
        for i in indices:
            rule, track = self.rules[i], self._tracks[i]
            track.count += 1
            compared = value
            if metric == self._objective_metric:
                if track.best is None or (value > track.best if self._maximize else value < track.best):
                    track.best = value
                compared = track.best
            if not track.met and track.count >= rule.start_step and rule.comparison.holds(compared, rule.value):
                track.met = True
        self.stop = bool(self._tracks) and all(t.met for t in self._tracks)
        return self.stop

    def feed_all(self, points: Iterable[tuple[str, float | str]]) -> bool:
        """Feed many (metric, value) pairs; text values are skipped."""
        for metric, value in points:
            if not isinstance(value, str):
                self.feed(metric, value)
        return self.stop


def rules_met(rules: Sequence[StopRule], objective: Objective, points: Iterable[tuple[str, float | str]]) -> bool:
    """True if a trial that reported `points` (metric, value, in report order) must stop under `rules`."""
    if not rules:
        return False
    return StopWatch(rules, objective).feed_all(points)
