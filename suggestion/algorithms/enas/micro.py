"""Micro mode (beyond Katib): a normal and a reduction cell, emitted as one Genotype.

Each of `num_nodes` nodes picks two inputs among the two previous cells and earlier nodes
and a primitive for each. As in ENAS, a cell outputs the concatenation of its loose ends:
the nodes no other node of the cell reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubenas.genotype import Genotype
from kubenas.space import NasConfig, SpaceError, primitive_names
from suggestion.algorithms.base import InvalidSettings
from suggestion.algorithms.enas.mode import Decisions, SearchMode

if TYPE_CHECKING:
    import torch

    from suggestion.algorithms.enas.controller import LstmPolicy
    from suggestion.algorithms.enas.settings import EnasSettings

__all__ = ["MicroMode", "loose_ends", "usable_in_cell"]


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


class MicroMode(SearchMode):
    """`architecture` = Genotype JSON; primitives named by `kubenas.space.primitive_names`."""

    def __init__(self, nas: NasConfig, settings: EnasSettings) -> None:
        super().__init__(nas, settings)
        try:
            names = primitive_names(nas.operations)
        except SpaceError as err:
            raise InvalidSettings(f"nasConfig.{err.field}", err.value, err.allowed) from None
        self.primitives = [p for p in names if usable_in_cell(p)]
        if not self.primitives:
            raise InvalidSettings(
                "nasConfig.operations", names, "micro mode needs a primitive other than none with an odd kernel size"
            )
        self.num_nodes = settings.num_nodes

    def fingerprint(self) -> dict[str, Any]:
        return {"mode": "micro", "num_nodes": self.num_nodes, "primitives": self.primitives}

    def new_controller(self, generator: torch.Generator) -> LstmPolicy:
        from suggestion.algorithms.enas.controller import MicroController

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
        if "architecture" not in assignments:
            raise SpaceError("architecture", None, "the trial has no architecture assignment")
        genotype = Genotype.from_json(assignments["architecture"])
        if genotype.num_nodes != self.num_nodes:
            raise SpaceError("architecture", assignments["architecture"], f"cells must have {self.num_nodes} nodes (num_nodes)")
        index = {p: i for i, p in enumerate(self.primitives)}
        cells: Decisions = []
        for name, edges in (("normal", genotype.normal), ("reduce", genotype.reduce)):
            nodes = []
            for node in range(self.num_nodes):
                (op_a, in_a), (op_b, in_b) = edges[2 * node], edges[2 * node + 1]
                for op in (op_a, op_b):
                    if op not in index:
                        raise SpaceError(f"architecture.{name}", op, f"primitives are {', '.join(self.primitives)}")
                nodes.append([in_a, in_b, index[op_a], index[op_b]])
            cells.append(nodes)
        return cells

    def encode(self, decisions: Decisions) -> dict[str, str]:
        cells = []
        for nodes in decisions:
            edges = []
            for in_a, in_b, op_a, op_b in nodes:
                edges += [(self.primitives[int(op_a)], int(in_a)), (self.primitives[int(op_b)], int(in_b))]
            concat = loose_ends([i for _, i in edges], self.num_nodes)
            cells.append((edges, concat))
        genotype = Genotype.from_dict(
            {
                "normal": [list(e) for e in cells[0][0]],
                "normal_concat": cells[0][1],
                "reduce": [list(e) for e in cells[1][0]],
                "reduce_concat": cells[1][1],
            }
        )
        graph = self.nas.graph_config
        config = {
            "search_mode": "micro",
            "num_layers": graph.num_layers,
            "num_nodes": self.num_nodes,
            "input_sizes": list(graph.input_sizes),
            "output_sizes": list(graph.output_sizes),
            "primitives": list(self.primitives),
        }
        return {"architecture": genotype.to_json(), "nn_config": json.dumps(config)}
