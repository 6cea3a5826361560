"""Grid search: every point of a finite grid, in a fixed order, each at most once.

HPO grid: the product of each parameter's `grid_values()` (first parameter slowest).
NAS grid: the product over the choices of the `search_mode` encoding, first choice
slowest and each counting up from 0. For macro that is every row `[op_id, skip bits...]`
per layer (layer 0 slowest), op ids ascending, skip bits counting up in binary; for
nb201 every primitive per edge in string order (edge 1<-0 slowest, primitives in YAML
order); micro grids exceed MAX_GRID_POINTS for all but the smallest cells.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from functools import partial

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_free import GridSettings
from kubenas.space import (
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
    InvalidSettings,
    Problem,
    SearchSpaceExhausted,
    Suggestion,
)
from suggestion.algorithms.encoding import (
    MacroEncoding,
    NasEncoding,
    Vector,
    check_hpo_settings,
    nas_encoding,
)
from suggestion.algorithms.sampling import parameter_size, point_keys

__all__ = ["MAX_GRID_POINTS", "GridSearch", "grid_size"]

# Katib accepts random_state for grid too; the order is fixed, so it changes nothing.

# Beyond this a grid cannot be finished and every call near its end walks the whole grid.
MAX_GRID_POINTS = 1_000_000


class GridSearch(Algorithm):
    """Suggests the first `n` grid points that no trial in the history has used.

    Trials of any condition count as used (a failed point is not retried). When fewer
    than `n` unused points remain it suggests nothing and raises SearchSpaceExhausted
    with the number left, so the caller can ask again for exactly that many.
    """

    name = "grid"
    settings_model = GridSettings
    supports_nas = True
    description = "every point of a finite grid once, in a fixed order (double parameters need a step)"

    def validate(self, problem: Problem) -> None:
        _prepare(problem)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        encoding = _prepare(problem)
        space = problem.space
        if n <= 0:
            return []
        if encoding is None:
            seen = point_keys(space, (t.assignments for t in history))
            points = _hpo_points(space)
        else:
            seen = {encoding.assignments_key(t.assignments) for t in history}
            seen.discard(None)
            points = _nas_points(encoding)
        out: list[Suggestion] = []
        for key, make in points:
            if key in seen:
                continue
            seen.add(key)
            out.append(Suggestion(make()))
            if len(out) == n:
                return out
        raise SearchSpaceExhausted(n, len(out))


def _prepare(problem: Problem) -> NasEncoding | None:
    """The NAS encoding (None for HPO) once settings, space and grid size are checked."""
    settings = dict(parse_settings(problem.settings, GridSettings))
    problem.space.check()
    check_hpo_settings(problem.space, settings)
    nas = problem.space.nas_config
    encoding = None if nas is None else nas_encoding(nas, settings)
    grid_size(problem.space, encoding)
    return encoding


def _count(spec: ParameterSpec, index: int) -> int:
    count = parameter_size(spec)
    if count is None:
        raise SpaceError(
            f"parameters[{index}].feasibleSpace.step",
            None,
            f"grid search needs a step for double parameter {spec.name!r}",
        )
    return count


def grid_size(space: SearchSpace, encoding: NasEncoding | None = None) -> int:
    """Number of grid points; SpaceError (naming the field) if the grid is undefined or too large.

    A NAS space is counted in `encoding` (default: macro); past MAX_GRID_POINTS a macro grid
    names `nasConfig`, any other mode's grid names the `search_mode` setting.
    """
    if space.nas_config is not None:
        encoding = encoding if encoding is not None else MacroEncoding(space.nas_config)
        total = encoding.size
        if total > MAX_GRID_POINTS and encoding.mode != "macro":
            raise InvalidSettings(
                "search_mode",
                encoding.mode,
                f"a {encoding.mode} grid has {_how_many(total)} points ({_describe(encoding)}); grid search "
                f"enumerates at most {MAX_GRID_POINTS}: use random, evolution or another searching algorithm",
            )
        field = "nasConfig"
        how = _describe(encoding)
    else:
        counts = [_count(p, i) for i, p in enumerate(space.parameters)]
        total = math.prod(counts)
        how = " x ".join(f"{p.name}: {c}" for p, c in zip(space.parameters, counts))
        field = "parameters"
    if total > MAX_GRID_POINTS:
        raise SpaceError(
            field,
            f"{_how_many(total)} grid points ({how})",
            f"grid search enumerates at most {MAX_GRID_POINTS} points; "
            "narrow the space, add larger steps, or use random",
        )
    return total


def _how_many(total: int) -> str:
    # A 64-node micro space has a count with hundreds of digits, numLayers 1000 one with
    # 150,000: past Python's 4,300-digit limit str() raises, so count digits by bits.
    return str(total) if total < 10**15 else f"about 10^{int(total.bit_length() * math.log10(2))}"


def _describe(encoding: NasEncoding) -> str:
    if isinstance(encoding, MacroEncoding):
        layers, ops = encoding.num_layers, len(encoding.ops)
        return f"{ops} operations ^ {layers} layers x 2 ^ {layers * (layers - 1) // 2} skip bits"
    return " x ".join(f"{c.name}: {c.size}" for c in encoding.choices[:6]) + (
        f" x ... ({len(encoding.choices)} choices)" if len(encoding.choices) > 6 else ""
    )


def _canonical_values(spec: ParameterSpec) -> list[tuple[str, Hashable]]:
    """(wire text, identity) per grid value; identity matches `sampling.hpo_key`."""
    out: list[tuple[str, Hashable]] = []
    for value in spec.grid_values():
        text = format_value(value)
        out.append((text, text if spec.type is ParameterType.CATEGORICAL else float(parse_number(text))))
    return out


def _hpo_points(space: SearchSpace) -> Iterator[tuple[Hashable, Callable[[], dict[str, str]]]]:
    names = [p.name for p in space.parameters]
    grids = [_canonical_values(p) for p in space.parameters]
    for combo in itertools.product(*grids):
        key = tuple(identity for _text, identity in combo)
        # Assignments are built only for the points chosen, not for every point skipped.
        yield key, partial(_assignments, names, combo)


def _nas_points(encoding: NasEncoding) -> Iterator[tuple[Hashable, Callable[[], dict[str, str]]]]:
    for key, vector in encoding.lazy_points():
        yield key, partial(_encoded, encoding, vector)


def _encoded(encoding: NasEncoding, vector: Callable[[], Vector]) -> dict[str, str]:
    return encoding.encode(vector())


def _assignments(names: list[str], combo: Sequence[tuple[str, Hashable]]) -> dict[str, str]:
    return {name: text for name, (text, _identity) in zip(names, combo)}
