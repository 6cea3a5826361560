"""A cell network built from a Genotype: ENAS micro children and DARTS retraining.

The layout follows DARTS' evaluation network: a 3×3 convolution stem, `num_cells` cells
with reduction cells at one third and two thirds of the depth, global average pooling and
a linear classifier. Each cell preprocesses the two previous cell outputs to `C` channels,
computes every node as the sum of its two chosen edges, and concatenates the nodes in
`*_concat`. Reduction cells apply stride 2 on the edges that read a cell input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kubenas.genotype import Genotype
from trainer.ops import FactorizedReduce, OpError, ReLUConvBN, parse_primitive, primitive_op

__all__ = ["Cell", "CellNetwork", "check_cell_shapes", "reduction_indices"]


def reduction_indices(num_cells: int) -> tuple[int, ...]:
    """Cells that halve the resolution: at one and two thirds of the depth, as in DARTS."""
    return tuple(sorted({num_cells // 3, 2 * num_cells // 3}))


def check_cell_shapes(genotype: Genotype, num_cells: int, input_hw: tuple[int, int]) -> None:
    """Raise OpError (naming the field) if a primitive is unknown or a reduction cannot fit."""
    for field, edges in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        for i, (primitive, _) in enumerate(edges):
            try:
                parse_primitive(primitive)
            except OpError as exc:
                raise OpError(f"architecture.{field}[{i}]", primitive, exc.allowed) from None
    if num_cells < 1:
        raise OpError("nn_config.num_layers", num_cells, "must be an integer >= 1 (number of cells)")
    h, w = input_hw
    for index in reduction_indices(num_cells):
        if min(h, w) < 2:
            raise OpError("nn_config.num_layers", num_cells,
                          f"reduction cell {index} cannot halve a {h}x{w} feature map; use a larger input or fewer cells")
        h, w = (h + 1) // 2, (w + 1) // 2


class _DropPath(nn.Module):
    """Zero whole samples of a branch with probability `p` during training (DARTS retraining)."""

    def __init__(self) -> None:
        super().__init__()
        self.p = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0], 1, 1, 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
        return x * mask / keep


class Cell(nn.Module):
    """One normal or reduction cell of a genotype."""

    def __init__(self, genotype: Genotype, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, affine: bool = True) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0: nn.Module = (FactorizedReduce(C_pp, C, affine) if reduction_prev
                                else ReLUConvBN(C_pp, C, 1, 1, 0, affine=affine))
        self.pre1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=affine)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = tuple(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.inputs = tuple(index for _, index in edges)
        self.ops = nn.ModuleList(
            primitive_op(name, C, 2 if reduction and index < 2 else 1, affine) for name, index in edges
        )
        self.drops = nn.ModuleList(
            _DropPath() if not isinstance(op, nn.Identity) else nn.Identity() for op in self.ops
        )
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for node in range(len(self.ops) // 2):
            a, b = 2 * node, 2 * node + 1
            h = self.drops[a](self.ops[a](states[self.inputs[a]]))
            h = h + self.drops[b](self.ops[b](states[self.inputs[b]]))
            states.append(h)
        return torch.cat([states[i] for i in self.concat], dim=1)


class CellNetwork(nn.Module):
    """Stem, `num_cells` cells from `genotype`, global pooling and a classifier."""

    def __init__(self, genotype: Genotype, input_shape: Sequence[int], num_classes: int,
                 num_cells: int = 8, init_channels: int = 16, stem_multiplier: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        c_in, h, w = (int(v) for v in input_shape)
        check_cell_shapes(genotype, num_cells, (h, w))
        C_curr = stem_multiplier * init_channels
        self.stem = nn.Sequential(nn.Conv2d(c_in, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_pp, C_p, C = C_curr, C_curr, init_channels
        reductions = reduction_indices(num_cells)
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(num_cells):
            reduction = i in reductions
            if reduction:
                C *= 2
            cell = Cell(genotype, C_pp, C_p, C, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.multiplier * C
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(C_p, num_classes)

    def set_drop_path(self, p: float) -> None:
        """Set the drop-path probability of every cell edge (called once per epoch)."""
        for module in self.modules():
            if isinstance(module, _DropPath):
                module.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.dropout(self.pool(s1).flatten(1)))
