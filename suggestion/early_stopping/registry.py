"""The only place that knows every early-stopping algorithm: name -> "module:Class"."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suggestion.early_stopping.base import EarlyStoppingAlgorithm

__all__ = ["EARLY_STOPPING", "UnknownEarlyStopping", "early_stopping_class", "early_stopping_names"]

EARLY_STOPPING: dict[str, str] = {
    "medianstop": "suggestion.early_stopping.medianstop:MedianStop",
}


class UnknownEarlyStopping(KeyError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"early stopping algorithm {self.name!r} is not known; available: {', '.join(early_stopping_names())}"


def early_stopping_names() -> list[str]:
    return sorted(EARLY_STOPPING)


def early_stopping_class(name: str) -> type[EarlyStoppingAlgorithm]:
    try:
        target = EARLY_STOPPING[name]
    except KeyError:
        raise UnknownEarlyStopping(name) from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
