"""Helpers shared by the model-free algorithms: seeding, sampling one value, point identity.

Everything here is stateless: an algorithm's randomness is derived from its `random_state`
and the history it is shown, so a restarted server (or a retried request) answers the same.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from kubenas.space import (
    Distribution,
    ExpandedOp,
    NasConfig,
    ParameterSpec,
    ParameterType,
    SearchSpace,
    format_value,
)
from kubenas.trials import TrialRecord
from suggestion.algorithms.encoding import ARCHITECTURE, NN_CONFIG, macro_assignments, rows_key

__all__ = [
    "ARCHITECTURE",
    "NN_CONFIG",
    "history_rng",
    "hpo_key",
    "hpo_keyer",
    "nas_assignments",
    "nas_key",
    "nas_size",
    "parameter_size",
    "point_keys",
    "rows_key",
    "sample_value",
    "snap",
    "space_size",
]

# A normal(ish) parameter still has to stay inside [min, max]: the bounds are +-3 sigma
# around their midpoint and draws outside are redrawn (then clipped, as a last resort).
_SIGMAS_PER_HALF_RANGE = 3.0
_MAX_REDRAWS = 64


def history_rng(seed: int | None, history: Sequence[TrialRecord]) -> random.Random:
    """A generator for one call: fixed by (seed, which trials exist) when seeded.

    Mixing in the trial names means each call with a grown history draws fresh points,
    while the same request twice (a retry) draws the same ones. Names are sorted because
    the controller's trial order is not part of the contract.
    """
    if seed is None:
        return random.Random()
    digest = hashlib.sha256("\0".join(sorted(t.name for t in history)).encode()).hexdigest()
    return random.Random(f"{seed}:{len(history)}:{digest}")


def _bounded(draw: Any, lo: float, hi: float) -> float:
    for _ in range(_MAX_REDRAWS):
        value = draw()
        if lo <= value <= hi:
            return float(value)
    return float(min(max(draw(), lo), hi))


def _uniform(rng: random.Random, lo: float, hi: float) -> float:
    # rng.uniform computes lo + (hi - lo) * u, which is inf for [-1e308, 1e308].
    u = rng.random()
    return min(max((1.0 - u) * lo + u * hi, lo), hi)


def _continuous(spec: ParameterSpec, rng: random.Random) -> float:
    lo, hi = float(spec.low), float(spec.high)
    dist = spec.feasible.distribution or Distribution.UNIFORM
    if dist is Distribution.UNIFORM:
        return _uniform(rng, lo, hi)
    if dist is Distribution.LOG_UNIFORM:
        return min(max(math.exp(_uniform(rng, math.log(lo), math.log(hi))), lo), hi)
    if dist is Distribution.NORMAL:
        # halves first: (hi - lo) overflows for bounds near the float limit
        mu, sigma = lo / 2 + hi / 2, (hi / 2 - lo / 2) / _SIGMAS_PER_HALF_RANGE
        return _bounded(lambda: rng.gauss(mu, sigma), lo, hi)
    llo, lhi = math.log(lo), math.log(hi)
    mu, sigma = (llo + lhi) / 2, (lhi - llo) / (2 * _SIGMAS_PER_HALF_RANGE)
    return _bounded(lambda: math.exp(rng.gauss(mu, sigma)), lo, hi)


def snap(spec: ParameterSpec, value: float) -> int | float:
    """Move a continuous draw onto the parameter's step grid (ints always have one)."""
    step = spec.step
    if spec.type is ParameterType.INT:
        lo, hi, k = int(spec.low), int(spec.high), int(step or 1)
        snapped = lo + k * round((value - lo) / k)
        return min(max(snapped, lo), lo + k * ((hi - lo) // k))
    if step is None:
        return value
    count = parameter_size(spec)
    assert count is not None
    index = min(max(round((value - float(spec.low)) / float(step)), 0), count - 1)
    return float(_grid_value(spec, index))


def _grid_value(spec: ParameterSpec, index: int) -> int | float:
    """`spec.grid_values()[index]` for int and stepped double parameters, without the list
    (an int over 0..2**31 would be a list of two billion values)."""
    if spec.type is ParameterType.INT:
        return int(spec.low) + index * int(spec.step or 1)
    step = float(spec.step or 0)
    digits = max(0, -math.floor(math.log10(step)) + 6)  # as grid_values() rounds
    low = float(spec.low)
    value = low + index * step
    value = value if math.isfinite(value) else 2 * (low / 2 + index * (step / 2))  # i * step overflowed
    rounded = value if abs(value) >= 2**53 else round(value, digits)
    return rounded if low <= rounded <= float(spec.high) else value  # as grid_values()


def sample_value(spec: ParameterSpec, rng: random.Random) -> str:
    """One value of `spec` in wire text, drawn per its distribution (uniform by default)."""
    if spec.type in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        return format_value(rng.choice(spec.grid_values()))
    uniform = spec.feasible.distribution in (None, Distribution.UNIFORM)
    if uniform and (spec.type is ParameterType.INT or spec.step is not None):
        # Exact uniform over the grid; rounding a float draw would halve the end points.
        count = parameter_size(spec)
        assert count is not None
        return format_value(_grid_value(spec, rng.randrange(count)))
    return format_value(snap(spec, _continuous(spec, rng)))


def parameter_size(spec: ParameterSpec) -> int | None:
    """How many values a parameter can take (None: a continuous double), without listing them."""
    if spec.type in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        return len(spec.feasible.list)
    step = spec.step
    if spec.type is ParameterType.INT:
        return (int(spec.high) - int(spec.low)) // int(step or 1) + 1
    if step is None:
        return None
    # halves: (high - low) overflows for bounds near the float limit
    return math.floor((float(spec.high) / 2 - float(spec.low) / 2) / float(step) * 2 + 1e-9) + 1


def nas_size(nas: NasConfig) -> int:
    """How many ENAS macro architectures (search_mode macro) a nasConfig has: ops^layers x 2^skip bits."""
    layers, ops = nas.graph_config.num_layers, len(nas.expanded())
    return ops**layers * 2 ** (layers * (layers - 1) // 2)


def space_size(space: SearchSpace) -> int | None:
    """How many distinct points a space has (None: infinitely many); NAS: the macro encoding.

    Other search modes have their own count: `nas_encoding(...).size`.
    """
    if space.nas_config is not None:
        return nas_size(space.nas_config)
    sizes = [parameter_size(p) for p in space.parameters]
    return None if None in sizes else math.prod(s for s in sizes if s is not None)


def _number_or_text(text: str) -> Hashable:
    # 3 and 3.0 must be one point; so must "0.10" and "0.1". Plain float() because this
    # runs for every parameter of every trial in the history on each call.
    try:
        return float(text)
    except ValueError:
        return text


def hpo_keyer(params: Sequence[ParameterSpec]) -> Callable[[Mapping[str, str]], Hashable | None]:
    """A function giving the identity of an HPO point (None if a parameter is missing)."""
    plan = [(p.name, p.type is ParameterType.CATEGORICAL) for p in params]

    def key(assignments: Mapping[str, str]) -> Hashable | None:
        try:
            return tuple([assignments[name] if as_text else _number_or_text(assignments[name])
                          for name, as_text in plan])
        except KeyError:
            return None

    return key


def hpo_key(params: Sequence[ParameterSpec], assignments: Mapping[str, str]) -> Hashable | None:
    """The identity of one HPO point (None if `assignments` lacks a parameter)."""
    return hpo_keyer(params)(assignments)


def nas_key(assignments: Mapping[str, str]) -> Hashable | None:
    """The identity of a NAS point: its architecture text without whitespace (`NasEncoding.key`).

    Our `to_json` and Katib's printed lists differ only in spacing, so this matches both
    without parsing every trial of a long history.
    """
    text = assignments.get(ARCHITECTURE)
    return None if text is None else "".join(text.split())


def point_keys(space: SearchSpace, records: Iterable[Mapping[str, str]]) -> set[Hashable]:
    """Identities of every readable point among `records` (assignment mappings)."""
    key = nas_key if space.is_nas else hpo_keyer(space.parameters)
    keys = {key(assignments) for assignments in records}
    keys.discard(None)
    return keys


def nas_assignments(nas: NasConfig, ops: Sequence[ExpandedOp], rows: Sequence[Sequence[int]]) -> dict[str, str]:
    """The `architecture` and `nn_config` assignments for one macro architecture.

    `ops` is `nas.expanded()`, passed in so a batch expands the operations once.
    """
    return macro_assignments(nas, ops, rows)
