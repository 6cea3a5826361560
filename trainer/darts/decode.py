"""Architecture weights -> discrete genotype, as in the DARTS paper (and PC-DARTS).

Each intermediate node keeps its two strongest incoming edges; an edge's strength is the
largest softmax weight of any primitive other than `none`, and the edge takes that
primitive. `none` is only the supernet's way to switch an edge off, so it is never chosen.

With PC-DARTS' edge normalisation each edge also has a weight beta; a node's incoming
betas go through their own softmax (`node_softmax`), and an edge's strength is its
primitive weights times that edge weight — so betas decide which edges a node keeps,
while the primitive on a kept edge is still the alphas' choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kubenas.genotype import Genotype

__all__ = ["NONE", "decode_cell", "decode_genotype", "edge_count", "node_softmax"]

NONE = "none"


def edge_count(num_nodes: int) -> int:
    """Edges of a cell: node i has i + 2 inputs (two cell inputs, i earlier nodes)."""
    return sum(i + 2 for i in range(num_nodes))


def node_softmax(beta: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Softmax of the edge weights over each node's incoming edges (one vector, edge order)."""
    if beta.shape != (edge_count(num_nodes),):
        raise ValueError(f"beta shape {tuple(beta.shape)} does not fit {num_nodes} nodes ({edge_count(num_nodes)} edges)")
    parts, start = [], 0
    for node in range(num_nodes):
        parts.append(torch.softmax(beta[start:start + node + 2], dim=-1))
        start += node + 2
    return torch.cat(parts)


def decode_cell(alpha: torch.Tensor, primitives: Sequence[str], num_nodes: int,
                beta: torch.Tensor | None = None) -> list[tuple[str, int]]:
    """Two `(primitive, input)` edges per node from one cell's alphas (edges x primitives)
    and, with edge normalisation, its betas (edges)."""
    if alpha.shape != (edge_count(num_nodes), len(primitives)):
        raise ValueError(f"alpha shape {tuple(alpha.shape)} does not fit {num_nodes} nodes x {len(primitives)} primitives")
    usable = [k for k, p in enumerate(primitives) if p != NONE]
    if not usable:
        raise ValueError("no primitive besides none to choose from")
    weights = torch.softmax(alpha.detach().float(), dim=-1)[:, usable]
    if beta is not None:
        weights = weights * node_softmax(beta.detach().float(), num_nodes)[:, None]
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
    alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor, primitives: Sequence[str], num_nodes: int,
    beta_normal: torch.Tensor | None = None, beta_reduce: torch.Tensor | None = None,
) -> Genotype:
    """The genotype both cells' alphas (and betas) encode; concatenates every intermediate node."""
    normal = decode_cell(alpha_normal, primitives, num_nodes, beta_normal)
    reduce = decode_cell(alpha_reduce, primitives, num_nodes, beta_reduce)
    return Genotype.build(normal, reduce, list(range(2, num_nodes + 2)))
