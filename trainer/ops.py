"""The op registry shared by ENAS (macro and micro) and DARTS models.

`OPS` is the only place that knows every operation type. Each entry builds an
`nn.Module` from `(C_in, C_out, stride, params)` and also answers, without building
anything, how many channels come out and what spatial size a map of side `n` becomes —
so a whole architecture can be checked for impossible shapes before any weight exists.

Conventions (documented in README.md):
- Convolutions are ReLU -> conv -> BatchNorm with "same" padding (`dilation*(k-1)//2`),
  so a stride-s convolution maps side n to ceil(n/s) for odd k.
- `reduction` is Katib's pooling layer: window `pool_size`, stride `pool_size` unless the
  params name one, no padding (Keras' defaults), so side n becomes floor((n-p)/s)+1.
- `max_pooling` / `avg_pooling` are the cell primitives: window k, stride from the cell,
  padding (k-1)//2 (as in DARTS for odd k).
- `nor_conv`, `avg_pool` and `skip_connect` are NAS-Bench-201's primitives: a ReLU-conv-BN,
  a stride-1 average pool (padding excluded from the mean) and the identity, C -> C.
- Any downsampling op needs a map at least as large as its stride (and a pooling window
  at least as large as the map allows); `output_size` raises `OpError` otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kubenas.errors import InvalidValue
from kubenas.registry import Registry, UnknownName

__all__ = [
    "OPS",
    "DepthwiseConv",
    "DilConv",
    "FactorizedReduce",
    "OpError",
    "OpType",
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


class OpError(InvalidValue):
    """An op name or its parameters cannot be built; names the field, value and what is allowed."""


Params = Mapping[str, Any]


def _int_param(params: Params, name: str, default: int, minimum: int = 1) -> int:
    raw = params.get(name, default)
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise OpError(name, raw, f"must be an integer >= {minimum}") from None
    if isinstance(raw, bool) or value < minimum:
        raise OpError(name, raw, f"must be an integer >= {minimum}")
    return value


def _affine(params: Params) -> bool:
    return bool(params.get("affine", True))


def _same_pad(k: int, dilation: int = 1) -> int:
    return dilation * (k - 1) // 2


def _conv_size(n: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


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
            conv2d(C_in, C_out, k, stride, _same_pad(k, dilation), dilation, groups=C_in),
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
            conv2d(C_in, mid, k, stride, _same_pad(k, dilation), dilation, groups=C_in),
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


@dataclass(frozen=True)
class OpType:
    """One registry entry: how to build it, its output channels, its output side length."""

    build: Callable[[int, int, int, Params], nn.Module]
    channels: Callable[[int, Params], int]
    size: Callable[[int, int, Params], int]
    params: tuple[str, ...] = ()


def _kernel(params: Params) -> int:
    return _int_param(params, "filter_size", 3)


def _num_filter(c_in: int, params: Params) -> int:
    return _int_param(params, "num_filter", c_in) if "num_filter" in params else c_in


def _same_size(n: int, stride: int, params: Params, dilation: int = 1) -> int:
    k = _kernel(params)
    return _conv_size(n, k, stride, _same_pad(k, dilation), dilation)


def _build_conv(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    k = _kernel(p)
    return ReLUConvBN(C_in, C_out, k, stride, _same_pad(k), affine=_affine(p))


def _build_sep(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    return SepConv(C_in, C_out, _kernel(p), stride, _int_param(p, "depth_multiplier", 1),
                   _int_param(p, "repeats", 1), _affine(p))


def _build_depthwise(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    multiplier = _int_param(p, "depth_multiplier", 1)
    op = DepthwiseConv(C_in, _kernel(p), stride, multiplier, affine=_affine(p))
    if C_out != C_in * multiplier:
        # Cells need C -> C; a pointwise projection keeps the depthwise op usable there.
        return nn.Sequential(op, conv2d(C_in * multiplier, C_out, 1),
                             nn.BatchNorm2d(C_out, affine=_affine(p)))
    return op


def _dilation(p: Params) -> int:
    return _int_param(p, "dilation", 2)


def _build_dilated(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    return DilConv(C_in, C_out, _kernel(p), stride, _dilation(p),
                   _int_param(p, "depth_multiplier", 1), _affine(p))


def _pool_kernel(p: Params) -> int:
    return _int_param(p, "pool_size", 3) if "pool_size" in p else _kernel(p)


# Cell pooling keeps the map size at stride 1 (odd windows); average pooling ignores padding.
_CELL_POOLS: dict[str, Callable[[int, int], nn.Module]] = {
    "max": lambda k, s: nn.MaxPool2d(k, stride=s, padding=(k - 1) // 2),
    "avg": lambda k, s: nn.AvgPool2d(k, stride=s, padding=(k - 1) // 2, count_include_pad=False),
}


def _cell_pool(kind: str) -> Callable[[int, int, int, Params], nn.Module]:
    def build(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
        return _PoolProject(_CELL_POOLS[kind](_pool_kernel(p), stride), C_in, C_out, _affine(p))

    return build


def _cell_pool_size(n: int, stride: int, p: Params) -> int:
    k = _pool_kernel(p)
    return _conv_size(n, k, stride, (k - 1) // 2)


def _reduction_stride(p: Params) -> int:
    # Keras' pooling layers default the stride to the window, and Katib relies on that.
    return _int_param(p, "stride", 1) if "stride" in p else _int_param(p, "pool_size", 2)


def _reduction_kind(p: Params) -> str:
    kind = str(p.get("reduction_type", "max_pooling"))
    if kind not in _REDUCTIONS:
        raise OpError("reduction_type", kind, f"must be one of {sorted(_REDUCTIONS)}")
    return kind


def _build_reduction(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    kind = _reduction_kind(p)
    k, s = _int_param(p, "pool_size", 2), _reduction_stride(p)
    pool = _REDUCTIONS[kind](k, s)
    return _PoolProject(pool, C_in, C_out, _affine(p))


def _reduction_size(n: int, stride: int, p: Params) -> int:
    _reduction_kind(p)
    k, s = _int_param(p, "pool_size", 2), _reduction_stride(p)
    if n < k:
        raise OpError("pool_size", k, f"a {k}x{k} pooling window does not fit a {n}x{n} feature map")
    return (n - k) // s + 1


_REDUCTIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "max_pooling": lambda k, s: nn.MaxPool2d(k, stride=s),
    "avg_pooling": lambda k, s: nn.AvgPool2d(k, stride=s),
}


def _build_skip(C_in: int, C_out: int, stride: int, p: Params) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    if stride == 2:
        return FactorizedReduce(C_in, C_out, _affine(p))
    return ReLUConvBN(C_in, C_out, 1, stride, 0, affine=_affine(p))


def _skip_size(n: int, stride: int, p: Params) -> int:
    return n if stride == 1 else (n + stride - 1) // stride


def _same_channels(c_in: int, p: Params) -> int:
    return c_in


OPS: Registry[OpType] = Registry("operation type", [
    ("convolution", OpType(_build_conv, _num_filter, _same_size, ("filter_size", "num_filter", "stride"))),
    ("separable_convolution", OpType(
        _build_sep, _num_filter, _same_size, ("filter_size", "num_filter", "stride", "depth_multiplier"))),
    ("depthwise_convolution", OpType(
        _build_depthwise, lambda c, p: c * _int_param(p, "depth_multiplier", 1), _same_size,
        ("filter_size", "stride", "depth_multiplier"))),
    ("dilated_convolution", OpType(
        _build_dilated, _num_filter, lambda n, s, p: _same_size(n, s, p, _dilation(p)),
        ("filter_size", "num_filter", "stride", "dilation"))),
    ("max_pooling", OpType(_cell_pool("max"), _same_channels, _cell_pool_size, ("filter_size", "stride"))),
    ("avg_pooling", OpType(_cell_pool("avg"), _same_channels, _cell_pool_size, ("filter_size", "stride"))),
    ("reduction", OpType(_build_reduction, _same_channels, _reduction_size, ("reduction_type", "pool_size"))),
    ("skip_connection", OpType(_build_skip, _same_channels, _skip_size)),
    ("none", OpType(lambda ci, co, s, p: Zero(ci, co, s), _same_channels, _skip_size)),
    # NAS-Bench-201's names for its cell primitives (nor_conv_3x3, avg_pool_3x3, skip_connect):
    # the same modules as above, always C -> C, so an NB201 nasConfig builds without renaming.
    ("nor_conv", OpType(_build_conv, _same_channels, _same_size, ("filter_size", "stride"))),
    ("avg_pool", OpType(_cell_pool("avg"), _same_channels, _cell_pool_size, ("pool_size", "stride"))),
    ("skip_connect", OpType(_build_skip, _same_channels, _skip_size)),
])


def op_types() -> list[str]:
    """Every registered operation type, in registry order."""
    return OPS.names()


def _entry(op_type: str) -> OpType:
    try:
        return OPS[op_type]
    except UnknownName:
        raise OpError("opt_type", op_type, f"must be one of {op_types()}") from None


def _stride(params: Params, default: int = 1) -> int:
    return _int_param(params, "stride", default)


def output_channels(op_type: str, C_in: int, params: Params) -> int:
    """Channels an op of `op_type` with `params` produces from `C_in` input channels."""
    return _entry(op_type).channels(C_in, params)


def output_size(op_type: str, n: int, params: Params, stride: int | None = None) -> int:
    """Side length of the map an op makes from an n×n map; raises OpError if impossible.

    `stride` defaults to the op's own `stride` param (macro layers); cells pass theirs.
    """
    entry = _entry(op_type)
    s = _stride(params) if stride is None else stride
    if op_type != "reduction" and s > 1 and n < s:
        raise OpError("stride", s, f"a stride-{s} op cannot downsample a {n}x{n} feature map")
    out = entry.size(n, s, params)
    if out < 1:
        raise OpError("stride", s, f"the op would shrink a {n}x{n} feature map to nothing")
    return out


def build_op(op_type: str, C_in: int, C_out: int | None = None, stride: int | None = None,
             params: Params | None = None) -> nn.Module:
    """Build one op. `C_out`/`stride` default to what `params` says (macro layers)."""
    params = dict(params or {})
    entry = _entry(op_type)
    if C_out is None:
        C_out = entry.channels(C_in, params)
    s = _stride(params) if stride is None else stride
    return entry.build(C_in, C_out, s, params)


_PRIMITIVE = re.compile(r"^(?P<type>[a-z_]+?)_(?P<k>\d+)x(?P=k)$")


def parse_primitive(name: str) -> tuple[str, dict[str, Any]]:
    """`separable_convolution_3x3` -> ("separable_convolution", {"filter_size": 3}).

    `skip_connection`, `skip_connect` and `none` have no size. Raises OpError for anything unknown.
    """
    if name in OPS and name not in ("reduction",) and not OPS[name].params:
        return name, {}
    match = _PRIMITIVE.match(name)
    if not match or match["type"] not in OPS or match["type"] == "reduction":
        allowed = sorted(t for t in OPS if t != "reduction" and OPS[t].params)
        plain = ", ".join(t for t in OPS if not OPS[t].params)
        raise OpError("primitive", name, f"must be {plain}, or <type>_<k>x<k> with type in {allowed}")
    return match["type"], {"filter_size": int(match["k"])}


def primitive_op(name: str, C: int, stride: int, affine: bool = True) -> nn.Module:
    """Build a cell primitive (DARTS / ENAS micro): C channels in and out.

    Separable convolutions are applied twice, as in DARTS; dilated ones use dilation 2.
    """
    op_type, params = parse_primitive(name)
    params["affine"] = affine
    if op_type == "separable_convolution":
        params["repeats"] = 2
    return build_op(op_type, C, C, stride, params)
