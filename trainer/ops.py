"""The op builders shared by ENAS (macro and micro), NAS-Bench-201 and DARTS models.

What each op type does to a map's shape (channels, side length, parameters) is the core's
catalog, `kubenas.op_shapes`, which the suggestion services read too; `BUILDERS` here
holds, for the same op types, how to build the `nn.Module` from `(C_in, C_out, stride,
params)`. A contract test keeps the two keyed alike.

Conventions (documented in docs/trainers.md): convolutions are ReLU -> conv -> BatchNorm
with "same" padding; `reduction` is Katib's unpadded pooling layer; `max_pooling` /
`avg_pooling` are the padded cell primitives (average pooling ignores the padding);
`nor_conv`, `avg_pool` and `skip_connect` are NAS-Bench-201's primitives, C -> C.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kubenas.op_shapes import (
    OP_SHAPES,
    OpError,
    Params,
    dilation,
    int_param,
    kernel,
    op_types,
    output_channels,
    output_size,
    parse_primitive,
    pool_kernel,
    reduction_kind,
    reduction_stride,
    same_pad,
)
from kubenas.registry import Registry, UnknownName

__all__ = [
    "BUILDERS",
    "Builder",
    "DepthwiseConv",
    "DilConv",
    "FactorizedReduce",
    "OpError",
    "ReLUConvBN",
    "SampledPointwiseConv",
    "SepConv",
    "Zero",
    "build_op",
    "conv2d",
    "op_types",
    "output_channels",
    "output_size",
    "parse_primitive",
    "primitive_op",
]


def _affine(params: Params) -> bool:
    return bool(params.get("affine", True))


class SampledPointwiseConv(nn.Conv2d):
    """A strided 1×1 convolution computed as sampling every s-th pixel, then a unit-stride 1×1 conv.

    Same parameters, outputs and gradients as `nn.Conv2d(C_in, C_out, 1, stride=s)`. The
    direct form is unsafe on CPUs without AVX-512: torch 2.13's oneDNN 3.12 computes its
    weight gradient with `jit_avx2_1x1_convolution_bwd_weights_t`, which writes past its
    buffers when the input is channels_last with a channel count that is not a multiple of
    8 and one thread runs it — glibc then aborts the process (`corrupted size vs.
    prev_size`). A unit-stride 1×1 convolution never takes that path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.stride
        return nn.functional.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias, groups=self.groups)


def conv2d(C_in: int, C_out: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1,
           groups: int = 1) -> nn.Conv2d:
    """The bias-free convolution every op here builds; strided 1×1 ones sample first (see above)."""
    if k == 1 and stride > 1 and padding == 0:
        return SampledPointwiseConv(C_in, C_out, 1, stride=stride, groups=groups, bias=False)
    return nn.Conv2d(C_in, C_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=False)


class ReLUConvBN(nn.Module):
    """ReLU -> k×k convolution -> BatchNorm (ENAS/Katib's conv layer, DARTS' preprocessing)."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, pad: int, dilation: int = 1,
                 affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv2d(C_in, C_out, k, stride, pad, dilation),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DepthwiseConv(nn.Module):
    """ReLU -> depthwise k×k conv with `multiplier` filters per channel -> BatchNorm."""

    def __init__(self, C_in: int, k: int, stride: int, multiplier: int, dilation: int = 1,
                 affine: bool = True) -> None:
        super().__init__()
        C_out = C_in * multiplier
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv2d(C_in, C_out, k, stride, same_pad(k, dilation), dilation, groups=C_in),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BatchNorm (DARTS' dil_conv)."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, dilation: int,
                 multiplier: int = 1, affine: bool = True) -> None:
        super().__init__()
        mid = C_in * multiplier
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv2d(C_in, mid, k, stride, same_pad(k, dilation), dilation, groups=C_in),
            conv2d(mid, C_out, 1),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Separable convolution, applied `repeats` times; only the first one strides.

    repeats=1 is Keras' SeparableConv2D (Katib's macro op); repeats=2 is DARTS' sep_conv.
    """

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, multiplier: int = 1,
                 repeats: int = 1, affine: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(repeats):
            # DARTS keeps the width until the last repeat; with one repeat it maps C_in -> C_out.
            c_out = C_out if i == repeats - 1 else C_in
            layers.append(DilConv(C_in, c_out, k, stride if i == 0 else 1, 1, multiplier, affine))
        self.op = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """DARTS' `none`: a zero map with the output shape of a stride-s op."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.stride, self.C_out = stride, C_out
        self.same = C_in == C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x[:, :, :: self.stride, :: self.stride]
        if not self.same:
            y = y[:, :1].expand(-1, self.C_out, -1, -1)
        return y.mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the map with two offset stride-2 1×1 convs (DARTS' identity for stride 2)."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        half = C_out // 2
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = conv2d(C_in, half, 1, stride=2)
        self.conv_b = conv2d(C_in, C_out - half, 1, stride=2)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        a = self.conv_a(x)
        # The shifted path sees the odd pixels; padding keeps odd sizes aligned with path a.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([a, self.conv_b(shifted)], dim=1))


class _PoolProject(nn.Module):
    """Pooling, followed by a 1×1 projection only when the channel count must change."""

    def __init__(self, pool: nn.Module, C_in: int, C_out: int, affine: bool) -> None:
        super().__init__()
        self.pool = pool
        self.project = None if C_in == C_out else ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(x)
        return y if self.project is None else self.project(y)


Builder = Callable[[int, int, int, Params], nn.Module]


def _build_conv(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    k = kernel(p)
    return ReLUConvBN(C_in, C_out, k, stride, same_pad(k), affine=_affine(p))


def _build_sep(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    return SepConv(C_in, C_out, kernel(p), stride, int_param(p, "depth_multiplier", 1),
                   int_param(p, "repeats", 1), _affine(p))


def _build_depthwise(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    multiplier = int_param(p, "depth_multiplier", 1)
    op = DepthwiseConv(C_in, kernel(p), stride, multiplier, affine=_affine(p))
    if C_out != C_in * multiplier:
        # Cells need C -> C; a pointwise projection keeps the depthwise op usable there.
        return nn.Sequential(op, conv2d(C_in * multiplier, C_out, 1),
                             nn.BatchNorm2d(C_out, affine=_affine(p)))
    return op


def _build_dilated(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    return DilConv(C_in, C_out, kernel(p), stride, dilation(p), int_param(p, "depth_multiplier", 1), _affine(p))


# Cell pooling keeps the map size at stride 1 (odd windows); average pooling ignores padding.
_CELL_POOLS: dict[str, Callable[[int, int], nn.Module]] = {
    "max": lambda k, s: nn.MaxPool2d(k, stride=s, padding=(k - 1) // 2),
    "avg": lambda k, s: nn.AvgPool2d(k, stride=s, padding=(k - 1) // 2, count_include_pad=False),
}


def _cell_pool(kind: str) -> Builder:
    def build(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
        return _PoolProject(_CELL_POOLS[kind](pool_kernel(p), stride), C_in, C_out, _affine(p))

    return build


_REDUCTIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "max_pooling": lambda k, s: nn.MaxPool2d(k, stride=s),
    "avg_pooling": lambda k, s: nn.AvgPool2d(k, stride=s),
}


def _build_reduction(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    pool = _REDUCTIONS[reduction_kind(p)](int_param(p, "pool_size", 2), reduction_stride(p))
    return _PoolProject(pool, C_in, C_out, _affine(p))


def _build_skip(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    if stride == 2:
        return FactorizedReduce(C_in, C_out, _affine(p))
    return ReLUConvBN(C_in, C_out, 1, stride, 0, affine=_affine(p))


BUILDERS: Registry[Builder] = Registry("operation type", [
    ("convolution", _build_conv),
    ("separable_convolution", _build_sep),
    ("depthwise_convolution", _build_depthwise),
    ("dilated_convolution", _build_dilated),
    ("max_pooling", _cell_pool("max")),
    ("avg_pooling", _cell_pool("avg")),
    ("reduction", _build_reduction),
    ("skip_connection", _build_skip),
    ("none", lambda ci, co, s, p: Zero(ci, co, s)),
    ("nor_conv", _build_conv),
    ("avg_pool", _cell_pool("avg")),
    ("skip_connect", _build_skip),
])
if BUILDERS.names() != OP_SHAPES.names():  # one op catalog: a type added on one side only fails at import
    raise ImportError(f"trainer.ops builds {BUILDERS.names()} but kubenas.op_shapes knows {OP_SHAPES.names()}")


def build_op(op_type: str, C_in: int, C_out: int | None = None, stride: int | None = None,
             params: Params | None = None) -> nn.Module:
    """Build one op. `C_out`/`stride` default to what `params` says (macro layers)."""
    params = dict(params or {})
    try:
        build = BUILDERS[op_type]
    except UnknownName:
        raise OpError("opt_type", op_type, f"must be one of {op_types()}") from None
    if C_out is None:
        C_out = output_channels(op_type, C_in, params)
    s = int_param(params, "stride", 1) if stride is None else stride
    return build(C_in, C_out, s, params)


def primitive_op(name: str, C: int, stride: int, affine: bool = True) -> nn.Module:
    """Build a cell primitive (DARTS / ENAS micro): C channels in and out.

    Separable convolutions are applied twice, as in DARTS; dilated ones use dilation 2.
    """
    op_type, params = parse_primitive(name)
    params["affine"] = affine
    if op_type == "separable_convolution":
        params["repeats"] = 2
    return build_op(op_type, C, C, stride, params)
