"""Bayesian optimisation: a Gaussian process on the trials so far, expected improvement.

Encoding (`PointSpace.features`): an HPO parameter becomes one number in [0, 1] (its
position between min and max, on a log scale for logUniform/logNormal; a discrete value
by its number), a categorical parameter one-hot; a NAS architecture is one-hot per
choice of its encoding (each op, input and skip bit). The model is scikit-learn's
GaussianProcessRegressor with a constant x Matern(5/2) + white-noise kernel on
normalised rewards. Stateless: the model is refitted from the request's history.

Each call draws `acq_candidates` unseen candidates (half random draws, half one- or
two-step mutations of the best trials); each proposal takes the candidate of largest
expected improvement. A
batch (parallel trials) and the trials still running are handled by the kriging
believer: a chosen or pending point is added to the data with the model's mean as its
value, so the next proposal of the batch looks elsewhere.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from random import Random
from typing import TYPE_CHECKING, Any

from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.encoding import NAS_SETTINGS
from suggestion.algorithms.points import Point, PointSpace, point_space, read_history
from suggestion.algorithms.sampling import RANDOM_STATE, history_rng
from suggestion.algorithms.settings import Setting, as_float, as_int, parse_settings

if TYPE_CHECKING:
    import numpy as np
    from sklearn.gaussian_process import GaussianProcessRegressor

__all__ = ["SETTINGS", "BayesianOptimization"]

logger = logging.getLogger(__name__)

# Defaults as scikit-optimize's gp_minimize (10 random points first, xi 0.01).
SETTINGS: tuple[Setting, ...] = (
    Setting("n_initial_points", 10, as_int, lambda v: 1 <= v <= 100_000, "an integer in [1, 100000]"),
    # Each candidate costs a GP prediction per proposal; 10,000 already takes seconds.
    Setting("acq_candidates", 1000, as_int, lambda v: 1 <= v <= 10_000, "an integer in [1, 10000]"),
    Setting("xi", 0.01, as_float, lambda v: 0 <= v <= 10, "a number in [0, 10]"),
    RANDOM_STATE,
    *NAS_SETTINGS,
)

# Per-dimension length scales (ARD) up to this many features; past it (one-hot NAS
# encodings have dozens) one shared length scale keeps the fit well under a second.
_MAX_ARD_FEATURES = 16
# Trials the kernel hyperparameters are fitted on, at most.
_MAX_FIT_POINTS = 100
# L-BFGS iterations for the kernel hyperparameters (scikit-learn's default: 15,000).
_MAX_OPTIMISER_STEPS = 30
# How many of the best trials the local half of the candidates mutates.
_ELITE = 5


class BayesianOptimization(Algorithm):
    """Random points until `n_initial_points` trials have an observation, then GP + EI.

    Failed trials carry no value and are not modelled (their points are not proposed
    again); early-stopped trials count with the value they reached.
    """

    name = "bayesian"
    description = "Gaussian-process Bayesian optimisation with expected improvement; " \
                  "n_initial_points, acq_candidates, xi, random_state, search_mode"

    def validate(self, problem: Problem) -> None:
        point_space(problem.space, parse_settings(problem.settings, SETTINGS))

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings = parse_settings(problem.settings, SETTINGS)
        points = point_space(problem.space, settings)
        view = read_history(points, problem.objective, history)
        rng = history_rng(settings["random_state"], history)
        seen: set[Hashable] = set(view.seen)
        if n <= 0:
            return []
        if len(view.evaluated) < settings["n_initial_points"]:
            chosen = [points.random_unseen(seen, rng) for _ in range(n)]
        else:
            from threadpoolctl import threadpool_limits

            started = time.perf_counter()
            # A few-hundred-point GP gains nothing from BLAS threads, and on a busy
            # machine they spin: one 300 x 300 Cholesky took 60 ms with two, 0.4 ms with one.
            with threadpool_limits(limits=1, user_api="blas"):
                chosen = _propose(points, [e.point for e in view.evaluated], [e.reward for e in view.evaluated],
                                  list(view.pending), n, settings, seen, rng, problem.check_cancelled)
            logger.debug("bayesian: %d proposals from %d trials in %.3f s", n, len(view.evaluated),
                         time.perf_counter() - started)
        return [Suggestion(points.assignments(p)) for p in chosen]


def _propose(points: PointSpace, xs: list[Point], ys: list[float], pending: list[Point], n: int,
             settings: Mapping[str, Any], seen: set[Hashable], rng: Random,
             check_cancelled: Callable[[], None] = lambda: None) -> list[Point]:
    import numpy as np

    seed = rng.getrandbits(32)
    X = points.features(xs)
    y = np.asarray(ys, dtype=float)
    # Kernel hyperparameters from a seeded subset (the fit is cubic in its size and
    # repeated a few dozen times by the optimiser); the model itself uses every trial.
    subset = sorted(rng.sample(range(len(xs)), _MAX_FIT_POINTS)) if len(xs) > _MAX_FIT_POINTS else slice(None)
    gp = _fit(X[subset], y[subset], seed, optimise=True)
    gp = _fit(X, y, seed, optimise=False, kernel=gp.kernel_)
    best = float(y.max())
    scale = float(y.std()) or 1.0
    elite = [xs[i] for i in np.argsort(-y, kind="stable")[:_ELITE]]
    if pending:
        Xp = points.features(pending)
        X, y = np.vstack([X, Xp]), np.concatenate([y, gp.predict(Xp)])
        gp = _fit(X, y, seed, optimise=False, kernel=gp.kernel_)
    # One candidate pool per batch: later proposals differ through the believer's data.
    candidates = _candidates(points, elite, settings["acq_candidates"], seen, rng)
    Xc = points.features(candidates) if candidates else None
    chosen: list[Point] = []
    for _ in range(n):
        check_cancelled()
        if Xc is None or not candidates:
            chosen.append(points.random_unseen(seen, rng))
            continue
        mu, sigma = gp.predict(Xc, return_std=True)
        scores = expected_improvement(mu, sigma, best + settings["xi"] * scale)
        pick = int(np.argmax(scores))
        point = candidates.pop(pick)
        x_new, y_new = Xc[pick : pick + 1], mu[pick]
        Xc = np.delete(Xc, pick, axis=0)
        seen.add(points.key(point))
        chosen.append(point)
        if len(chosen) < n:
            # Kriging believer: the model's own mean stands in for the unknown result.
            X, y = np.vstack([X, x_new]), np.append(y, y_new)
            gp = _fit(X, y, seed, optimise=False, kernel=gp.kernel_)
    return chosen


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, threshold: float) -> np.ndarray:
    """E[max(f - threshold, 0)] for f ~ N(mu, sigma^2) (larger rewards are better)."""
    import numpy as np
    from scipy.special import ndtr

    sigma = np.maximum(sigma, 1e-12)
    z = (mu - threshold) / sigma
    return (mu - threshold) * ndtr(z) + sigma * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _fit(X: np.ndarray, y: np.ndarray, seed: int, optimise: bool, kernel: Any = None) -> GaussianProcessRegressor:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    if kernel is None:
        d = X.shape[1]
        length = [1.0] * d if 1 < d <= _MAX_ARD_FEATURES else 1.0
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length, (1e-2, 1e3), nu=2.5) \
            + WhiteKernel(1e-2, (1e-6, 1.0))
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=_lbfgs if optimise else None,
                                  n_restarts_optimizer=0, random_state=seed)
    with warnings.catch_warnings():
        # Noise-free rewards drive the noise level to its bound; that is expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(X, y)
    return gp


def _lbfgs(objective: Any, theta: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, float]:
    """scikit-learn's default optimiser with fewer iterations: the marginal likelihood is
    flat near its optimum, and each evaluation costs a Cholesky factorisation."""
    from scipy.optimize import minimize

    result = minimize(objective, theta, method="L-BFGS-B", jac=True, bounds=bounds,
                      options={"maxiter": _MAX_OPTIMISER_STEPS})
    return result.x, float(result.fun)


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
