"""Regularised (aging) evolution, Real et al. 2019, for HPO parameters and every NAS mode.

Stateless: the population is recomputed from the request's history on every call. The
evaluated trials, ordered by completion time (then name), are the ages; the population
is the newest `population_size` of them, so the oldest member drops out as each new one
arrives (aging, not the worst, is removed). Each new point is a tournament: sample
`sample_size` members, mutate exactly one coordinate of the best one.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from functools import partial

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_free import MAX_POPULATION, EvolutionSettings
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.points import (
    Evaluated,
    HistoryView,
    Point,
    PointSpace,
    point_space,
    read_history,
)
from suggestion.algorithms.sampling import history_rng

__all__ = ["MAX_POPULATION", "RegularizedEvolution", "evolve", "population_of"]

class RegularizedEvolution(Algorithm):
    """Random points until `population_size` trials exist, then tournament + one mutation.

    Failed, killed and metrics-unavailable trials are never parents (and do not fill the
    initial population); an early-stopped trial with an observation is a member with that
    value. Running trials count towards the initial population, so a parallel experiment
    does not draw a second random population while the first is being trained.
    """

    name = "evolution"
    settings_model = EvolutionSettings
    description = "regularised (aging) evolution: tournament of sample_size, mutate one choice; " \
                  "population_size, sample_size, random_state, search_mode"

    def validate(self, problem: Problem) -> None:
        point_space(problem.space, dict(parse_settings(problem.settings, EvolutionSettings)))

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings = parse_settings(problem.settings, EvolutionSettings)
        points = point_space(problem.space, dict(settings))
        view = read_history(points, problem.objective, history)
        rng = history_rng(settings.random_state, history)
        children = evolve(points, view, n, settings.population_size, settings.sample_size, rng)
        return [Suggestion(points.assignments(c)) for c in children]


def population_of(view: HistoryView, population_size: int) -> tuple[Evaluated, ...]:
    """The newest `population_size` evaluated trials (oldest first)."""
    return view.evaluated[-population_size:]


def evolve(points: PointSpace, view: HistoryView, n: int, population_size: int, sample_size: int,
           rng: random.Random) -> list[Point]:
    """`n` new points, each unseen in the history and the batch while unseen ones remain."""
    population = population_of(view, population_size)
    seen: set[Hashable] = set(view.seen)
    started = len(view.evaluated) + len(view.pending)
    out: list[Point] = []
    for _ in range(n):
        if started < population_size or not population:
            out.append(points.random_unseen(seen, rng))
            started += 1
            continue
        tournament = rng.sample(population, min(sample_size, len(population)))
        # max() keeps the first of equal rewards: the sampled order, itself seeded.
        parent = max(tournament, key=lambda e: e.reward).point
        out.append(points.fresh(partial(points.mutate, parent, rng), seen, rng))
    return out
