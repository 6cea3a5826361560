"""The macro supernet: every layer holds every expanded op; a forward pass runs one child.

A child is the controller's macro decisions: per layer i, `[op_id, skip_0 .. skip_{i-1},
0...]`. Layer i reads the previous layer's output plus the outputs its skip bits select
(Katib's indexing: 0 is the stem output, j >= 1 the output of layer j - 1). Only the
chosen op of each layer runs, so a step holds one child's activations.

Where the shared network departs from the child `kubenas-train enas` retrains (every child
must fit the same weights): a 3x3 convolution stem makes the input `width` channels
wide; skip inputs are summed, then batch-normalised, as in ENAS's own code, instead of
concatenated; and every layer is `width` channels wide, `width` being the largest
`num_filter` of the ops (or `init_channels`), an op with fewer filters padding its output
with zero channels. Spatial sizes follow the child's: a skip input larger than the
previous layer's output is average-pooled to its size, as the child does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kubenas.op_shapes import first_misfit, widest_op_ids
from trainer.enas_search.settings import ConfigError, SpaceSpec
from trainer.ops import OpError, build_op, output_channels

__all__ = ["MacroSupernet", "macro_width"]

Decisions = Sequence[Sequence[int]]


def macro_width(space: SpaceSpec, init_channels: int) -> int:
    """The supernet's channel count: the widest `num_filter`, else `init_channels`."""
    filters = [int(op.opt_params["num_filter"]) for op in space.ops if "num_filter" in op.opt_params]
    return max(filters) if filters else init_channels


class MacroSupernet(nn.Module):
    """Stem, `num_layers` layers of candidate ops, global pooling, a linear classifier."""

    def __init__(self, space: SpaceSpec, init_channels: int) -> None:
        super().__init__()
        self.space = space
        width = self.width = macro_width(space, init_channels)
        self.out_channels: list[int] = []
        for i, op in enumerate(space.ops):
            try:
                c_out = output_channels(op.opt_type, width, op.opt_params)
                build_op(op.opt_type, 1, 1, None, op.opt_params)  # rejects bad params before any layer
            except OpError as exc:
                field = "opt_type" if exc.field == "opt_type" else f"opt_params.{exc.field}"
                raise ConfigError(f"--search-space.embedding['{i}'].{field}", exc.value, exc.allowed) from None
            self.out_channels.append(min(c_out, width))
        self.stem = nn.Sequential(nn.Conv2d(space.input_shape[0], width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width))
        self.layers = nn.ModuleList(
            nn.ModuleList(build_op(op.opt_type, width, c, None, op.opt_params) for op, c in zip(space.ops, self.out_channels))
            for _ in range(space.num_layers)
        )
        self.skip_bn = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(space.num_layers))
        self.classifier = nn.Linear(width, space.num_classes)
        _c, h, w = space.input_shape
        self.input_hw = (h, w)
        if widest_op_ids(space.ops, self.input_hw, space.num_layers) is None:
            raise ConfigError("--search-space.num_layers", space.num_layers,
                              f"no architecture of this many layers fits a {h}x{w} input with these ops "
                              "(each layer's op would shrink the map below what the next one needs)")

    def feasible(self, decisions: Decisions) -> bool:
        """Whether every layer's op fits the map it receives (a pooling window, a stride)."""
        if len(decisions) < self.space.num_layers:
            return False
        op_ids = [int(decisions[i][0]) for i in range(self.space.num_layers)]
        return first_misfit(self.space.ops, self.input_hw, op_ids) is None

    def forward(self, x: torch.Tensor, decisions: Decisions) -> torch.Tensor:
        outputs = [self.stem(x)]
        for i, (candidates, bn) in enumerate(zip(self.layers, self.skip_bn)):
            row = decisions[i]
            prev = outputs[-1]
            skips = [j for j in range(i) if row[1 + j]]
            inp = prev
            if skips:
                hw = prev.shape[-2:]
                for j in skips:
                    inp = inp + (outputs[j] if outputs[j].shape[-2:] == hw else F.adaptive_avg_pool2d(outputs[j], hw))
                inp = bn(inp)
            op_id = int(row[0])
            y = candidates[op_id](inp)  # type: ignore[index]
            missing = self.width - self.out_channels[op_id]
            outputs.append(F.pad(y, (0, 0, 0, 0, 0, missing)) if missing else y)
        return self.classifier(F.adaptive_avg_pool2d(outputs[-1], 1).flatten(1))
