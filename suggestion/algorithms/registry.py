"""The only place that knows every algorithm: name -> "module:Class".

Modules are imported on first use so that a server for `random` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suggestion.algorithms.base import Algorithm

__all__ = ["ALGORITHMS", "UnknownAlgorithm", "algorithm_class", "algorithm_names"]

ALGORITHMS: dict[str, str] = {
    "random": "suggestion.algorithms.random_search:RandomSearch",
    "grid": "suggestion.algorithms.grid:GridSearch",
    "darts": "suggestion.algorithms.darts:Darts",
    "enas": "suggestion.algorithms.enas:Enas",
    "enas-oneshot": "suggestion.algorithms.enas_oneshot:EnasOneshot",
    "evolution": "suggestion.algorithms.evolution:RegularizedEvolution",
    "bayesian": "suggestion.algorithms.bayesian:BayesianOptimization",
    "bayesianoptimization": "suggestion.algorithms.bayesian:KatibBayesianOptimization",
    "tpe": "suggestion.algorithms.tpe:Tpe",
    "multivariate-tpe": "suggestion.algorithms.tpe:MultivariateTpe",
    "cmaes": "suggestion.algorithms.cmaes:CmaEs",
    "sobol": "suggestion.algorithms.sobol:Sobol",
    "hyperband": "suggestion.algorithms.hyperband:Hyperband",
    "pbt": "suggestion.algorithms.pbt:Pbt",
}


class UnknownAlgorithm(KeyError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"algorithm {self.name!r} is not known; available: {', '.join(algorithm_names())}"


def algorithm_names() -> list[str]:
    return sorted(ALGORITHMS)


def algorithm_class(name: str) -> type[Algorithm]:
    try:
        target = ALGORITHMS[name]
    except KeyError:
        raise UnknownAlgorithm(name) from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
