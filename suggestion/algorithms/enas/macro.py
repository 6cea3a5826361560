"""Macro mode (Katib's ENAS): one op per layer plus skip connections to earlier layers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from kubenas.space import NasConfig
from suggestion.algorithms.base import InvalidSettings
from suggestion.algorithms.enas.mode import Decisions, SearchMode
from suggestion.algorithms.encoding import MacroEncoding

if TYPE_CHECKING:
    import torch

    from kubenas.enas_controller.policy import LstmPolicy
    from suggestion.algorithms.enas.settings import EnasSettings

__all__ = ["MAX_MACRO_LAYERS", "MacroMode"]

# The controller makes numLayers * (numLayers + 1) / 2 decisions per architecture and its
# training cost grows with their square: 200 layers already took minutes per call.
MAX_MACRO_LAYERS = 100


class MacroMode(SearchMode):
    """`architecture` rows [op_id, skip_0..skip_{i-1}] over Katib's expanded op list.

    Decision row i is the architecture row i padded with zeros to numLayers + 1.
    """

    def __init__(self, nas: NasConfig, settings: EnasSettings) -> None:
        if nas.graph_config.num_layers > MAX_MACRO_LAYERS:
            raise InvalidSettings("nasConfig.graphConfig.numLayers", nas.graph_config.num_layers,
                                  f"enas (macro) searches at most {MAX_MACRO_LAYERS} layers: an integer in "
                                  f"[1, {MAX_MACRO_LAYERS}]")
        super().__init__(nas, settings)
        assert isinstance(self.encoding, MacroEncoding)
        self.macro: MacroEncoding = self.encoding
        self.ops = self.macro.ops
        self.num_layers = self.macro.num_layers

    def new_controller(self, generator: torch.Generator) -> LstmPolicy:
        from kubenas.enas_controller.policy import MacroController

        s = self.settings
        return MacroController(
            self.num_layers,
            len(self.ops),
            s.controller_hidden_size,
            s.controller_temperature,
            s.controller_tanh_const,
            s.controller_skip_target,
            generator,
        )

    def decode(self, assignments: Mapping[str, str]) -> Decisions:
        L = self.num_layers
        rows = self.macro.rows(self.macro.decode(assignments))
        return [row + [0] * (L - i) for i, row in enumerate(rows)]

    def _vector(self, decisions: Decisions) -> tuple[int, ...]:
        return tuple(int(x) for i, d in enumerate(decisions) for x in d[: i + 1])

    def fits(self, decisions: Decisions) -> bool:
        return self.macro.fits(self._vector(decisions))

    def encode(self, decisions: Decisions) -> dict[str, str]:
        return self.macro.encode(self._vector(decisions))
