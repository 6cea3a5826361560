"""A local trial's observation, folded as its metric points arrive (see `ObservationFold`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.store import InvalidLogError, parse_rfc3339
from kubenas.metrics import MetricPoint
from kubenas.trials import MetricStrategy, Objective, observe

__all__ = ["ObservationFold"]


class ObservationFold:
    """A trial's observation folded point by point, as `observe` folds the stored log in time
    order, so the runner need not read back a log of millions of points. Exact while the
    points arrive in time order (the usual case: lines stamped as they are read); a trial
    whose own time stamps go back is reduced from the store at its end instead."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self._names = set(objective.metric_names)
        self.value: dict[str, float | str] = {}
        self.in_order = True
        self._last = ""  # the latest time stamp seen, in now_rfc3339's form

    def feed(self, points: list[MetricPoint]) -> None:
        if not self.in_order or not self._still_in_order(points):
            return
        by_name: dict[str, list[float | str]] = {}
        for point in points:
            if point.name in self._names:
                by_name.setdefault(point.name, []).append(point.value)
        for name, values in by_name.items():
            self._fold(name, values)

    def _still_in_order(self, points: list[MetricPoint]) -> bool:
        """Advance the latest time stamp over `points`; False (for good) once one goes back."""
        for point in points:
            key = point.timestamp
            if key == self._last:
                continue
            if len(key) != 27 or key[-1] != "Z":  # not now_rfc3339's form, in which text order is time order
                try:
                    key = _canonical(parse_rfc3339(key))
                except InvalidLogError:
                    self.in_order = False
                    return False
            if key < self._last:
                self.in_order = False
                return False
            self._last = key
        return True

    def _fold(self, name: str, values: list[float | str]) -> None:
        # observe's fold, a batch at once: min/max over numbers in C; with text, value by value
        strategy = self.objective.strategy(name)
        if strategy is not MetricStrategy.LATEST and not any(isinstance(v, str) for v in values):
            values = [min(values) if strategy is MetricStrategy.MIN else max(values)]  # type: ignore[type-var]
        elif strategy is MetricStrategy.LATEST:
            values = values[-1:]
        pairs = [(name, v) for v in values]
        if name in self.value:
            pairs.insert(0, (name, self.value[name]))
        self.value.update(observe(self.objective, pairs))


def _canonical(micros: int) -> str:
    stamp = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")
