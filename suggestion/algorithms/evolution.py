"""Regularised (aging) evolution, Real et al. 2019, for HPO parameters and every NAS mode.

Stateless: the population is recomputed from the request's history on every call. The
evaluated trials, ordered by completion time (then name), are the ages; the population
is the newest `population_size` of them, so the oldest member drops out as each new one
arrives (aging, not the worst, is removed). Each new point is a tournament: sample
`sample_size` members, mutate exactly one coordinate of the best one.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence
from functools import partial
from typing import Any

from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.encoding import NAS_SETTINGS
from suggestion.algorithms.points import (
    Evaluated,
    HistoryView,
    Point,
    PointSpace,
    point_space,
    read_history,
)
from suggestion.algorithms.sampling import RANDOM_STATE, history_rng
from suggestion.algorithms.settings import Setting, as_int, parse_settings

__all__ = ["MAX_POPULATION", "SETTINGS", "RegularizedEvolution", "evolve", "population_of"]

MAX_POPULATION = 100_000

# Defaults for small budgets: NATS-Bench / NAS-Bench-201's REA runs use a population of
# 10 and tournaments of 3 (Real et al. used 100 and 25 over 20,000 models).
SETTINGS: tuple[Setting, ...] = (
    Setting("population_size", 10, as_int, lambda v: 1 <= v <= MAX_POPULATION,
            f"an integer in [1, {MAX_POPULATION}]"),
    Setting("sample_size", 3, as_int, lambda v: 1 <= v <= MAX_POPULATION, f"an integer in [1, {MAX_POPULATION}]"),
    RANDOM_STATE,
    *NAS_SETTINGS,
)


def _parse(raw: Mapping[str, str]) -> dict[str, Any]:
    settings = parse_settings(raw, SETTINGS)
    if settings["sample_size"] > settings["population_size"]:
        raise InvalidSettings("sample_size", raw["sample_size"],
                              f"must be an integer in [1, population_size] = [1, {settings['population_size']}]")
    return settings


class RegularizedEvolution(Algorithm):
    """Random points until `population_size` trials exist, then tournament + one mutation.

    Failed, killed and metrics-unavailable trials are never parents (and do not fill the
    initial population); an early-stopped trial with an observation is a member with that
    value. Running trials count towards the initial population, so a parallel experiment
    does not draw a second random population while the first is being trained.
    """

    name = "evolution"
    description = "regularised (aging) evolution: tournament of sample_size, mutate one choice; " \
                  "population_size, sample_size, random_state, search_mode"

    def validate(self, problem: Problem) -> None:
        settings = _parse(problem.settings)
        point_space(problem.space, settings)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings = _parse(problem.settings)
        points = point_space(problem.space, settings)
        view = read_history(points, problem.objective, history)
        rng = history_rng(settings["random_state"], history)
        children = evolve(points, view, n, settings["population_size"], settings["sample_size"], rng)
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
