"""Grid search: every point of a finite grid, in a fixed order, each at most once.

HPO grid: the product of each parameter's `grid_values()` (first parameter slowest).
ENAS macro grid: the product over layers (layer 0 slowest) of every row
`[op_id, skip bits...]`, op ids ascending, skip bits counting up in binary.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from functools import partial

from kubenas.space import (
    NasConfig,
    ParameterSpec,
    ParameterType,
    SearchSpace,
    SpaceError,
    format_value,
    parse_number,
)
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import (
    Algorithm,
    Problem,
    SearchSpaceExhausted,
    Suggestion,
)
from suggestion.algorithms.sampling import (
    RANDOM_STATE,
    nas_assignments,
    nas_size,
    parameter_size,
    point_keys,
    rows_key,
)
from suggestion.algorithms.settings import parse_settings

__all__ = ["MAX_GRID_POINTS", "GridSearch", "grid_size"]

# Katib accepts random_state for grid too; the order is fixed, so it changes nothing.
SETTINGS = (RANDOM_STATE,)

# Beyond this a grid cannot be finished and every call near its end walks the whole grid.
MAX_GRID_POINTS = 1_000_000


class GridSearch(Algorithm):
    """Suggests the first `n` grid points that no trial in the history has used.

    Trials of any condition count as used (a failed point is not retried). When fewer
    than `n` unused points remain it suggests nothing and raises SearchSpaceExhausted
    with the number left, so the caller can ask again for exactly that many.
    """

    name = "grid"
    supports_nas = True
    description = "every point of a finite grid once, in a fixed order (double parameters need a step)"

    def validate(self, problem: Problem) -> None:
        parse_settings(problem.settings, SETTINGS)
        problem.space.check()
        grid_size(problem.space)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        parse_settings(problem.settings, SETTINGS)
        space = problem.space
        grid_size(space)
        if n <= 0:
            return []
        seen = point_keys(space, (t.assignments for t in history))
        out: list[Suggestion] = []
        for key, make in _points(space):
            if key in seen:
                continue
            seen.add(key)
            out.append(Suggestion(make()))
            if len(out) == n:
                return out
        raise SearchSpaceExhausted(n, len(out))


def _count(spec: ParameterSpec, index: int) -> int:
    count = parameter_size(spec)
    if count is None:
        raise SpaceError(
            f"parameters[{index}].feasibleSpace.step",
            None,
            f"grid search needs a step for double parameter {spec.name!r}",
        )
    return count


def grid_size(space: SearchSpace) -> int:
    """Number of grid points; SpaceError (naming the field) if the grid is undefined or too large."""
    if space.nas_config is not None:
        total = nas_size(space.nas_config)
        layers, ops = space.nas_config.graph_config.num_layers, len(space.nas_config.expanded())
        how = f"{ops} operations ^ {layers} layers x 2 ^ {layers * (layers - 1) // 2} skip bits"
        field = "nasConfig"
    else:
        counts = [_count(p, i) for i, p in enumerate(space.parameters)]
        total = math.prod(counts)
        how = " x ".join(f"{p.name}: {c}" for p, c in zip(space.parameters, counts))
        field = "parameters"
    if total > MAX_GRID_POINTS:
        raise SpaceError(
            field,
            f"{total} grid points ({how})",
            f"grid search enumerates at most {MAX_GRID_POINTS} points; "
            "narrow the space, add larger steps, or use random",
        )
    return total


def _canonical_values(spec: ParameterSpec) -> list[tuple[str, Hashable]]:
    """(wire text, identity) per grid value; identity matches `sampling.hpo_key`."""
    out: list[tuple[str, Hashable]] = []
    for value in spec.grid_values():
        text = format_value(value)
        out.append((text, text if spec.type is ParameterType.CATEGORICAL else float(parse_number(text))))
    return out


def _points(space: SearchSpace) -> Iterator[tuple[Hashable, Callable[[], dict[str, str]]]]:
    if space.nas_config is not None:
        yield from _nas_points(space.nas_config)
        return
    names = [p.name for p in space.parameters]
    grids = [_canonical_values(p) for p in space.parameters]
    for combo in itertools.product(*grids):
        key = tuple(identity for _text, identity in combo)
        # Assignments are built only for the points chosen, not for every point skipped.
        yield key, partial(_assignments, names, combo)


def _nas_points(nas: NasConfig) -> Iterator[tuple[Hashable, Callable[[], dict[str, str]]]]:
    ops = nas.expanded()
    # Each row with its compact text, so a candidate's key (`rows_key`) is one join.
    rows_per_layer = [
        [(row, rows_key([row])[1:-1]) for row in
         ((op, *bits) for op in range(len(ops)) for bits in itertools.product((0, 1), repeat=layer))]
        for layer in range(nas.graph_config.num_layers)
    ]
    for combo in itertools.product(*rows_per_layer):
        key = "[" + ",".join(text for _row, text in combo) + "]"
        yield key, partial(nas_assignments, nas, ops, [row for row, _text in combo])


def _assignments(names: list[str], combo: Sequence[tuple[str, Hashable]]) -> dict[str, str]:
    return {name: text for name, (text, _identity) in zip(names, combo)}
