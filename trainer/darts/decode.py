"""Architecture weights -> discrete genotype, as in the DARTS paper.

Each intermediate node keeps its two strongest incoming edges; an edge's strength is the
largest softmax weight of any primitive other than `none`, and the edge takes that
primitive. `none` is only the supernet's way to switch an edge off, so it is never chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kubenas.genotype import Genotype

__all__ = ["NONE", "decode_cell", "decode_genotype", "edge_count"]

NONE = "none"


def edge_count(num_nodes: int) -> int:
    """Edges of a cell: node i has i + 2 inputs (two cell inputs, i earlier nodes)."""
    return sum(i + 2 for i in range(num_nodes))


def decode_cell(alpha: torch.Tensor, primitives: Sequence[str], num_nodes: int) -> list[tuple[str, int]]:
    """Two `(primitive, input)` edges per node from one cell's alphas (edges x primitives)."""
    if alpha.shape != (edge_count(num_nodes), len(primitives)):
        raise ValueError(f"alpha shape {tuple(alpha.shape)} does not fit {num_nodes} nodes x {len(primitives)} primitives")
    usable = [k for k, p in enumerate(primitives) if p != NONE]
    if not usable:
        raise ValueError("no primitive besides none to choose from")
    weights = torch.softmax(alpha.detach().float(), dim=-1)[:, usable]
    edges: list[tuple[str, int]] = []
    start = 0
    for node in range(num_nodes):
        inputs = node + 2
        block = weights[start:start + inputs]
        best_weight, best_op = block.max(dim=-1)
        # Stable ordering: ties go to the earlier input, so decoding is deterministic.
        order = sorted(range(inputs), key=lambda j: (-float(best_weight[j]), j))[:2]
        for j in sorted(order):
            edges.append((primitives[usable[int(best_op[j])]], j))
        start += inputs
    return edges


def decode_genotype(
    alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor, primitives: Sequence[str], num_nodes: int
) -> Genotype:
    """The genotype both cells' alphas encode; concatenates every intermediate node."""
    normal = decode_cell(alpha_normal, primitives, num_nodes)
    reduce = decode_cell(alpha_reduce, primitives, num_nodes)
    return Genotype.build(normal, reduce, list(range(2, num_nodes + 2)))
