"""Surrogate models for Bayesian optimisation: fitted on features, predict a mean and a spread.

The four base estimators Katib's `bayesianoptimization` names (scikit-optimize's):
- GP: scikit-learn's GaussianProcessRegressor, constant x Matern(5/2) + white noise on
  normalised rewards; kernel hyperparameters by a short L-BFGS on a seeded subset.
- RF / ET: RandomForestRegressor / ExtraTreesRegressor; the spread is the law of total
  variance over the trees, each tree's leaf a normal with the leaf's mean and variance
  (as scikit-optimize's forests), so a single leaf of mixed trials is uncertain too.
- GBRT: three GradientBoostingRegressors with quantile loss (16%, 50%, 84%); the median
  is the mean and half the 16-84% width the spread (one sigma for a normal).

`refit(X, y)` refits on grown data for the kriging believer; the GP keeps its fitted
kernel there, so a batch of n costs one hyperparameter search, not n.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Protocol

from kubenas.algorithm_settings.model_based import ESTIMATORS

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ESTIMATORS", "MAX_FIT_POINTS", "Surrogate", "fit_surrogate"]


# Per-dimension length scales (ARD) up to this many features; past it (one-hot NAS
# encodings have dozens) one shared length scale keeps the fit well under a second.
_MAX_ARD_FEATURES = 16
# Trials the GP's kernel hyperparameters are fitted on, at most (`subset`).
MAX_FIT_POINTS = 100
# L-BFGS iterations for the kernel hyperparameters (scikit-learn's default: 15,000).
_MAX_OPTIMISER_STEPS = 30
# 100 trees as scikit-optimize, but leaves of single trials: its 3 left the first few
# dozen trials' model so coarse that on a 2-D quadratic 20 proposals never improved on
# the 10 random ones (with 1: within 0.5 of the optimum on 4 seeds of 4).
_TREES = 100
_MIN_SAMPLES_LEAF = 1
# Quantile boosting as scikit-optimize: 30 stages at the 16%, 50% and 84% quantiles.
_BOOSTING_STAGES = 30
_QUANTILES = (0.16, 0.5, 0.84)
# A forest whose trees all agree would claim certainty; keep some spread.
_MIN_STD = 1e-9


class Surrogate(Protocol):
    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the reward at each row of X."""

    def refit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        """The same kind of model on new data (no hyperparameter search)."""


def fit_surrogate(kind: str, X: np.ndarray, y: np.ndarray, seed: int, subset: Any = slice(None)) -> Surrogate:
    """Fit a `kind` (one of ESTIMATORS) model; `subset` rows tune the GP's kernel."""
    if kind == "GP":
        tuned = _fit_gp(X[subset], y[subset], seed, optimise=True)
        return _Gp(_fit_gp(X, y, seed, optimise=False, kernel=tuned.kernel_), seed)
    if kind in ("RF", "ET"):
        return _Forest(kind, seed).refit(X, y)
    if kind == "GBRT":
        return _Boosting(seed).refit(X, y)
    raise ValueError(f"unknown base estimator {kind!r}")


class _Gp:
    def __init__(self, model: Any, seed: int) -> None:
        self.model, self.seed = model, seed

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, sigma = self.model.predict(X, return_std=True)
        return mu, sigma

    def refit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        return _Gp(_fit_gp(X, y, self.seed, optimise=False, kernel=self.model.kernel_), self.seed)


class _Forest:
    def __init__(self, kind: str, seed: int) -> None:
        self.kind, self.seed = kind, seed
        self.model: Any = None

    def refit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

        cls = RandomForestRegressor if self.kind == "RF" else ExtraTreesRegressor
        out = _Forest(self.kind, self.seed)
        out.model = cls(n_estimators=_TREES, min_samples_leaf=_MIN_SAMPLES_LEAF, random_state=self.seed,
                        n_jobs=1).fit(X, y)
        return out

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        means, second = np.zeros(len(X)), np.zeros(len(X))
        for tree in self.model.estimators_:
            leaves = tree.apply(X)
            mean = tree.tree_.value[leaves, 0, 0]
            means += mean
            second += tree.tree_.impurity[leaves] + mean * mean
        count = len(self.model.estimators_)
        mu = means / count
        return mu, np.sqrt(np.maximum(second / count - mu * mu, _MIN_STD**2))


class _Boosting:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.models: list[Any] = []

    def refit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        from sklearn.ensemble import GradientBoostingRegressor

        out = _Boosting(self.seed)
        out.models = [GradientBoostingRegressor(loss="quantile", alpha=q, n_estimators=_BOOSTING_STAGES,
                                                random_state=self.seed).fit(X, y) for q in _QUANTILES]
        return out

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        low, mid, high = (m.predict(X) for m in self.models)
        return mid, np.maximum((high - low) / 2.0, _MIN_STD)


def _fit_gp(X: np.ndarray, y: np.ndarray, seed: int, optimise: bool, kernel: Any = None) -> Any:
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
