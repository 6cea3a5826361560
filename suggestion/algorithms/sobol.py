"""Sobol: the quasi-random Sobol sequence (scipy.stats.qmc), one point per trial index.

Trial i of the experiment (i = the number of trials in the request's history, then +1 per
proposal of the batch) gets point i of the sequence, so the algorithm keeps no state and a
retried request gets the same points. Without `random_state` the sequence is the plain
(unscrambled) one, as Katib's goptuna `sobol`, whose first point is the lower corner; with
it the sequence is Owen-scrambled with that seed.

Each coordinate u in [0, 1) becomes a value: an indexed dimension (categorical, discrete,
NAS choice) takes index floor(u * size); an int or stepped double takes grid value
floor(u * count), so every grid value gets an equal share; a continuous double is the
point at position u of its range (log range for logUniform/logNormal). Points are spread
evenly over the range whatever the parameter's distribution says. In a finite space a
point already tried is replaced by a random unseen one.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_free import SobolSettings
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.points import Dimension, Point, point_space, read_history
from suggestion.algorithms.sampling import history_rng, parameter_size, snap

__all__ = ["Sobol", "sobol_units"]


class Sobol(Algorithm):
    """Point i of a d-dimensional Sobol sequence for the experiment's i-th trial."""

    name = "sobol"
    settings_model = SobolSettings
    description = "quasi-random Sobol sequence (scipy.stats.qmc), stateless; random_state scrambles, search_mode"

    def validate(self, problem: Problem) -> None:
        point_space(problem.space, dict(parse_settings(problem.settings, SobolSettings)))

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings = parse_settings(problem.settings, SobolSettings)
        points = point_space(problem.space, dict(settings))
        if n <= 0:
            return []
        seen: set[Hashable] = set(read_history(points, problem.objective, history).seen)
        rng = history_rng(settings.random_state, history)
        units = sobol_units(len(points.dims), len(history), n, settings.random_state)
        out: list[Point] = []
        for row in units:
            point = tuple(_value(d, float(u)) for d, u in zip(points.dims, row))
            key = points.key(point)
            if key in seen:
                point = points.random_unseen(seen, rng)
            seen.add(key)
            out.append(point)
        return [Suggestion(points.assignments(p)) for p in out]


def sobol_units(dims: int, start: int, n: int, seed: int | None) -> Any:
    """Points start .. start+n-1 of the Sobol sequence in [0, 1)^dims (scrambled when seeded)."""
    from scipy.stats import qmc

    engine = qmc.Sobol(dims, scramble=seed is not None, seed=seed)
    with warnings.catch_warnings():
        # scipy warns that prefixes of other lengths than 2^m lose balance; trials come one
        # request at a time, so the experiment's prefix is whatever maxTrialCount is.
        warnings.simplefilter("ignore", UserWarning)
        if start:
            engine.fast_forward(start)
        return engine.random(n)


def _value(d: Dimension, u: float) -> Any:
    if d.indexed:
        return min(int(u * d.size), d.size - 1)
    assert d.spec is not None
    count = parameter_size(d.spec)
    if count is None or d.log:
        return d.from_unit(u)
    step = float(d.spec.step or 1)
    return snap(d.spec, d.low + min(int(u * count), count - 1) * step)
