"""NAS-Bench-201 mode: one primitive per edge of the benchmark's fixed 4-node cell.

Decisions are the encoding's vector itself: one primitive index per edge, in the
benchmark's string order (see `kubenas.nb201`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from suggestion.algorithms.enas.mode import Decisions, SearchMode

if TYPE_CHECKING:
    import torch

    from kubenas.enas_controller.policy import LstmPolicy

__all__ = ["Nb201Mode"]


class Nb201Mode(SearchMode):
    """`architecture` = the NB201 cell string over the nasConfig's primitives."""

    def new_controller(self, generator: torch.Generator) -> LstmPolicy:
        from kubenas.enas_controller.policy import Nb201Controller

        s = self.settings
        return Nb201Controller(
            len(self.encoding.choices),
            self.encoding.choices[0].size,
            s.controller_hidden_size,
            s.controller_temperature,
            s.controller_tanh_const,
            generator,
        )

    def decode(self, assignments: Mapping[str, str]) -> Decisions:
        return list(self.encoding.decode(assignments))

    def encode(self, decisions: Decisions) -> dict[str, str]:
        return self.encoding.encode(tuple(int(x) for x in decisions))
