"""The NAS-Bench-201 network (Dong & Yang, ICLR 2020) built from an NB201 cell string.

Skeleton, as in the benchmark: a 3x3 conv stem with C channels and BatchNorm; three stages
of N cells with C, 2C and 4C channels; between stages a residual reduction block (ReLU-conv-BN
3x3 stride 2, ReLU-conv-BN 3x3, shortcut 2x2 average pool + 1x1 conv); BatchNorm + ReLU,
global average pool and a linear classifier. Every cell is the same searched cell: node j
sums op(j<-i)(node i) over i < j, node 0 is the cell input and node 3 its output.

Two choices of ours, documented in README.md: the shortcut's pool rounds up (ceil mode),
so odd map sizes (7x7 from 28x28 MNIST) work — for even sizes it is the benchmark's pool;
and an optional dropout before the classifier (0 by default, as in the benchmark).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kubenas.nb201 import NB201_EDGES, NB201_NUM_NODES, Cell201
from kubenas.space import SpaceError, loads_lenient
from trainer.enas.model import ArchitectureError, strip_quotes
from trainer.ops import OpError, ReLUConvBN, primitive_op

__all__ = ["NO_EDGE", "SEARCH_MODE", "Nb201Cell", "Nb201Network", "Nb201Spec", "ReductionBlock",
           "build_nb201", "parse_nb201"]

SEARCH_MODE = "nb201"
NO_EDGE = "none"


@dataclass(frozen=True)
class Nb201Spec:
    """A parsed trial assignment: the cell, the data shapes and the skeleton's sizes."""

    cell: Cell201
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    num_layers: int  # cells per stage (N)
    init_channels: int = 16  # C
    primitives: tuple[str, ...] = ()  # the space the cell was drawn from; () = not stated


def _positive_ints(value: Any, field: str, lengths: range, shape: str) -> list[int]:
    items = [value] if isinstance(value, (int, str)) else value
    try:
        ints = [int(str(v)) for v in items] if not isinstance(value, bool) else []
    except (TypeError, ValueError):
        ints = []
    if len(ints) not in lengths or any(v < 1 for v in ints):
        raise ArchitectureError(field, value, f"must be {shape} of positive integers")
    return ints


def _positive_int(value: Any, field: str, what: str) -> int:
    try:
        number = int(str(value)) if not isinstance(value, (bool, list, dict)) else 0
    except ValueError:
        number = 0
    if number < 1:
        raise ArchitectureError(field, value, f"must be an integer >= 1 ({what})")
    return number


def _primitives(config: Mapping[str, Any]) -> tuple[str, ...]:
    raw = config.get("primitives", [])
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise ArchitectureError("nn_config.primitives", raw, "must be a JSON list of primitive names")
    return tuple(raw)


def parse_nb201(architecture: str, nn_config: str, init_channels: int | None = None) -> Nb201Spec:
    """Parse the `architecture` NB201 string and the `nn_config` JSON (`"` or Katib's `'`).

    `init_channels` (the --init-channels flag) wins over `nn_config.init_channels` (default 16).
    Raises ArchitectureError naming the field, the value and what is allowed.
    """
    try:
        config = loads_lenient(strip_quotes(nn_config), "nn_config")
    except SpaceError as exc:
        raise ArchitectureError("nn_config", nn_config, exc.allowed) from None
    if not isinstance(config, Mapping):
        raise ArchitectureError("nn_config", nn_config, "must be a JSON object")
    mode = config.get("search_mode", SEARCH_MODE)
    if mode != SEARCH_MODE:
        raise ArchitectureError("nn_config.search_mode", mode,
                                f"must be {SEARCH_MODE!r} for this trainer (use `kubenas-train enas` for macro/micro)")
    try:
        cell = Cell201.from_string(strip_quotes(architecture))
    except SpaceError as exc:
        raise ArchitectureError(exc.field, exc.value, exc.allowed) from None
    primitives = _primitives(config)
    for op, (to, src) in zip(cell.ops, NB201_EDGES):
        if primitives and op not in primitives:
            raise ArchitectureError(f"architecture (edge {to}<-{src})", op,
                                    f"must be one of nn_config.primitives {list(primitives)}")
    # Katib writes input_sizes channels-last: [H, W, C]; [H, W] means one channel.
    sizes = _positive_ints(config.get("input_sizes"), "nn_config.input_sizes", range(2, 4), "[H, W, C] or [H, W]")
    shape = (sizes[2] if len(sizes) == 3 else 1, sizes[0], sizes[1])
    classes = _positive_ints(config.get("output_sizes"), "nn_config.output_sizes", range(1, 100),
                             "a non-empty list (the last is the class count)")[-1]
    num_layers = _positive_int(config.get("num_layers"), "nn_config.num_layers", "cells per stage")
    if init_channels is None:
        channels = _positive_int(config.get("init_channels", 16), "nn_config.init_channels", "the first stage's channels")
    else:
        channels = _positive_int(init_channels, "--init-channels", "the first stage's channels")
    return Nb201Spec(cell, shape, classes, num_layers, channels, primitives)


class Nb201Cell(nn.Module):
    """One NB201 cell with C channels in and out; `none` edges are not computed at all."""

    def __init__(self, cell: Cell201, C: int) -> None:
        super().__init__()
        self.ops = cell.ops
        self.edges = nn.ModuleDict()
        # Per target node, the (edge key, source node) pairs that carry a real op.
        self.inputs: list[list[tuple[str, int]]] = [[] for _ in range(NB201_NUM_NODES)]
        for op, (to, src) in zip(cell.ops, NB201_EDGES):
            if op == NO_EDGE:
                continue
            key = f"{to}_{src}"
            try:
                self.edges[key] = primitive_op(op, C, 1)
            except OpError as exc:
                raise ArchitectureError(f"architecture (edge {to}<-{src})", op, exc.allowed) from None
            self.inputs[to].append((key, src))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, NB201_NUM_NODES):
            terms = [self.edges[key](nodes[src]) for key, src in self.inputs[node]]
            # A node without incoming ops is the zero map (the benchmark's `none` sums to 0).
            nodes.append(torch.stack(terms).sum(0) if len(terms) > 1 else terms[0] if terms else torch.zeros_like(x))
        return nodes[-1]


class ReductionBlock(nn.Module):
    """The benchmark's residual block between stages: halves the map, C_in -> C_out."""

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class Nb201Network(nn.Module):
    """stem -> N cells (C) -> reduce -> N cells (2C) -> reduce -> N cells (4C) -> BN-ReLU-pool-linear."""

    def __init__(self, cell: Cell201, in_channels: int, num_classes: int, num_layers: int = 5,
                 init_channels: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        C = init_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(ReductionBlock(C, 2 * C))
                C *= 2
            layers.extend(Nb201Cell(cell, C) for _ in range(num_layers))
        self.layers = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lastact(self.layers(self.stem(x)))
        return self.classifier(self.dropout(self.pool(y).flatten(1)))


def build_nb201(spec: Nb201Spec, dropout: float = 0.0) -> Nb201Network:
    """The network a parsed spec describes; raises ArchitectureError for unknown primitives."""
    return Nb201Network(spec.cell, spec.input_shape[0], spec.num_classes, spec.num_layers,
                        spec.init_channels, dropout)

