"""The micro supernet: ENAS cells whose every node holds every primitive for each of its inputs.

A child is the controller's micro decisions: per cell type (normal, reduce) and node,
`[input_a, input_b, op_a, op_b]`, inputs 0 and 1 being the two previous cells and k >= 2
node k - 2 (the Genotype's indexing). Only the chosen edges run. The layout is
`trainer.cells.CellNetwork`'s (stem, reduction cells at a third and two thirds of the
depth, global pooling, classifier) so the genotype retrains in the same shape; as in
ENAS, a cell's output is its loose ends (the nodes no node reads) concatenated and
projected back to `C` channels by the matching slices of one shared 1x1 convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kubenas.genotype import Genotype
from trainer.cells import reduction_indices
from trainer.enas_search.settings import ConfigError, SpaceSpec
from trainer.ops import (
    FactorizedReduce,
    OpError,
    ReLUConvBN,
    output_size,
    parse_primitive,
    primitive_op,
)

__all__ = ["MicroSupernet", "genotype_of", "loose_ends"]

CellDecisions = Sequence[Sequence[int]]  # per node [input_a, input_b, op_a, op_b]


def loose_ends(cell: CellDecisions) -> list[int]:
    """Genotype indices (2..N+1) of the nodes no node of the cell reads; never empty."""
    read = {int(i) for node in cell for i in node[:2]}
    return [k for k in range(2, len(cell) + 2) if k not in read]


def genotype_of(decisions: Sequence[CellDecisions], primitives: Sequence[str]) -> Genotype:
    """The Genotype of micro decisions (normal cell first)."""
    data: dict[str, object] = {}
    for name, cell in zip(("normal", "reduce"), decisions):
        data[name] = [[primitives[int(node[2 + slot])], int(node[slot])] for node in cell for slot in (0, 1)]
        data[f"{name}_concat"] = loose_ends(cell)
    return Genotype.from_dict(data)


def _bank(primitives: Sequence[str], num_nodes: int, C: int, stride: int) -> nn.ModuleList:
    """[node][slot][primitive] -> an op of stride `stride`, C channels in and out."""
    return nn.ModuleList(
        nn.ModuleList(nn.ModuleList(primitive_op(p, C, stride) for p in primitives) for _ in range(2))
        for _ in range(num_nodes)
    )


class MicroCell(nn.Module):
    """One normal or reduction cell holding every primitive on every edge."""

    def __init__(self, primitives: Sequence[str], num_nodes: int, C_pp: int, C_p: int, C: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction, self.C = reduction, C
        self.pre0: nn.Module = FactorizedReduce(C_pp, C) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0)
        self.pre1 = ReLUConvBN(C_p, C, 1, 1, 0)
        self.ops = _bank(primitives, num_nodes, C, 1)
        # A reduction cell's edges from the two cell inputs halve the map, as CellNetwork's do.
        self.reduce_ops = _bank(primitives, num_nodes, C, 2) if reduction else None
        self.out_weight = nn.Parameter(torch.empty(C, num_nodes * C, 1, 1))
        nn.init.kaiming_normal_(self.out_weight)
        self.out_bn = nn.BatchNorm2d(C)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, cell: CellDecisions) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for node, (in_a, in_b, op_a, op_b) in enumerate(cell):
            h: torch.Tensor | None = None
            for slot, (src, op) in enumerate(((int(in_a), int(op_a)), (int(in_b), int(op_b)))):
                bank = self.reduce_ops if self.reduce_ops is not None and src < 2 else self.ops
                y = bank[node][slot][op](states[src])  # type: ignore[index]
                h = y if h is None else h + y
            assert h is not None
            states.append(h)
        ends = loose_ends(cell)
        C = self.C
        weight = torch.cat([self.out_weight[:, (k - 2) * C:(k - 1) * C] for k in ends], dim=1)
        x = torch.cat([states[k] for k in ends], dim=1)
        return self.out_bn(F.conv2d(F.relu(x), weight.to(x.dtype)))


class MicroSupernet(nn.Module):
    """Stem, `num_layers` weight-sharing cells, global pooling, a linear classifier."""

    def __init__(self, space: SpaceSpec, init_channels: int, stem_multiplier: int = 3) -> None:
        super().__init__()
        self.space = space
        for i, name in enumerate(space.primitives):
            try:
                op_type, params = parse_primitive(name)
                same = output_size(op_type, 8, params, stride=1) == 8
            except OpError as exc:
                raise ConfigError(f"--search-space.primitives[{i}]", name, exc.allowed) from None
            if not same:
                raise ConfigError(f"--search-space.primitives[{i}]", name,
                                  "a cell primitive must keep the map size at stride 1 (an odd k x k window)")
        c_in, h, w = space.input_shape
        side = min(h, w)
        for index in reduction_indices(space.num_layers):
            if side < 2:
                raise ConfigError("--search-space.num_layers", space.num_layers,
                                  f"reduction cell {index} cannot halve a {side}x{side} map; use fewer cells")
            side = (side + 1) // 2
        C_curr = stem_multiplier * init_channels
        self.stem = nn.Sequential(nn.Conv2d(c_in, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_pp, C_p, C = C_curr, C_curr, init_channels
        reductions = reduction_indices(space.num_layers)
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(space.num_layers):
            reduction = i in reductions
            if reduction:
                C *= 2
            self.cells.append(MicroCell(space.primitives, space.num_nodes, C_pp, C_p, C, reduction, reduction_prev))
            reduction_prev = reduction
            C_pp, C_p = C_p, C
        self.classifier = nn.Linear(C_p, space.num_classes)

    def feasible(self, decisions: Sequence[CellDecisions]) -> bool:
        """Every micro child fits (the shapes were checked when the supernet was built)."""
        return True

    def forward(self, x: torch.Tensor, decisions: Sequence[CellDecisions]) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, decisions[1 if cell.reduction else 0])
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
