"""ENAS for the suggestion server: `Enas` is registered as "enas" in the algorithm registry."""

from __future__ import annotations

from suggestion.algorithms.enas.algorithm import Enas

__all__ = ["Enas"]
