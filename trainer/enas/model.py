"""ENAS child networks from the `architecture` and `nn_config` trial assignments.

Macro mode (Katib's format): layer i (0-based) reads the previous layer's output plus,
for every skip bit j set in its row, `all_layers[j]` — where `all_layers[0]` is the
network input and `all_layers[j]` (j >= 1) is the output of layer j-1. This is exactly
Katib's ModelConstructor indexing. The selected maps are resized to the previous
layer's spatial size with average pooling (sizes never grow along the network, so
nothing is upsampled) and concatenated along channels; then the layer's op runs. A
global average pool, dropout and a linear layer sized by `output_sizes[-1]` finish it.

Micro mode (ours): `architecture` is a Genotype object and the network is a
`trainer.cells.CellNetwork`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kubenas.errors import InvalidValue
from kubenas.genotype import Genotype, GenotypeError
from kubenas.space import ExpandedOp, MacroArchitecture, SpaceError, loads_lenient
from trainer.cells import CellNetwork, check_cell_shapes
from trainer.ops import OpError, build_op, output_channels, output_size

__all__ = [
    "ArchitectureError",
    "ChildSpec",
    "MacroLayer",
    "MacroNetwork",
    "build_child",
    "parse_child",
    "plan_macro",
    "strip_quotes",
]


class ArchitectureError(InvalidValue):
    """The architecture or nn_config cannot describe a network; names field, value, allowed."""


def strip_quotes(text: str) -> str:
    """Drop one pair of surrounding quotes: Katib's YAML passes `--x="${...}"` without a shell."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


@dataclass(frozen=True)
class MacroLayer:
    """One planned macro layer: its op, which earlier maps it reads, and its shapes."""

    index: int
    op: ExpandedOp
    inputs: tuple[int, ...]  # indices into all_layers (0 = network input)
    in_channels: int
    in_hw: tuple[int, int]
    out_channels: int
    out_hw: tuple[int, int]


@dataclass(frozen=True)
class ChildSpec:
    """A parsed trial assignment: macro rows + op table, or a micro genotype."""

    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    num_layers: int
    macro: MacroArchitecture | None = None
    embedding: Mapping[int, ExpandedOp] | None = None
    genotype: Genotype | None = None
    init_channels: int = 16

    @property
    def mode(self) -> str:
        return "macro" if self.macro is not None else "micro"


def _positive_ints(value: Any, field: str, lengths: range, shape: str) -> list[int]:
    items = [value] if isinstance(value, (int, str)) else value
    try:
        ints = [int(str(v)) for v in items]
    except (TypeError, ValueError):
        ints = []
    if len(ints) not in lengths or any(v < 1 for v in ints):
        raise ArchitectureError(field, value, f"must be {shape} of positive integers")
    return ints


def _input_shape(config: Mapping[str, Any]) -> tuple[int, int, int]:
    # Katib writes input_sizes channels-last: [H, W, C]; [H, W] means one channel.
    sizes = _positive_ints(config.get("input_sizes"), "nn_config.input_sizes", range(2, 4), "[H, W, C] or [H, W]")
    h, w = sizes[0], sizes[1]
    c = sizes[2] if len(sizes) == 3 else 1
    return c, h, w


def _load_object(text: str, field: str) -> Any:
    try:
        return loads_lenient(strip_quotes(text), field)
    except SpaceError as exc:
        raise ArchitectureError(field, text, exc.allowed) from None


def _embedding(config: Mapping[str, Any]) -> dict[int, ExpandedOp]:
    raw = config.get("embedding")
    if not isinstance(raw, Mapping) or not raw:
        raise ArchitectureError("nn_config.embedding", raw, "must be an object mapping op ids to {opt_id, opt_type, opt_params}")
    table: dict[int, ExpandedOp] = {}
    for key, entry in raw.items():
        field = f"nn_config.embedding[{key!r}]"
        if not isinstance(entry, Mapping) or "opt_type" not in entry:
            raise ArchitectureError(field, entry, "must be an object with opt_id, opt_type and opt_params")
        try:
            op_id = int(str(key))
            op = ExpandedOp.from_json({"opt_id": entry.get("opt_id", op_id), **entry})
        except (TypeError, ValueError, KeyError):
            raise ArchitectureError(field, entry, "opt_id must be an integer and opt_params an object") from None
        table[op_id] = op
    return table


def _int_field(config: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = config.get(key, default)
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        number = 0
    if number < 1 or isinstance(value, bool):
        raise ArchitectureError(f"nn_config.{key}", value, "must be an integer >= 1")
    return number


def parse_child(architecture: str, nn_config: str) -> ChildSpec:
    """Parse the two trial assignments (JSON, or Katib's single-quoted form) into a ChildSpec.

    Micro mode is chosen by `nn_config.search_mode == "micro"` or an object architecture.
    """
    config = _load_object(nn_config, "nn_config")
    if not isinstance(config, Mapping):
        raise ArchitectureError("nn_config", nn_config, "must be a JSON object")
    if config.get("search_mode") == "nb201" or architecture.strip().strip("'\"").startswith("|"):
        # an easy mix-up in a trial template: say which trainer builds this cell
        raise ArchitectureError("architecture", architecture,
                                "a NAS-Bench-201 cell (search_mode nb201) is trained by `kubenas-train nb201`")
    arch = _load_object(architecture, "architecture")
    shape = _input_shape(config)
    classes = _positive_ints(config.get("output_sizes"), "nn_config.output_sizes", range(1, 100),
                             "a non-empty list (the last is the class count)")[-1]
    micro = config.get("search_mode") == "micro" or isinstance(arch, Mapping)
    num_layers = _int_field(config, "num_layers")
    if micro:
        try:
            genotype = Genotype.from_dict(arch)
        except GenotypeError as exc:
            raise ArchitectureError(f"architecture.{exc.field}", exc.value, exc.allowed) from None
        if "num_nodes" in config and _int_field(config, "num_nodes") != genotype.num_nodes:
            raise ArchitectureError("architecture.normal", len(genotype.normal),
                                    f"nn_config.num_nodes={config['num_nodes']} needs {2 * int(config['num_nodes'])} edges per cell")
        return ChildSpec(shape, classes, num_layers, genotype=genotype,
                         init_channels=_int_field(config, "init_channels", 16))
    if not isinstance(arch, list) or not all(isinstance(r, list) and r and all(isinstance(x, int) for x in r) for r in arch):
        raise ArchitectureError("architecture", architecture, "must be a JSON list of [op_id, skip bits...] integer rows")
    try:
        macro = MacroArchitecture(tuple(tuple(r) for r in arch))
    except SpaceError as exc:
        raise ArchitectureError(exc.field, exc.value, exc.allowed) from None
    if len(macro.rows) != num_layers:
        raise ArchitectureError("architecture", len(macro.rows), f"must have nn_config.num_layers={num_layers} rows")
    embedding = _embedding(config)
    for i, op_id in enumerate(macro.op_ids):
        if op_id not in embedding:
            raise ArchitectureError(f"architecture[{i}][0]", op_id, f"must be an op id in nn_config.embedding {sorted(embedding)}")
    return ChildSpec(shape, classes, num_layers, macro=macro, embedding=embedding)


def plan_macro(spec: ChildSpec) -> list[MacroLayer]:
    """Check every layer's shapes without building weights; raises ArchitectureError."""
    assert spec.macro is not None and spec.embedding is not None
    channels = [spec.input_shape[0]]
    sizes = [(spec.input_shape[1], spec.input_shape[2])]
    plan: list[MacroLayer] = []
    for i, row in enumerate(spec.macro.rows):
        op = spec.embedding[row[0]]
        inputs = (i, *[j for j, bit in enumerate(row[1:]) if bit])
        c_in = sum(channels[j] for j in inputs)
        h, w = sizes[i]
        where = f"architecture[{i}] ({op.opt_type} {dict(op.opt_params)})"
        try:
            c_out = output_channels(op.opt_type, c_in, op.opt_params)
            out = (output_size(op.opt_type, h, op.opt_params), output_size(op.opt_type, w, op.opt_params))
        except OpError as exc:
            if exc.field == "opt_type":
                raise ArchitectureError(f"nn_config.embedding['{row[0]}'].opt_type", exc.value, exc.allowed) from None
            raise ArchitectureError(where, exc.value, f"{exc.field}: {exc.allowed}") from None
        plan.append(MacroLayer(i, op, inputs, c_in, (h, w), c_out, out))
        channels.append(c_out)
        sizes.append(out)
    return plan


class MacroNetwork(nn.Module):
    """The macro child network a planned architecture describes."""

    def __init__(self, plan: list[MacroLayer], num_classes: int, dropout: float = 0.4) -> None:
        super().__init__()
        self.inputs = [layer.inputs for layer in plan]
        self.sizes = [layer.in_hw for layer in plan]
        self.layers = nn.ModuleList(
            build_op(layer.op.opt_type, layer.in_channels, layer.out_channels, None, layer.op.opt_params)
            for layer in plan
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(plan[-1].out_channels if plan else 1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for layer, inputs, hw in zip(self.layers, self.inputs, self.sizes):
            maps = [outputs[j] if outputs[j].shape[-2:] == hw else nn.functional.adaptive_avg_pool2d(outputs[j], hw)
                    for j in inputs]
            outputs.append(layer(maps[0] if len(maps) == 1 else torch.cat(maps, dim=1)))
        return self.classifier(self.dropout(self.pool(outputs[-1]).flatten(1)))


def build_child(spec: ChildSpec, dropout: float = 0.4) -> nn.Module:
    """The nn.Module for a parsed child; raises ArchitectureError for impossible shapes."""
    if spec.genotype is not None:
        try:
            check_cell_shapes(spec.genotype, spec.num_layers, spec.input_shape[1:])
        except OpError as exc:
            raise ArchitectureError(exc.field, exc.value, exc.allowed) from None
        return CellNetwork(spec.genotype, spec.input_shape, spec.num_classes, spec.num_layers,
                           spec.init_channels, dropout=0.0)
    return MacroNetwork(plan_macro(spec), spec.num_classes, dropout)
