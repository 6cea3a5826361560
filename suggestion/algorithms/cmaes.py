"""CMA-ES (Hansen's covariance matrix adaptation), replayed from the request's history.

The `cmaes` library (the one Optuna's CmaEsSampler wraps) runs on the unit cube of the
int and double parameters (each one's position in its range, log range for
logUniform/logNormal). Stateless: each call starts a CMA-ES at the centre and tells it the
evaluated trials, oldest first, one generation of `population_size` trials at a time (a
tell takes the trials' real points, so it does not matter which call proposed them);
the trials of the unfinished generation and the running ones wait for a later call. The
n proposals are then drawn from the resulting distribution. Optuna keeps this state in
its storage; replaying gives the same distribution without one (Optuna 4.4+ also dropped
the restart strategies, which is why the library is used directly).

Restarts (`restart_strategy`), when the library's stopping tests fire:
- `ipop` (Auger & Hansen 2005): restart from a random mean with twice the population.
- `bipop` (Hansen 2009): alternate between that large-population regime and short runs
  with a small population and a smaller step, whichever regime has used fewer trials.
Categorical and discrete parameters have no place in the cube; they are drawn at random
(Optuna's CmaEsSampler does the same through its independent sampler).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_based import CmaEsSettings
from kubenas.space import SpaceError
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.points import FLOAT, INT, Point, PointSpace, point_space, read_history
from suggestion.algorithms.sampling import history_rng

__all__ = ["CmaEs", "RestartPolicy"]

MIN_NUMERIC = 2
# Draws before a proposal that repeats a tried point (an int grid) is given up for a random one.
_ASK_TRIES = 16


class CmaEs(Algorithm):
    """CMA-ES over the int and double parameters; Katib's rule: at least two of them."""

    name = "cmaes"
    supports_nas = False
    settings_model = CmaEsSettings
    description = "CMA-ES (the cmaes library) replayed from the history; sigma, restart_strategy " \
                  "(None, ipop, bipop), random_state; HPO with at least 2 int/double parameters"

    def validate(self, problem: Problem) -> None:
        self._parse(problem)

    def _parse(self, problem: Problem) -> tuple[CmaEsSettings, PointSpace, list[int]]:
        settings = parse_settings(problem.settings, CmaEsSettings)
        # Space errors name the space's field (`kubenas validate`: spec.parameters, spec.nasConfig).
        if problem.space.nas_config is not None:
            raise SpaceError("nasConfig", "a NAS search space",
                                  "cmaes searches int and double parameters only; for NAS use "
                                  "random, grid, evolution, bayesian, bayesianoptimization, tpe, "
                                  "multivariate-tpe, sobol, enas or darts")
        points = point_space(problem.space, dict(settings))
        numeric = [i for i, d in enumerate(points.dims) if d.kind in (INT, FLOAT)]
        if len(numeric) < MIN_NUMERIC:
            names = [points.dims[i].name for i in numeric]
            raise SpaceError("parameters", names,
                                  f"cmaes needs at least {MIN_NUMERIC} int or double parameters "
                                  f"(as Katib's); this space has {len(numeric)}")
        return settings, points, numeric

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, points, numeric = self._parse(problem)
        if n <= 0:
            return []
        rng = history_rng(settings.random_state, history)
        view = read_history(points, problem.objective, history)
        seen: set[Hashable] = set(view.seen)
        units = [[points.dims[i].unit(e.point[i]) for i in numeric] for e in view.evaluated]
        # The library minimises.
        losses = [-e.reward for e in view.evaluated]
        restart_seed = settings.random_state if settings.random_state is not None else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            optimizer = _replay(len(numeric), units, losses, settings.sigma, settings.restart_strategy, restart_seed,
                                rng.getrandbits(32))
        out: list[Point] = []
        for _ in range(n):
            out.append(_ask(optimizer, points, numeric, seen, rng))
        return [Suggestion(points.assignments(p)) for p in out]


@dataclass
class RestartPolicy:
    """The population and step of each CMA-ES run under `ipop` / `bipop` (None: never restarts)."""

    strategy: str | None
    base_population: int
    sigma: float
    large_runs: int = 0
    large_budget: int = 0
    small_budget: int = 0
    in_large: bool = True

    def spent(self, trials: int) -> None:
        """Count `trials` told to the current run towards its regime's budget."""
        if self.in_large:
            self.large_budget += trials
        else:
            self.small_budget += trials

    def next_run(self, rng: Random) -> tuple[int, float]:
        """(population, sigma) of the run after a stop."""
        large = self.base_population * 2 ** (self.large_runs + 1)
        if self.strategy == "ipop" or self.small_budget >= self.large_budget:
            self.large_runs += 1
            self.in_large = True
            return large, self.sigma
        self.in_large = False
        u = rng.random()
        small = math.floor(self.base_population * (0.5 * large / self.base_population) ** (u * u))
        return max(small, self.base_population), self.sigma * 10 ** (-2 * u)


def _replay(dims: int, units: list[list[float]], losses: list[float], sigma: float, strategy: str | None,
            restart_seed: int, ask_seed: int) -> Any:
    import numpy as np
    from cmaes import CMA

    restart_rng = Random(f"cmaes-restart:{restart_seed}")

    def start(mean: np.ndarray, step: float, population: int | None) -> CMA:
        return CMA(mean=mean, sigma=step, bounds=np.array([[0.0, 1.0]] * dims), seed=ask_seed,
                   population_size=population)

    optimizer = start(np.full(dims, 0.5), sigma, None)
    policy = RestartPolicy(strategy, optimizer.population_size, sigma)
    done = 0
    while len(units) - done >= optimizer.population_size:
        size = optimizer.population_size
        batch = [(np.asarray(units[i]), losses[i]) for i in range(done, done + size)]
        optimizer.tell(batch)
        done += size
        policy.spent(size)
        if strategy is not None and optimizer.should_stop():
            population, step = policy.next_run(restart_rng)
            mean = np.array([restart_rng.random() for _ in range(dims)])
            optimizer = start(mean, step, population)
    return optimizer


def _ask(optimizer: Any, points: PointSpace, numeric: list[int], seen: set[Hashable], rng: Random) -> Point:
    for _ in range(_ASK_TRIES):
        x = optimizer.ask()
        # Categorical and discrete values: a random draw per proposal.
        point = list(points.random(rng))
        for i, u in zip(numeric, x):
            point[i] = points.dims[i].from_unit(float(u))
        key = points.key(tuple(point))
        if key not in seen:
            seen.add(key)
            return tuple(point)
    return points.random_unseen(seen, rng)
