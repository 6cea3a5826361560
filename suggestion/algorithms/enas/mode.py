"""The interface of an ENAS search mode (macro, micro, nb201): space, controller, codec.

A mode knows its search space, builds the matching controller, decodes a past trial's
assignments into controller decisions (nested lists of ints, the controller's tensor
layout) and encodes sampled decisions into wire assignments. The wire format is the
shared NAS encoding of the same `search_mode` (`suggestion.algorithms.encoding`), so
ENAS and every other algorithm read and write the same architectures; a mode only maps
the encoding's choice vector to and from its controller's decision layout. Torch is
imported only in `new_controller`, so validating settings never loads it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubenas.space import NasConfig
from suggestion.algorithms.encoding import NasEncoding, nas_encoding

if TYPE_CHECKING:
    import torch

    from kubenas.enas_controller.policy import LstmPolicy
    from suggestion.algorithms.enas.settings import EnasSettings

__all__ = ["Decisions", "SearchMode"]

Decisions = list[Any]  # nested lists of ints in the controller's decision-tensor layout


class SearchMode(ABC):
    """One search mode for one experiment's nasConfig and settings (immutable)."""

    def __init__(self, nas: NasConfig, settings: EnasSettings) -> None:
        self.nas = nas
        self.settings = settings
        mode = settings.search_mode
        # Raises InvalidSettings naming the nasConfig field when the space does not fit.
        self.encoding: NasEncoding = nas_encoding(
            nas, {"search_mode": mode, "num_nodes": settings.num_nodes if mode == "micro" else None}
        )

    def fingerprint(self) -> dict[str, Any]:
        """Everything about the space that saved controller weights depend on."""
        return self.encoding.fingerprint()

    @abstractmethod
    def new_controller(self, generator: torch.Generator) -> LstmPolicy:
        """A freshly initialised controller drawing its weights from `generator`."""

    @abstractmethod
    def decode(self, assignments: Mapping[str, str]) -> Decisions:
        """A trial's decisions; raises ValueError (SpaceError, GenotypeError) if it does not fit."""

    def fits(self, decisions: Decisions) -> bool:
        """Whether an architecture fits the input (cells and NB201 always do)."""
        return True

    @abstractmethod
    def encode(self, decisions: Decisions) -> dict[str, str]:
        """Wire assignments (`architecture`, `nn_config`) for one sampled architecture."""
