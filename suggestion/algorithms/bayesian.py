"""Bayesian optimisation: a surrogate model of the trials so far and an acquisition function.

One implementation, two registry names: `bayesian` (kubenas's: a GP with expected
improvement over sampled candidates) and `bayesianoptimization` (Katib's, scikit-optimize's
settings and defaults: `base_estimator` GP/RF/ET/GBRT, `acq_func` gp_hedge/LCB/EI/PI,
`acq_optimizer` auto/sampling/lbfgs). Both take every setting; only defaults differ.

Encoding (`PointSpace.features`): an HPO parameter becomes one number in [0, 1] (its
position between min and max, on a log scale for logUniform/logNormal; a discrete value
by its number), a categorical parameter one-hot; a NAS architecture is one-hot per
choice of its encoding (each op, input and skip bit). The models are in `surrogates`, the
acquisition functions in `acquisition`. Stateless: the model is refitted from the
request's history.

Each call draws `acq_candidates` unseen candidates (half random draws, half one- or
two-step mutations of the best trials); each proposal takes the candidate of largest
acquisition (`sampling`). With `lbfgs` the 3 best candidates are then moved by L-BFGS-B
along their continuous doubles (the only dimensions with a gradient) and the best result
is kept. A batch (parallel trials) and the trials still running are handled by the
kriging believer: a chosen or pending point is added to the data with the model's mean
as its value, so the next proposal of the batch looks elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from random import Random
from typing import TYPE_CHECKING, ClassVar

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_based import BayesianSettings, KatibBayesianSettings
from kubenas.trials import TrialRecord
from suggestion.algorithms.acquisition import acquisition, expected_improvement, hedge
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.points import (
    CATEGORICAL,
    FLOAT,
    Point,
    PointSpace,
    point_space,
    read_history,
)
from suggestion.algorithms.sampling import history_rng
from suggestion.algorithms.surrogates import MAX_FIT_POINTS, Surrogate, fit_surrogate

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BayesianOptimization", "KatibBayesianOptimization", "expected_improvement"]

logger = logging.getLogger(__name__)

# How many of the best trials the local half of the candidates mutates.
_ELITE = 5
# Candidates L-BFGS-B starts from, and its iterations on the acquisition.
_LBFGS_STARTS = 3
_LBFGS_STEPS = 15
_GRADIENT_STEP = 1e-6
# Closest a refined point may come to a modelled one, in unit feature distance (L-inf).
_MIN_SEPARATION = 0.01


class BayesianOptimization(Algorithm):
    """Random points until `n_initial_points` trials have an observation, then model + acquisition.

    Failed trials carry no value and are not modelled (their points are not proposed
    again); early-stopped trials count with the value they reached.
    """

    name = "bayesian"
    description = "Bayesian optimisation (GP + expected improvement by default); base_estimator, " \
                  "n_initial_points, acq_func, acq_optimizer, acq_candidates, xi, random_state, search_mode"
    settings_model: ClassVar[type[BayesianSettings]] = BayesianSettings

    def validate(self, problem: Problem) -> None:
        self._settings(problem)

    def _settings(self, problem: Problem) -> tuple[BayesianSettings, PointSpace]:
        settings = parse_settings(problem.settings, self.settings_model)
        return settings, point_space(problem.space, dict(settings))

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, points = self._settings(problem)
        view = read_history(points, problem.objective, history)
        rng = history_rng(settings.random_state, history)
        seen: set[Hashable] = set(view.seen)
        if n <= 0:
            return []
        # A model needs one observation at least, whatever n_initial_points says.
        if len(view.evaluated) < max(1, settings.n_initial_points):
            chosen = [points.random_unseen(seen, rng) for _ in range(n)]
        else:
            from threadpoolctl import threadpool_limits

            started = time.perf_counter()
            # A few-hundred-point GP gains nothing from BLAS threads, and on a busy
            # machine they spin: one 300 x 300 Cholesky took 60 ms with two, 0.4 ms with one.
            with threadpool_limits(limits=1, user_api="blas"):
                chosen = _propose(points, [e.point for e in view.evaluated], [e.reward for e in view.evaluated],
                                  list(view.pending), n, settings, seen, rng, problem.check_cancelled)
            logger.debug("%s: %d proposals from %d trials in %.3f s", self.name, n, len(view.evaluated),
                         time.perf_counter() - started)
        return [Suggestion(points.assignments(p)) for p in chosen]


class KatibBayesianOptimization(BayesianOptimization):
    """Katib's `bayesianoptimization`: the same search with scikit-optimize's defaults."""

    name = "bayesianoptimization"
    description = "Katib's Bayesian optimisation (scikit-optimize's settings); base_estimator GP/RF/ET/GBRT, " \
                  "n_initial_points, acq_func, acq_optimizer, random_state, search_mode"
    settings_model = KatibBayesianSettings


def _propose(points: PointSpace, xs: list[Point], ys: list[float], pending: list[Point], n: int,
             settings: BayesianSettings, seen: set[Hashable], rng: Random,
             check_cancelled: Callable[[], None] = lambda: None) -> list[Point]:
    import numpy as np

    seed = rng.getrandbits(32)
    X = points.features(xs)
    y = np.asarray(ys, dtype=float)
    # GP kernel hyperparameters from a seeded subset (the fit is cubic in its size and
    # repeated a few dozen times by the optimiser); the model itself uses every trial.
    subset = sorted(rng.sample(range(len(xs)), MAX_FIT_POINTS)) if len(xs) > MAX_FIT_POINTS else slice(None)
    model = fit_surrogate(settings.base_estimator, X, y, seed, subset)
    best = float(y.max())
    scale = float(y.std()) or 1.0
    threshold = best + settings.xi * scale
    elite = [xs[i] for i in np.argsort(-y, kind="stable")[:_ELITE]]
    if pending:
        Xp = points.features(pending)
        X, y = np.vstack([X, Xp]), np.concatenate([y, model.predict(Xp)[0]])
        model = model.refit(X, y)
    # One candidate pool per batch: later proposals differ through the believer's data.
    candidates = _candidates(points, elite, settings.acq_candidates, seen, rng)
    Xc = points.features(candidates) if candidates else None
    columns = _continuous_columns(points) if _uses_lbfgs(settings, points) else []
    chosen: list[Point] = []
    for _ in range(n):
        check_cancelled()
        if Xc is None or not candidates:
            chosen.append(points.random_unseen(seen, rng))
            continue
        mu, sigma = model.predict(Xc)
        name: str = settings.acq_func
        if name == "gp_hedge":
            name = hedge(mu, sigma, threshold, scale, rng)
        scores = acquisition(name, mu, sigma, threshold)
        pick = int(np.argmax(scores))
        point, x_new = candidates[pick], Xc[pick : pick + 1]
        if columns:
            point, x_new = _refine(points, model, name, threshold, candidates, Xc, scores, columns, seen,
                                   X, (point, x_new))
        candidates.pop(pick)
        Xc = np.delete(Xc, pick, axis=0)
        seen.add(points.key(point))
        chosen.append(point)
        if len(chosen) < n:
            # Kriging believer: the model's own mean stands in for the unknown result.
            X, y = np.vstack([X, x_new]), np.append(y, model.predict(x_new)[0])
            model = model.refit(X, y)
    return chosen


def _uses_lbfgs(settings: BayesianSettings, points: PointSpace) -> bool:
    """`lbfgs`, or `auto` with a GP (scikit-optimize's rule), where there is a gradient to follow."""
    wanted = settings.acq_optimizer == "lbfgs" or (
        settings.acq_optimizer == "auto" and settings.base_estimator == "GP")
    return wanted and bool(_continuous_columns(points))


def _continuous_columns(points: PointSpace) -> list[tuple[int, int]]:
    """(dimension, feature column) of each double without a step."""
    out: list[tuple[int, int]] = []
    column = 0
    for i, d in enumerate(points.dims):
        if d.kind == FLOAT and d.spec is not None and d.spec.step is None:
            out.append((i, column))
        column += d.size if d.kind == CATEGORICAL else 1
    return out


def _refine(points: PointSpace, model: Surrogate, name: str, threshold: float, candidates: Sequence[Point],
            Xc: np.ndarray, scores: np.ndarray, columns: list[tuple[int, int]], seen: set[Hashable],
            data: np.ndarray, fallback: tuple[Point, np.ndarray]) -> tuple[Point, np.ndarray]:
    """The best of L-BFGS-B runs on the acquisition from the best candidates.

    A result next to a modelled point (tried, running, or believed earlier in the batch) is
    dropped: the GP's noise term leaves some improvement there, and L-BFGS-B would find it
    again for every proposal of a batch.
    """
    import numpy as np
    from scipy.optimize import minimize

    cols = [c for _, c in columns]
    best_point, best_x = fallback
    best_score = float(scores.max())
    for start in np.argsort(-scores, kind="stable")[:_LBFGS_STARTS]:
        row = Xc[start : start + 1].copy()

        def negative(u: np.ndarray, row: np.ndarray = row) -> tuple[float, np.ndarray]:
            # The value and a forward-difference gradient from one model call (scipy's own
            # differences would call the model once per coordinate).
            rows = np.repeat(row, len(cols) + 1, axis=0)
            rows[:, cols] = u
            rows[np.arange(1, len(cols) + 1), cols] += _GRADIENT_STEP
            values = acquisition(name, *model.predict(rows), threshold)
            return -float(values[0]), -(values[1:] - values[0]) / _GRADIENT_STEP

        result = minimize(negative, row[0, cols], jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(cols),
                          options={"maxiter": _LBFGS_STEPS})
        moved = list(candidates[int(start)])
        for (i, _), u in zip(columns, result.x):
            moved[i] = points.dims[i].from_unit(float(u))
        point = tuple(moved)
        if points.key(point) in seen:
            continue
        x = points.features([point])
        if float(np.abs(data - x).max(axis=1).min()) < _MIN_SEPARATION:
            continue
        score = float(acquisition(name, *model.predict(x), threshold)[0])
        if score > best_score:
            best_point, best_x, best_score = point, x, score
    return best_point, best_x


def _candidates(points: PointSpace, elite: Sequence[Point], count: int, seen: set[Hashable],
                rng: Random) -> list[Point]:
    """Up to `count` distinct unseen points: half random draws, half near the elite."""
    out: list[Point] = []
    keys: set[Hashable] = set()
    size = points.size
    budget = count if size is None else min(count, size - len(seen))
    attempts = 0
    while len(out) < budget and attempts < 4 * count:
        attempts += 1
        if elite and attempts % 2 == 0:
            point = points.mutate(elite[rng.randrange(len(elite))], rng)
            if rng.random() < 0.5:
                point = points.mutate(point, rng)
        else:
            point = points.random(rng)
        key = points.key(point)
        if key in seen or key in keys:
            continue
        keys.add(key)
        out.append(point)
    return out
