"""Micro mode (beyond Katib): a normal and a reduction cell, emitted as one Genotype.

Each of `num_nodes` nodes picks two inputs among the two previous cells and earlier nodes
and a primitive for each. As in ENAS, a cell outputs the concatenation of its loose ends:
the nodes no other node of the cell reads. The codec is the shared micro encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from kubenas.space import NasConfig
from suggestion.algorithms.enas.mode import Decisions, SearchMode
from suggestion.algorithms.encoding import MicroEncoding, loose_ends, usable_in_cell

if TYPE_CHECKING:
    import torch

    from kubenas.enas_controller.policy import LstmPolicy
    from suggestion.algorithms.enas.settings import EnasSettings

__all__ = ["MicroMode", "loose_ends", "usable_in_cell"]


class MicroMode(SearchMode):
    """`architecture` = Genotype JSON; primitives named by `kubenas.space.primitive_names`.

    Decisions per cell and node are [input_a, input_b, op_a, op_b]; the encoding's vector
    holds them per node as input_a, op_a, input_b, op_b.
    """

    def __init__(self, nas: NasConfig, settings: EnasSettings) -> None:
        super().__init__(nas, settings)
        assert isinstance(self.encoding, MicroEncoding)
        self.micro: MicroEncoding = self.encoding
        self.primitives = self.micro.primitives
        self.num_nodes = self.micro.num_nodes

    def new_controller(self, generator: torch.Generator) -> LstmPolicy:
        from kubenas.enas_controller.policy import MicroController

        s = self.settings
        return MicroController(
            self.num_nodes,
            len(self.primitives),
            s.controller_hidden_size,
            s.controller_temperature,
            s.controller_tanh_const,
            generator,
        )

    def decode(self, assignments: Mapping[str, str]) -> Decisions:
        vector = self.micro.decode(assignments)
        n = self.num_nodes
        cells: Decisions = []
        for c in range(2):
            nodes = []
            for node in range(n):
                in_a, op_a, in_b, op_b = vector[(c * n + node) * 4 : (c * n + node + 1) * 4]
                nodes.append([in_a, in_b, op_a, op_b])
            cells.append(nodes)
        return cells

    def encode(self, decisions: Decisions) -> dict[str, str]:
        vector = tuple(int(x) for nodes in decisions for in_a, in_b, op_a, op_b in nodes for x in (in_a, op_a, in_b, op_b))
        return self.micro.encode(vector)
