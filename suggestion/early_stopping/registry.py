"""The only place that knows every early-stopping algorithm: name -> "module:Class"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubenas.registry import Registry, UnknownName, import_target

if TYPE_CHECKING:
    from suggestion.early_stopping.base import EarlyStoppingAlgorithm

__all__ = ["EARLY_STOPPING", "UnknownEarlyStopping", "early_stopping_class", "early_stopping_names"]


class UnknownEarlyStopping(UnknownName):
    """An early-stopping name not in the registry."""


EARLY_STOPPING: Registry[str] = Registry("early stopping algorithm", [
    ("medianstop", "suggestion.early_stopping.medianstop:MedianStop"),
], unknown=UnknownEarlyStopping)


def early_stopping_names() -> list[str]:
    return sorted(EARLY_STOPPING)


def early_stopping_class(name: str) -> type[EarlyStoppingAlgorithm]:
    cls: type[EarlyStoppingAlgorithm] = import_target(EARLY_STOPPING[name])
    return cls
