"""Acquisition functions for Bayesian optimisation, written for rewards (larger is better).

Katib's `acq_func` names scikit-optimize's functions, which minimise a loss; on a reward
they read: EI = E[max(f - best - xi, 0)], PI = P(f > best + xi), LCB = mu + kappa * sigma
(the lower confidence bound of the loss is the upper bound of the reward). `gp_hedge`
(Hoffman et al. 2011) picks one of the three per proposal with softmax odds of its gain.
scikit-optimize accumulates the gains across calls; a stateless call has only the present
model, so the gain of a function is the model's mean at the candidate it would choose
(in units of the rewards' spread).
"""

from __future__ import annotations

import math
from random import Random
from typing import TYPE_CHECKING

from kubenas.algorithm_settings.model_based import ACQ_FUNCS

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ACQ_FUNCS", "HEDGED", "acquisition", "expected_improvement", "hedge"]

HEDGED: tuple[str, ...] = ("EI", "PI", "LCB")
# scikit-optimize's kappa for LCB.
_KAPPA = 1.96


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, threshold: float) -> np.ndarray:
    """E[max(f - threshold, 0)] for f ~ N(mu, sigma^2) (larger rewards are better)."""
    import numpy as np
    from scipy.special import ndtr

    sigma = np.maximum(sigma, 1e-12)
    z = (mu - threshold) / sigma
    return (mu - threshold) * ndtr(z) + sigma * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def acquisition(name: str, mu: np.ndarray, sigma: np.ndarray, threshold: float) -> np.ndarray:
    """The score of each candidate under EI, PI or LCB (`threshold` = best + xi)."""
    import numpy as np
    from scipy.special import ndtr

    if name == "EI":
        return expected_improvement(mu, sigma, threshold)
    if name == "PI":
        return ndtr((mu - threshold) / np.maximum(sigma, 1e-12))
    if name == "LCB":
        return mu + _KAPPA * sigma
    raise ValueError(f"unknown acquisition function {name!r}")


def hedge(mu: np.ndarray, sigma: np.ndarray, threshold: float, scale: float, rng: Random) -> str:
    """Which of HEDGED to use for one proposal, drawn with softmax(gain / scale) odds."""
    import numpy as np

    gains = np.array([mu[int(np.argmax(acquisition(a, mu, sigma, threshold)))] for a in HEDGED]) / scale
    odds = np.exp(gains - gains.max())
    odds /= odds.sum()
    u, total = rng.random(), 0.0
    for name, p in zip(HEDGED, odds):
        total += float(p)
        if u < total:
            return name
    return HEDGED[-1]
