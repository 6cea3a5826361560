"""The DARTS supernet: a stem, `num_layers` search cells, a classifier, and the alphas.

Cells at 1/3 and 2/3 of the depth are reduction cells (stride-2 edges from the cell
inputs, doubled channels); all normal cells share `alpha_normal`, all reduction cells
`alpha_reduce`. With `edge_normalization` (PC-DARTS) every edge also has a weight beta
(`beta_normal`, `beta_reduce`): each node multiplies an incoming edge's mixed output by the
softmax of its incoming betas. Betas are architecture parameters like the alphas — the
architect updates them, first or second order, and decoding uses them. Model weights and
architecture weights are kept apart by name so the bilevel optimisation can differentiate
each (see `weights()` / `alphas()`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kubenas.genotype import Genotype
from trainer.cells import reduction_indices
from trainer.darts.decode import NONE, decode_genotype, edge_count, node_softmax
from trainer.darts.mixed_op import MixedOp
from trainer.ops import FactorizedReduce, ReLUConvBN

__all__ = ["ALPHA_NAMES", "SearchCell", "Supernet"]

ALPHA_NAMES = ("alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce")


class SearchCell(nn.Module):
    def __init__(self, num_nodes: int, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
                 primitives: Sequence[str], partial_channels: int) -> None:
        super().__init__()
        self.reduction = reduction
        self.num_nodes = num_nodes
        self.pre0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.pre1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        for node in range(num_nodes):
            for j in range(node + 2):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(MixedOp(C, stride, primitives, partial_channels))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """`weights`: softmaxed alphas (edges x primitives); `edge_weights`: per-node softmaxed betas."""
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(self.num_nodes):
            if edge_weights is None:
                node = sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            else:
                node = sum(edge_weights[offset + j] * self.edges[offset + j](h, weights[offset + j])
                           for j, h in enumerate(states))
            offset += len(states)
            states.append(node)  # type: ignore[arg-type]
        return torch.cat(states[2:], dim=1)


class Supernet(nn.Module):
    """Over-parameterised network; `forward(x)` -> logits under the current alphas."""

    def __init__(self, in_channels: int, num_classes: int, num_layers: int, primitives: Sequence[str],
                 init_channels: int = 16, num_nodes: int = 4, stem_multiplier: int = 3,
                 partial_channels: int = 1, edge_normalization: bool = False) -> None:
        super().__init__()
        # `none` is the supernet's own; put it first as DARTS does so alphas read the same.
        self.primitives = (NONE, *[p for p in primitives if p != NONE])
        self.num_nodes = num_nodes
        C = init_channels
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        reductions = reduction_indices(num_layers)  # the same cells the retrained network reduces
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(num_layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            self.cells.append(SearchCell(num_nodes, C_pp, C_p, C_curr, reduction, reduction_prev,
                                         self.primitives, partial_channels))
            reduction_prev = reduction
            C_pp, C_p = C_p, num_nodes * C_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        shape = (edge_count(num_nodes), len(self.primitives))
        # Small random alphas (DARTS: 1e-3 * N(0, 1)) break ties without favouring any op.
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape))
        self.edge_normalization = edge_normalization
        self.beta_normal: nn.Parameter | None = None
        self.beta_reduce: nn.Parameter | None = None
        if edge_normalization:
            self.beta_normal = nn.Parameter(1e-3 * torch.randn(shape[0]))
            self.beta_reduce = nn.Parameter(1e-3 * torch.randn(shape[0]))

    def named_weights(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if n not in ALPHA_NAMES}

    def weights(self) -> list[nn.Parameter]:
        return list(self.named_weights().values())

    def named_alphas(self) -> dict[str, nn.Parameter]:
        """Every architecture parameter by name: the alphas, then the betas when present."""
        return {n: p for n in ALPHA_NAMES if (p := getattr(self, n)) is not None}

    def alphas(self) -> list[nn.Parameter]:
        return list(self.named_alphas().values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal = torch.softmax(self.alpha_normal, dim=-1)
        w_reduce = torch.softmax(self.alpha_reduce, dim=-1)
        e_normal = e_reduce = None
        if self.beta_normal is not None and self.beta_reduce is not None:
            e_normal = node_softmax(self.beta_normal, self.num_nodes)
            e_reduce = node_softmax(self.beta_reduce, self.num_nodes)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            if cell.reduction:
                s0, s1 = s1, cell(s0, s1, w_reduce, e_reduce)
            else:
                s0, s1 = s1, cell(s0, s1, w_normal, e_normal)
        return self.classifier(torch.flatten(self.pool(s1), 1))

    def compile_edges(self) -> None:
        """torch.compile each mixed op, not the whole network (regional compilation).

        Edges of one channel count, stride and input size share compiled code, so compilation
        grows with those few shapes, not with the depth; and each graph stays small. (The whole
        supernet in one graph took over 20 minutes to compile on CPU and then hit an Inductor
        code-generation bug in PyTorch 2.13; cells compiled with dynamic shapes hit another.)
        Forward only: the architect's functional calls run through the compiled edges as well.
        """
        # Every edge shape, in training and under no_grad, is its own compiled variant.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        for module in self.modules():
            if isinstance(module, MixedOp):
                module.compile(dynamic=False)

    def genotype(self) -> Genotype:
        return decode_genotype(self.alpha_normal, self.alpha_reduce, self.primitives, self.num_nodes,
                               self.beta_normal, self.beta_reduce)
