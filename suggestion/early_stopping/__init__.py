"""Early-stopping algorithms (no grpc, no kubernetes) and, in `service`, their gRPC servicer."""

from suggestion.early_stopping.base import EarlyStoppingAlgorithm, RulesProblem
from suggestion.early_stopping.registry import (
    EARLY_STOPPING,
    UnknownEarlyStopping,
    early_stopping_class,
    early_stopping_names,
)

__all__ = [
    "EARLY_STOPPING",
    "EarlyStoppingAlgorithm",
    "RulesProblem",
    "UnknownEarlyStopping",
    "early_stopping_class",
    "early_stopping_names",
]
