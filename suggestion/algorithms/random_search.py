"""Random search: independent draws from the search space, for HPO parameters and ENAS macro spaces."""

from __future__ import annotations

import random
from collections.abc import Sequence

from kubenas.space import ExpandedOp, NasConfig, SearchSpace
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.sampling import (
    RANDOM_STATE,
    history_rng,
    hpo_keyer,
    nas_assignments,
    nas_key,
    point_keys,
    sample_value,
    space_size,
)
from suggestion.algorithms.settings import parse_settings

__all__ = ["RandomSearch"]

SETTINGS = (RANDOM_STATE,)

# In a small finite space a fresh draw often repeats a tried point; redraws avoid that
# and cost nothing when there is no collision.
_REDRAWS = 64


class RandomSearch(Algorithm):
    """Each suggestion is drawn independently; rewards are ignored.

    Draws avoid points already in the history (or earlier in the same batch) while a few
    redraws find a new one. Seeded by `random_state` and the history, so it is stateless.
    """

    name = "random"
    description = "independent random draws (uniform, logUniform, normal, logNormal); seed random_state"

    def validate(self, problem: Problem) -> None:
        parse_settings(problem.settings, SETTINGS)
        problem.space.check()

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings = parse_settings(problem.settings, SETTINGS)
        rng = history_rng(settings["random_state"], history)
        space = problem.space
        # Repeats are only possible in a finite space, and only worth avoiding until every
        # point has been tried; a continuous space skips the bookkeeping entirely.
        size = space_size(space)
        seen = point_keys(space, (t.assignments for t in history)) if size is not None else set()
        key_of = nas_key if space.is_nas else hpo_keyer(space.parameters)
        ops = space.nas_config.expanded() if space.nas_config is not None else []
        out: list[Suggestion] = []
        for _ in range(n):
            redraws = _REDRAWS if size is not None and len(seen) < size else 1
            for _attempt in range(redraws):
                assignments = _draw(space, ops, rng)
                key = key_of(assignments)
                if key not in seen:
                    break
            seen.add(key)
            out.append(Suggestion(assignments))
        return out


def _draw(space: SearchSpace, ops: list[ExpandedOp], rng: random.Random) -> dict[str, str]:
    if space.nas_config is not None:
        return nas_assignments(space.nas_config, ops, _random_rows(space.nas_config, len(ops), rng))
    return {p.name: sample_value(p, rng) for p in space.parameters}


def _random_rows(nas: NasConfig, num_ops: int, rng: random.Random) -> list[list[int]]:
    return [
        [rng.randrange(num_ops), *(rng.randrange(2) for _ in range(layer))]
        for layer in range(nas.graph_config.num_layers)
    ]
