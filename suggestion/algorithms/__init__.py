"""Search algorithms: no grpc, no kubernetes imports (checked by import-linter)."""

from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.registry import (
    ALGORITHMS,
    UnknownAlgorithm,
    algorithm_class,
    algorithm_names,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "InvalidSettings",
    "Problem",
    "Suggestion",
    "UnknownAlgorithm",
    "algorithm_class",
    "algorithm_names",
]
