"""Micro encoding (ENAS cells): a normal and a reduction cell, emitted as one Genotype.

Each of `num_nodes` nodes picks two (input, primitive) pairs; inputs 0 and 1 are the two
previous cells, input k >= 2 is node k - 2. A cell outputs the concatenation of its
loose ends (the nodes no node of the cell reads), as in ENAS.

Choices, normal cell first then reduce; per node k, for slot a in 0, 1:
`<cell>.node_k.input_a` (k + 2 inputs) then `<cell>.node_k.op_a` (the primitives).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kubenas.genotype import Genotype
from kubenas.space import NasConfig, SpaceError, primitive_names
from suggestion.algorithms.encoding.base import ARCHITECTURE, Choice, NasEncoding, Vector

__all__ = ["CELLS", "MicroEncoding", "cell_primitives", "loose_ends", "usable_in_cell"]

CELLS = ("normal", "reduce")

_KERNEL = re.compile(r"_(\d+)x\1$")


def usable_in_cell(primitive: str) -> bool:
    """Whether a sampled cell may use `primitive`.

    `none` is the DARTS supernet's zero op, never part of a genotype. A cell keeps its
    spatial size with "same" padding (k-1)//2, which only odd k x k windows preserve; Katib's
    enas examples name 2x2 poolings (pool_size 2) that belong to macro search.
    """
    if primitive == "none":
        return False
    match = _KERNEL.search(primitive)
    return match is None or int(match[1]) % 2 == 1


def loose_ends(inputs: list[int], num_nodes: int) -> list[int]:
    """Genotype indices (2..num_nodes+1) of the nodes that no node reads; never empty."""
    used = set(inputs)
    return [k for k in range(2, num_nodes + 2) if k not in used]


def cell_primitives(nas: NasConfig) -> list[str]:
    """The primitives a micro cell may use; SpaceError (naming `operations`) if there are none."""
    names = primitive_names(nas.operations)
    usable = [p for p in names if usable_in_cell(p)]
    if not usable:
        raise SpaceError("operations", names, "micro mode needs a primitive other than none with an odd kernel size")
    return usable


class MicroEncoding(NasEncoding):
    """`architecture` = Genotype JSON; primitives named by `kubenas.space.primitive_names`."""

    mode = "micro"

    def __init__(self, nas: NasConfig, num_nodes: int) -> None:
        super().__init__(nas)
        self.primitives = cell_primitives(nas)
        self.num_nodes = num_nodes

    def build_choices(self) -> Iterator[Choice]:
        for cell in CELLS:
            for node in range(self.num_nodes):
                for slot in range(2):
                    yield Choice(f"{cell}.node_{node}.input_{slot}", node + 2, "input")
                    yield Choice(f"{cell}.node_{node}.op_{slot}", len(self.primitives), "op")

    def genotype(self, vector: Sequence[int]) -> Genotype:
        """The two cells of a vector (concat = each cell's loose ends)."""
        per_cell = 4 * self.num_nodes
        data: dict[str, Any] = {}
        for c, cell in enumerate(CELLS):
            part = vector[c * per_cell : (c + 1) * per_cell]
            inputs = [int(part[i]) for i in range(0, per_cell, 2)]
            ops = [self.primitives[int(part[i])] for i in range(1, per_cell, 2)]
            data[cell] = [[op, source] for op, source in zip(ops, inputs)]
            data[f"{cell}_concat"] = loose_ends(inputs, self.num_nodes)
        return Genotype.from_dict(data)

    def architecture(self, vector: Sequence[int]) -> str:
        return self.genotype(vector).to_json()

    def nn_config(self, vector: Sequence[int]) -> dict[str, Any]:
        graph = self.nas.graph_config
        return {
            "search_mode": "micro",
            "num_layers": graph.num_layers,
            "num_nodes": self.num_nodes,
            "input_sizes": list(graph.input_sizes),
            "output_sizes": list(graph.output_sizes),
            "primitives": list(self.primitives),
        }

    def decode(self, assignments: Mapping[str, str]) -> Vector:
        if ARCHITECTURE not in assignments:
            raise SpaceError("architecture", None, "the trial has no architecture assignment")
        genotype = Genotype.from_json(assignments[ARCHITECTURE])
        if genotype.num_nodes != self.num_nodes:
            raise SpaceError("architecture", assignments[ARCHITECTURE], f"cells must have {self.num_nodes} nodes (num_nodes)")
        index = {p: i for i, p in enumerate(self.primitives)}
        vector: list[int] = []
        for cell, edges in zip(CELLS, (genotype.normal, genotype.reduce)):
            for op, source in edges:
                if op not in index:
                    raise SpaceError(f"architecture.{cell}", op, f"primitives are {', '.join(self.primitives)}")
                vector += [source, index[op]]
        return tuple(vector)

    def fingerprint(self) -> dict[str, Any]:
        return {"mode": self.mode, "num_nodes": self.num_nodes, "primitives": self.primitives}
