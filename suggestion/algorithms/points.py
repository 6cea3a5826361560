"""One view of a search space for the model-based algorithms (evolution, bayesian, tpe).

A point is a tuple with one value per `Dimension`: an HPO space has one dimension per
parameter, a NAS space one per choice of its `NasEncoding` (an op, an input, a skip bit).
Categorical and discrete values are held as indices into their list, int and double
values as numbers. The algorithms are written once against this view, so each of them
serves HPO parameters and every NAS search mode alike.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import TYPE_CHECKING, Any

from kubenas import rfc3339
from kubenas.space import (
    Distribution,
    ParameterSpec,
    ParameterType,
    SearchSpace,
    format_value,
    parse_number,
)
from kubenas.trials import Objective, TrialRecord
from suggestion.algorithms.encoding import NasEncoding, check_hpo_settings, nas_encoding
from suggestion.algorithms.reward import reward
from suggestion.algorithms.sampling import sample_value, snap, space_size

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CATEGORICAL",
    "FLOAT",
    "INT",
    "ORDINAL",
    "Dimension",
    "Evaluated",
    "HistoryView",
    "HpoPoints",
    "NasPoints",
    "Point",
    "PointSpace",
    "point_space",
    "read_history",
]

Point = tuple[Any, ...]

CATEGORICAL = "categorical"  # unordered: the value is an index into `size` alternatives
ORDINAL = "ordinal"  # a discrete parameter: an index into `values`, its numbers in list order
INT = "int"
FLOAT = "float"

# A Gaussian mutation step, as a fraction of the (log-)range of the parameter.
_MUTATION_SIGMA = 0.15
_MUTATION_TRIES = 16
# In a small finite space a fresh random draw often repeats a tried point.
_RANDOM_TRIES = 64


@dataclass(frozen=True)
class Dimension:
    """One coordinate of a point.

    `group` is what evolution picks first when mutating: "parameter" for HPO, the
    encoding's choice kind ("op", "input", "skip") for NAS.
    """

    name: str
    kind: str
    size: int = 0
    values: tuple[float, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    group: str = "parameter"
    spec: ParameterSpec | None = field(default=None, compare=False)

    @property
    def indexed(self) -> bool:
        return self.kind in (CATEGORICAL, ORDINAL)

    @property
    def mutable(self) -> bool:
        """Whether the dimension has a second value to move to."""
        return self.size > 1 if self.indexed else self.low < self.high

    def unit(self, value: Any) -> float:
        """Position in [0, 1] of a numeric or ordinal value (log scale where declared)."""
        if self.kind == ORDINAL:
            lo, hi, v = min(self.values), max(self.values), self.values[int(value)]
        else:
            lo, hi, v = self.low, self.high, float(value)
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        # Halves: hi - lo overflows for bounds near the float limit.
        return 0.0 if hi <= lo else min(max((v / 2 - lo / 2) / (hi / 2 - lo / 2), 0.0), 1.0)

    def from_unit(self, u: float) -> Any:
        """The int/double value nearest to unit position `u` (on its step grid)."""
        u = min(max(u, 0.0), 1.0)
        lo, hi = (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)
        raw = (1.0 - u) * lo + u * hi
        raw = math.exp(raw) if self.log else raw
        raw = min(max(raw, self.low), self.high)
        assert self.spec is not None
        return snap(self.spec, raw)


class PointSpace(ABC):
    """Dimensions plus the codec between points and wire assignments."""

    def __init__(self, dims: Sequence[Dimension]) -> None:
        self.dims: tuple[Dimension, ...] = tuple(dims)
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(self.dims):
            if d.mutable:
                groups.setdefault(d.group, []).append(i)
        self._mutable_groups = [groups[g] for g in sorted(groups)]

    @property
    @abstractmethod
    def size(self) -> int | None:
        """How many distinct points there are (None: infinitely many)."""

    @abstractmethod
    def random(self, rng: Random) -> Point:
        """A random point, drawn as the `random` algorithm draws."""

    @abstractmethod
    def assignments(self, point: Point) -> dict[str, str]:
        """Wire assignments of a point."""

    @abstractmethod
    def decode(self, assignments: Mapping[str, str]) -> Point | None:
        """The point of a trial's assignments, or None when they do not fit this space."""

    def key(self, point: Point) -> Hashable:
        """Identity for de-duplication (3 and 3.0 are one value)."""
        return tuple(v if d.indexed else float(v) for d, v in zip(self.dims, point))

    def mutate(self, point: Point, rng: Random) -> Point:
        """`point` with exactly one coordinate changed (the point itself when none can be).

        A group (HPO: the parameters; NAS: op, input or skip choices) is picked uniformly,
        then one of its dimensions, as Real et al. pick an op or a hidden-state mutation.
        Indexed values move to another index; numbers take a Gaussian step of
        `_MUTATION_SIGMA` of their (log) range, snapped to their grid.
        """
        if not self._mutable_groups:
            return point
        group = self._mutable_groups[rng.randrange(len(self._mutable_groups))]
        i = group[rng.randrange(len(group))]
        out = list(point)
        out[i] = _mutate_value(self.dims[i], point[i], rng)
        return tuple(out)

    def features(self, points: Sequence[Point]) -> np.ndarray:
        """Model inputs in [0, 1]: one-hot per categorical, unit position otherwise."""
        import numpy as np

        columns: list[np.ndarray] = []
        for j, d in enumerate(self.dims):
            if d.kind == CATEGORICAL:
                onehot = np.zeros((len(points), d.size))
                onehot[np.arange(len(points)), [p[j] for p in points]] = 1.0
                columns.append(onehot)
            else:
                columns.append(np.array([[d.unit(p[j])] for p in points], dtype=float).reshape(-1, 1))
        return np.hstack(columns) if columns else np.zeros((len(points), 0))

    def fresh(self, make: Callable[[], Point], seen: set[Hashable], rng: Random,
              tries: int = _MUTATION_TRIES) -> Point:
        """A point from `make` not in `seen` (then a random unseen one), added to `seen`."""
        for _ in range(tries):
            point = make()
            key = self.key(point)
            if key not in seen:
                seen.add(key)
                return point
        return self.random_unseen(seen, rng)

    def random_unseen(self, seen: set[Hashable], rng: Random) -> Point:
        """A random point, redrawn while it repeats `seen` and unseen points remain."""
        size = self.size
        tries = _RANDOM_TRIES if size is None or len(seen) < size else 1
        for _ in range(tries):
            point = self.random(rng)
            key = self.key(point)
            if key not in seen:
                break
        seen.add(key)
        return point


def _mutate_value(d: Dimension, value: Any, rng: Random) -> Any:
    if d.indexed:
        other = rng.randrange(d.size - 1)
        return other if other < value else other + 1
    u = d.unit(value)
    for _ in range(_MUTATION_TRIES):
        new = d.from_unit(u + rng.gauss(0.0, _MUTATION_SIGMA))
        if new != value:
            return new
    # A step too small for a coarse grid: move to the neighbouring grid value instead.
    assert d.spec is not None
    if d.kind == FLOAT and d.spec.step is None:
        return d.from_unit(rng.random())
    step = float(d.spec.step or 1)
    up = value + step <= d.high and (value - step < d.low or rng.random() < 0.5)
    return snap(d.spec, value + step if up else value - step)


class HpoPoints(PointSpace):
    """One dimension per parameter; categorical/discrete as indices, numbers as numbers."""

    def __init__(self, params: Sequence[ParameterSpec]) -> None:
        self.params = tuple(params)
        self._space = SearchSpace(parameters=self.params)
        super().__init__([_hpo_dimension(p) for p in self.params])

    @property
    def size(self) -> int | None:
        return space_size(self._space)

    def random(self, rng: Random) -> Point:
        # Drawn per the parameter's distribution, exactly as the random algorithm does.
        point = self.decode({p.name: sample_value(p, rng) for p in self.params})
        assert point is not None
        return point

    def assignments(self, point: Point) -> dict[str, str]:
        out: dict[str, str] = {}
        for p, d, v in zip(self.params, self.dims, point):
            out[p.name] = p.feasible.list[v] if d.indexed else format_value(v)
        return out

    def decode(self, assignments: Mapping[str, str]) -> Point | None:
        out: list[Any] = []
        for p, d in zip(self.params, self.dims):
            text = assignments.get(p.name)
            if text is None or not p.contains(text):
                return None
            if d.kind == CATEGORICAL:
                out.append(p.feasible.list.index(text))
            elif d.kind == ORDINAL:
                number = parse_number(text)
                out.append(min(range(d.size), key=lambda i: abs(d.values[i] - number)))
            elif d.kind == INT:
                out.append(int(parse_number(text)))
            else:
                out.append(float(parse_number(text)))
        return tuple(out)


def _hpo_dimension(p: ParameterSpec) -> Dimension:
    if p.type is ParameterType.CATEGORICAL:
        return Dimension(p.name, CATEGORICAL, size=len(p.feasible.list), spec=p)
    log = p.feasible.distribution in (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL)
    if p.type is ParameterType.DISCRETE:
        # Ordered by value so distances (and mutations' neighbours) mean something; the
        # index still refers to the position in the list as written.
        numbers = tuple(float(parse_number(v)) for v in p.feasible.list)
        return Dimension(p.name, ORDINAL, size=len(numbers), values=numbers, spec=p)
    kind = INT if p.type is ParameterType.INT else FLOAT
    return Dimension(p.name, kind, low=float(p.low), high=float(p.high), log=log, spec=p)


class NasPoints(PointSpace):
    """One categorical dimension per choice of a `NasEncoding`; points are its vectors."""

    def __init__(self, encoding: NasEncoding) -> None:
        self.encoding = encoding
        super().__init__([Dimension(c.name, CATEGORICAL, size=c.size, group=c.kind) for c in encoding.choices])

    @property
    def size(self) -> int | None:
        return self.encoding.size

    def random(self, rng: Random) -> Point:
        return self.encoding.random_vector(rng)

    def assignments(self, point: Point) -> dict[str, str]:
        return self.encoding.encode(point)

    def decode(self, assignments: Mapping[str, str]) -> Point | None:
        try:
            return self.encoding.decode(assignments)
        except ValueError:
            return None

    def key(self, point: Point) -> Hashable:
        return self.encoding.key(point)


def point_space(space: SearchSpace, settings: Mapping[str, Any]) -> PointSpace:
    """The view of `space` under parsed `settings` (a mapping holding `search_mode` and `num_nodes`).

    Raises SpaceError for a malformed space, InvalidSettings when a NAS setting is given
    for an HPO space or the nasConfig does not fit the search mode.
    """
    if space.nas_config is not None:
        return NasPoints(nas_encoding(space.nas_config, settings))
    space.check()
    check_hpo_settings(space, settings)
    return HpoPoints(space.parameters)


@dataclass(frozen=True)
class Evaluated:
    point: Point
    reward: float
    trial: TrialRecord


@dataclass(frozen=True)
class HistoryView:
    """What the model-based algorithms read from a request's trials.

    `evaluated` is ordered oldest first (completion time, then name); `pending` holds the
    points of trials still running; `seen` the keys of every readable point of any trial.
    """

    evaluated: tuple[Evaluated, ...]
    pending: tuple[Point, ...]
    seen: frozenset[Hashable]


def read_history(points: PointSpace, objective: Objective, history: Iterable[TrialRecord]) -> HistoryView:
    """Sort the history into evaluated and pending points; unreadable trials are skipped.

    A trial whose assignments do not fit the space (another space's trial) is ignored.
    """
    evaluated: list[Evaluated] = []
    pending: list[Point] = []
    seen: set[Hashable] = set()
    for trial in history:
        point = points.decode(trial.assignments)
        if point is None:
            continue
        seen.add(points.key(point))
        value = reward(trial, objective)
        if value is not None:
            evaluated.append(Evaluated(point, value, trial))
        elif not trial.condition.finished:
            pending.append(point)
    evaluated.sort(key=lambda e: (_completion(e.trial), e.trial.name))
    return HistoryView(tuple(evaluated), tuple(pending), frozenset(seen))


def _completion(trial: TrialRecord) -> datetime:
    """When a trial finished; trials without a readable time count as the oldest."""
    return rfc3339.parse_or_earliest(trial.completion_time)
