"""The DARTS mixed op: a softmax-weighted sum of every candidate primitive on one edge.

With `partial_channels = k > 1` (PC-DARTS) only 1/k of the channels go through the
candidates; the rest bypass them (max-pooled when the edge strides) and a channel shuffle
mixes the two parts so that the next edge samples different channels. Memory and compute
of the candidates drop by about k.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trainer.darts.decode import NONE
from trainer.ops import parse_primitive, primitive_op

__all__ = ["MixedOp", "channel_shuffle"]

_POOLING = ("max_pooling", "avg_pooling")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave `groups` equal channel groups (ShuffleNet), keeping the tensor's layout."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedOp(nn.Module):
    """One supernet edge over `primitives`; forward(x, weights) with weights = softmax(alpha row)."""

    def __init__(self, C: int, stride: int, primitives: Sequence[str], partial_channels: int = 1) -> None:
        super().__init__()
        if partial_channels > 1 and C % partial_channels:
            raise ValueError(f"partial_channels={partial_channels} must divide the edge's {C} channels")
        self.k = partial_channels
        self.stride = stride
        inner = C // self.k
        self.ops = nn.ModuleList()
        # `none` contributes exactly zero, so it is never run; its weight still takes its
        # share of the softmax, which is all the search needs from it.
        self.active: list[int] = []
        for i, name in enumerate(primitives):
            if name == NONE:
                continue
            op = primitive_op(name, inner, stride, affine=False)
            if parse_primitive(name)[0] in _POOLING:
                # DARTS normalises parameter-free ops so their scale matches the convolutions'.
                op = nn.Sequential(op, nn.BatchNorm2d(inner, affine=False))
            self.ops.append(op)
            self.active.append(i)
        self.bypass_pool = nn.MaxPool2d(2, 2, ceil_mode=True) if stride == 2 and self.k > 1 else None

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            return self._mix(x, weights)
        inner = x.shape[1] // self.k
        part, rest = x[:, :inner], x[:, inner:]
        mixed = self._mix(part, weights)
        if self.bypass_pool is not None:
            rest = self.bypass_pool(rest)
        return channel_shuffle(torch.cat([mixed, rest], dim=1), self.k)

    def _mix(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor | None = None
        for i, op in zip(self.active, self.ops):
            term = weights[i] * op(x)
            out = term if out is None else out + term
        assert out is not None, "a mixed op needs one primitive besides none"
        return out
