"""The only place that knows every algorithm: name -> "module:Class".

Modules are imported on first use so that a server for `random` never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubenas.registry import Registry, UnknownName, import_target

if TYPE_CHECKING:
    from suggestion.algorithms.base import Algorithm

__all__ = ["ALGORITHMS", "UnknownAlgorithm", "algorithm_class", "algorithm_names"]


class UnknownAlgorithm(UnknownName):
    """An algorithm name not in the registry: "algorithm 'x' is not known; available: ..."."""


ALGORITHMS: Registry[str] = Registry("algorithm", [
    ("random", "suggestion.algorithms.random_search:RandomSearch"),
    ("grid", "suggestion.algorithms.grid:GridSearch"),
    ("darts", "suggestion.algorithms.darts:Darts"),
    ("enas", "suggestion.algorithms.enas:Enas"),
    ("enas-oneshot", "suggestion.algorithms.enas_oneshot:EnasOneshot"),
    ("evolution", "suggestion.algorithms.evolution:RegularizedEvolution"),
    ("bayesian", "suggestion.algorithms.bayesian:BayesianOptimization"),
    ("bayesianoptimization", "suggestion.algorithms.bayesian:KatibBayesianOptimization"),
    ("tpe", "suggestion.algorithms.tpe:Tpe"),
    ("multivariate-tpe", "suggestion.algorithms.tpe:MultivariateTpe"),
    ("cmaes", "suggestion.algorithms.cmaes:CmaEs"),
    ("sobol", "suggestion.algorithms.sobol:Sobol"),
    ("hyperband", "suggestion.algorithms.hyperband:Hyperband"),
    ("pbt", "suggestion.algorithms.pbt:Pbt"),
], unknown=UnknownAlgorithm)


def algorithm_names() -> list[str]:
    return sorted(ALGORITHMS)


def algorithm_class(name: str) -> type[Algorithm]:
    cls: type[Algorithm] = import_target(ALGORITHMS[name])
    return cls
