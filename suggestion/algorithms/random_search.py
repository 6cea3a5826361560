"""Random search: independent draws from the search space, for HPO parameters and NAS spaces.

NAS spaces are drawn in the encoding named by `search_mode` (macro, micro, nb201): one
uniform index per choice of the encoding, in choice order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_free import RandomSettings
from kubenas.space import SearchSpace
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.encoding import (
    NasEncoding,
    check_hpo_settings,
    nas_encoding,
)
from suggestion.algorithms.sampling import (
    history_rng,
    hpo_keyer,
    point_keys,
    sample_value,
    space_size,
)

__all__ = ["RandomSearch"]

# In a small finite space a fresh draw often repeats a tried point; redraws avoid that
# and cost nothing when there is no collision.
_REDRAWS = 64


def _prepare(problem: Problem) -> tuple[RandomSettings, NasEncoding | None]:
    settings = parse_settings(problem.settings, RandomSettings)
    problem.space.check()
    check_hpo_settings(problem.space, dict(settings))
    nas = problem.space.nas_config
    return settings, None if nas is None else nas_encoding(nas, dict(settings))


class RandomSearch(Algorithm):
    """Each suggestion is drawn independently; rewards are ignored.

    Draws avoid points already in the history (or earlier in the same batch) while a few
    redraws find a new one. Seeded by `random_state` and the history, so it is stateless.
    """

    name = "random"
    settings_model = RandomSettings
    description = (
        "independent random draws (uniform, logUniform, normal, logNormal); NAS search_mode macro, micro "
        "or nb201; seed random_state"
    )

    def validate(self, problem: Problem) -> None:
        _prepare(problem)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, encoding = _prepare(problem)
        rng = history_rng(settings.random_state, history)
        space = problem.space
        # Repeats are only possible in a finite space, and only worth avoiding until every
        # point has been tried; a continuous space skips the bookkeeping entirely.
        size = space_size(space) if encoding is None else encoding.size
        draw: Callable[[], tuple[Hashable, Callable[[], dict[str, str]]]]
        if encoding is None:
            seen = point_keys(space, (t.assignments for t in history)) if size is not None else set()
            draw = _hpo_draw(space, rng)
        else:
            seen = {encoding.assignments_key(t.assignments) for t in history}
            seen.discard(None)
            draw = _nas_draw(encoding, rng)
        out: list[Suggestion] = []
        for _ in range(n):
            redraws = _REDRAWS if size is not None and len(seen) < size else 1
            for _attempt in range(redraws):
                key, assignments = draw()
                if key not in seen:
                    break
            seen.add(key)
            out.append(Suggestion(assignments()))
        return out


def _hpo_draw(space: SearchSpace, rng: random.Random) -> Callable[[], tuple[Hashable, Callable[[], dict[str, str]]]]:
    key_of = hpo_keyer(space.parameters)

    def draw() -> tuple[Hashable, Callable[[], dict[str, str]]]:
        assignments = {p.name: sample_value(p, rng) for p in space.parameters}
        return key_of(assignments), lambda: assignments

    return draw


def _nas_draw(encoding: NasEncoding, rng: random.Random) -> Callable[[], tuple[Hashable, Callable[[], dict[str, str]]]]:
    def draw() -> tuple[Hashable, Callable[[], dict[str, str]]]:
        vector = encoding.random_vector(rng)
        return encoding.key(vector), lambda: encoding.encode(vector)

    return draw
