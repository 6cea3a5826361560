"""The interface of an ENAS search mode (macro, micro): space, controller, codec.

A mode knows its search space, builds the matching controller, decodes a past trial's
assignments into controller decisions (nested lists of ints, the controller's tensor
layout) and encodes sampled decisions into wire assignments. Torch is imported only in
`new_controller`, so validating settings never loads it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubenas.space import NasConfig

if TYPE_CHECKING:
    import torch

    from suggestion.algorithms.enas.controller import LstmPolicy
    from suggestion.algorithms.enas.settings import EnasSettings

__all__ = ["Decisions", "SearchMode"]

Decisions = list[Any]  # nested lists of ints in the controller's decision-tensor layout


class SearchMode(ABC):
    """One search mode for one experiment's nasConfig and settings (immutable)."""

    def __init__(self, nas: NasConfig, settings: EnasSettings) -> None:
        self.nas = nas
        self.settings = settings

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything about the space that saved controller weights depend on."""

    @abstractmethod
    def new_controller(self, generator: torch.Generator) -> LstmPolicy:
        """A freshly initialised controller drawing its weights from `generator`."""

    @abstractmethod
    def decode(self, assignments: Mapping[str, str]) -> Decisions:
        """A trial's decisions; raises ValueError (SpaceError, GenotypeError) if it does not fit."""

    @abstractmethod
    def encode(self, decisions: Decisions) -> dict[str, str]:
        """Wire assignments (`architecture`, `nn_config`) for one sampled architecture."""
