"""What every operation type does to a feature map's shape, without building anything.

The trainers build the ops (`trainer.ops`); the suggestion services and the trainers both
need to know, before any weight exists, whether an architecture fits its input: a macro
ENAS child with five 2x2 poolings cannot take a 28x28 image. This catalog is the one place
that knows each op type's parameters, output channels and output side length.

Conventions (documented in docs/trainers.md):
- Convolutions use "same" padding (`dilation*(k-1)//2`), so a stride-s convolution maps
  side n to ceil(n/s) for odd k.
- `reduction` is Katib's pooling layer: window `pool_size`, stride `pool_size` unless the
  params name one, no padding (Keras' defaults), so side n becomes floor((n-p)/s)+1.
- `max_pooling` / `avg_pooling` are the cell primitives: window k, stride from the cell,
  padding (k-1)//2 (as in DARTS for odd k).
- `nor_conv`, `avg_pool` and `skip_connect` are NAS-Bench-201's primitives, C -> C.
- Any downsampling op needs a map at least as large as its stride (and a pooling window
  at least as large as the map allows); `output_size` raises `OpError` otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubenas.errors import InvalidValue
from kubenas.registry import Registry, UnknownName
from kubenas.space.operation_expansion import ExpandedOp

__all__ = [
    "OP_SHAPES",
    "MapTooSmall",
    "REDUCTION_KINDS",
    "OpError",
    "OpShape",
    "Params",
    "dilation",
    "first_misfit",
    "int_param",
    "kernel",
    "op_output_hw",
    "op_types",
    "output_channels",
    "output_size",
    "parse_primitive",
    "pool_kernel",
    "reduction_kind",
    "reduction_stride",
    "same_pad",
    "widest_op_ids",
]


class OpError(InvalidValue):
    """An op name or its parameters cannot be built; names the field, value and what is allowed."""


class MapTooSmall(OpError):
    """A valid op that cannot take a map this small (a pooling window or stride larger than it)."""


Params = Mapping[str, Any]

REDUCTION_KINDS = ("max_pooling", "avg_pooling")


def int_param(params: Params, name: str, default: int, minimum: int = 1) -> int:
    raw = params.get(name, default)
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise OpError(name, raw, f"must be an integer >= {minimum}") from None
    if isinstance(raw, bool) or value < minimum:
        raise OpError(name, raw, f"must be an integer >= {minimum}")
    return value


def same_pad(k: int, dilation: int = 1) -> int:
    return dilation * (k - 1) // 2


def _conv_size(n: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def kernel(params: Params) -> int:
    return int_param(params, "filter_size", 3)


def dilation(params: Params) -> int:
    return int_param(params, "dilation", 2)


def pool_kernel(params: Params) -> int:
    return int_param(params, "pool_size", 3) if "pool_size" in params else kernel(params)


def reduction_stride(params: Params) -> int:
    # Keras' pooling layers default the stride to the window, and Katib relies on that.
    return int_param(params, "stride", 1) if "stride" in params else int_param(params, "pool_size", 2)


def reduction_kind(params: Params) -> str:
    kind = str(params.get("reduction_type", "max_pooling"))
    if kind not in REDUCTION_KINDS:
        raise OpError("reduction_type", kind, f"must be one of {sorted(REDUCTION_KINDS)}")
    return kind


def _num_filter(c_in: int, params: Params) -> int:
    return int_param(params, "num_filter", c_in) if "num_filter" in params else c_in


def _same_channels(c_in: int, params: Params) -> int:
    return c_in


def _same_size(n: int, stride: int, params: Params, dil: int = 1) -> int:
    k = kernel(params)
    return _conv_size(n, k, stride, same_pad(k, dil), dil)


def _cell_pool_size(n: int, stride: int, params: Params) -> int:
    k = pool_kernel(params)
    return _conv_size(n, k, stride, (k - 1) // 2)


def _reduction_size(n: int, stride: int, params: Params) -> int:
    reduction_kind(params)
    k, s = int_param(params, "pool_size", 2), reduction_stride(params)
    if n < k:
        raise MapTooSmall("pool_size", k, f"a {k}x{k} pooling window does not fit a {n}x{n} feature map")
    return (n - k) // s + 1


def _skip_size(n: int, stride: int, params: Params) -> int:
    return n if stride == 1 else (n + stride - 1) // stride


@dataclass(frozen=True)
class OpShape:
    """One op type: its output channels from C_in, its output side from n at a stride, its params."""

    channels: Callable[[int, Params], int]
    size: Callable[[int, int, Params], int]
    params: tuple[str, ...] = ()


OP_SHAPES: Registry[OpShape] = Registry("operation type", [
    ("convolution", OpShape(_num_filter, _same_size, ("filter_size", "num_filter", "stride"))),
    ("separable_convolution", OpShape(_num_filter, _same_size,
                                      ("filter_size", "num_filter", "stride", "depth_multiplier"))),
    ("depthwise_convolution", OpShape(lambda c, p: c * int_param(p, "depth_multiplier", 1), _same_size,
                                      ("filter_size", "stride", "depth_multiplier"))),
    ("dilated_convolution", OpShape(_num_filter, lambda n, s, p: _same_size(n, s, p, dilation(p)),
                                    ("filter_size", "num_filter", "stride", "dilation"))),
    ("max_pooling", OpShape(_same_channels, _cell_pool_size, ("filter_size", "stride"))),
    ("avg_pooling", OpShape(_same_channels, _cell_pool_size, ("filter_size", "stride"))),
    ("reduction", OpShape(_same_channels, _reduction_size, ("reduction_type", "pool_size"))),
    ("skip_connection", OpShape(_same_channels, _skip_size)),
    ("none", OpShape(_same_channels, _skip_size)),
    # NAS-Bench-201's names for its cell primitives (nor_conv_3x3, avg_pool_3x3, skip_connect).
    ("nor_conv", OpShape(_same_channels, _same_size, ("filter_size", "stride"))),
    ("avg_pool", OpShape(_same_channels, _cell_pool_size, ("pool_size", "stride"))),
    ("skip_connect", OpShape(_same_channels, _skip_size)),
])


def op_types() -> list[str]:
    """Every operation type, in catalog order."""
    return OP_SHAPES.names()


def _entry(op_type: str) -> OpShape:
    try:
        return OP_SHAPES[op_type]
    except UnknownName:
        raise OpError("opt_type", op_type, f"must be one of {op_types()}") from None


def _stride(params: Params) -> int:
    return int_param(params, "stride", 1)


def output_channels(op_type: str, c_in: int, params: Params) -> int:
    """Channels an op of `op_type` with `params` produces from `c_in` input channels."""
    return _entry(op_type).channels(c_in, params)


def output_size(op_type: str, n: int, params: Params, stride: int | None = None) -> int:
    """Side length of the map an op makes from an n×n map; raises OpError if impossible.

    `stride` defaults to the op's own `stride` param (macro layers); cells pass theirs.
    """
    entry = _entry(op_type)
    s = _stride(params) if stride is None else stride
    if op_type != "reduction" and s > 1 and n < s:
        raise MapTooSmall("stride", s, f"a stride-{s} op cannot downsample a {n}x{n} feature map")
    out = entry.size(n, s, params)
    if out < 1:
        raise MapTooSmall("stride", s, f"the op would shrink a {n}x{n} feature map to nothing")
    return out


def op_output_hw(op: ExpandedOp, hw: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) map a macro op makes from `hw`; raises MapTooSmall if it does not fit.

    An op whose shape is unknown here (a type only a custom trainer builds, or params the
    trainer will reject with its own error) is taken to keep the map: only what surely
    does not fit is refused.
    """
    try:
        return output_size(op.opt_type, hw[0], op.opt_params), output_size(op.opt_type, hw[1], op.opt_params)
    except MapTooSmall:
        raise
    except OpError:
        return hw


def first_misfit(ops: Sequence[ExpandedOp], input_hw: tuple[int, int],
                 op_ids: Sequence[int]) -> tuple[int, MapTooSmall] | None:
    """The first macro layer whose op does not fit the map it receives, and why (None: all fit).

    Layer i applies `ops[op_ids[i]]` to the previous layer's map; skip connections are
    resized to that map, so only the chain of ops decides whether an architecture fits.
    """
    hw = input_hw
    for layer, op_id in enumerate(op_ids):
        try:
            hw = op_output_hw(ops[op_id], hw)
        except MapTooSmall as error:
            return layer, error
    return None


def widest_op_ids(ops: Sequence[ExpandedOp], hw: tuple[int, int], layers: int) -> list[int] | None:
    """Per layer the op that keeps the largest map: a chain that fits if any does (None: none does)."""
    chain: list[int] = []
    for _ in range(layers):
        best: tuple[tuple[int, int], int] | None = None
        for op_id, op in enumerate(ops):
            try:
                out = op_output_hw(op, hw)
            except MapTooSmall:
                continue
            if best is None or min(out) > min(best[0]):
                best = (out, op_id)
        if best is None:
            return None
        if best[0] == hw:  # a map-keeping op fits every remaining layer: no need to walk them
            return chain + [best[1]] * (layers - len(chain))
        hw = best[0]
        chain.append(best[1])
    return chain


_PRIMITIVE = re.compile(r"^(?P<type>[a-z_]+?)_(?P<k>\d+)x(?P=k)$")


def parse_primitive(name: str) -> tuple[str, dict[str, Any]]:
    """`separable_convolution_3x3` -> ("separable_convolution", {"filter_size": 3}).

    `skip_connection`, `skip_connect` and `none` have no size. Raises OpError for anything unknown.
    """
    if name in OP_SHAPES and name != "reduction" and not OP_SHAPES[name].params:
        return name, {}
    match = _PRIMITIVE.match(name)
    if not match or match["type"] not in OP_SHAPES or match["type"] == "reduction":
        allowed = sorted(t for t in OP_SHAPES if t != "reduction" and OP_SHAPES[t].params)
        plain = ", ".join(t for t in OP_SHAPES if not OP_SHAPES[t].params)
        raise OpError("primitive", name, f"must be {plain}, or <type>_<k>x<k> with type in {allowed}")
    return match["type"], {"filter_size": int(match["k"])}
