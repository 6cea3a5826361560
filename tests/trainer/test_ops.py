"""Every registered op builds, runs forward and backward, and matches its shape arithmetic."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer import ops

CELL_PRIMITIVES = [
    "separable_convolution_3x3", "separable_convolution_5x5", "dilated_convolution_3x3", "dilated_convolution_5x5",
    "convolution_3x3", "convolution_5x5", "depthwise_convolution_3x3", "max_pooling_3x3", "avg_pooling_3x3",
    "skip_connection", "none",
]


def _params(op_type: str, k: int, stride: int) -> dict:
    return {"filter_size": k, "num_filter": 12, "stride": stride, "depth_multiplier": 2,
            "reduction_type": "avg_pooling", "pool_size": 2}


@pytest.mark.parametrize("op_type", ops.op_types())
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_runs_forward_and_backward_with_predicted_shape(op_type: str, stride: int) -> None:
    params = _params(op_type, 3, stride)
    module = ops.build_op(op_type, 6, params=params)
    x = torch.randn(2, 6, 9, 7, requires_grad=True)
    y = module(x)
    assert y.shape[1] == ops.output_channels(op_type, 6, params)
    assert tuple(y.shape[2:]) == (ops.output_size(op_type, 9, params), ops.output_size(op_type, 7, params))
    y.float().pow(2).sum().backward()
    if op_type != "none":
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@settings(max_examples=40, deadline=None)
@given(
    op_type=st.sampled_from([t for t in ops.op_types() if t != "none"]),
    k=st.sampled_from([1, 3, 5, 7]),
    stride=st.sampled_from([1, 2, 3]),
    n=st.integers(1, 12),
    pool=st.sampled_from([2, 3]),
)
def test_shape_arithmetic_matches_modules(op_type: str, k: int, stride: int, n: int, pool: int) -> None:
    params = {**_params(op_type, k, stride), "pool_size": pool, "reduction_type": "max_pooling"}
    try:
        expected = ops.output_size(op_type, n, params)
    except ops.OpError as exc:
        # Rejected shapes really are ones where the op cannot downsample further.
        assert n < max(stride, pool) and exc.field in ("stride", "pool_size")
        return
    if op_type == "skip_connection" and stride == 3:
        return  # cells only use strides 1 and 2
    y = ops.build_op(op_type, 4, params=params).eval()(torch.randn(1, 4, n, n))
    assert tuple(y.shape[2:]) == (expected, expected)


@pytest.mark.parametrize("name", CELL_PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
def test_cell_primitives_keep_channels_and_halve_on_stride_two(name: str, stride: int) -> None:
    module = ops.primitive_op(name, 8, stride, affine=False)
    x = torch.randn(3, 8, 8, 8, requires_grad=True)
    y = module(x)
    assert y.shape == (3, 8, 8 // stride, 8 // stride)
    y.sum().backward()


def test_separable_cell_primitive_is_applied_twice_as_in_darts() -> None:
    module = ops.primitive_op("separable_convolution_3x3", 8, 1)
    depthwise = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 8]
    assert len(depthwise) == 2
    macro = ops.build_op("separable_convolution", 8, params={"filter_size": 3, "num_filter": 16})
    assert len([m for m in macro.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 8]) == 1


def test_dilated_primitive_uses_dilation_two() -> None:
    convs = [m for m in ops.primitive_op("dilated_convolution_5x5", 4, 1).modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].dilation == (2, 2) and convs[0].kernel_size == (5, 5)


def test_katib_string_params_are_accepted() -> None:
    module = ops.build_op("convolution", 3, params={"filter_size": "5", "num_filter": "32", "stride": "2"})
    assert module(torch.randn(1, 3, 8, 8)).shape == (1, 32, 4, 4)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: ops.build_op("convolutionz", 3, params={}), "opt_type"),
        (lambda: ops.build_op("convolution", 3, params={"filter_size": "big"}), "filter_size"),
        (lambda: ops.build_op("convolution", 3, params={"num_filter": 0}), "num_filter"),
        (lambda: ops.build_op("reduction", 3, params={"reduction_type": "min_pooling"}), "reduction_type"),
        (lambda: ops.primitive_op("sep_conv_3x3", 4, 1), "primitive"),
        (lambda: ops.primitive_op("convolution_3x5", 4, 1), "primitive"),
        (lambda: ops.output_size("convolution", 1, {"stride": 2}), "stride"),
        (lambda: ops.output_size("reduction", 2, {"pool_size": 3}), "pool_size"),
    ],
)
def test_bad_ops_raise_one_error_naming_the_field(call, field: str) -> None:
    with pytest.raises(ops.OpError) as info:
        call()
    assert info.value.field == field
    assert field in str(info.value)


def test_parse_primitive_names() -> None:
    assert ops.parse_primitive("max_pooling_3x3") == ("max_pooling", {"filter_size": 3})
    assert ops.parse_primitive("skip_connection") == ("skip_connection", {})
    assert ops.parse_primitive("none") == ("none", {})


@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("side", [7, 8])
@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_sampled_pointwise_conv_equals_the_strided_convolution(stride: int, side: int, groups: int,
                                                               layout: torch.memory_format) -> None:
    conv = ops.conv2d(4, 8, 1, stride=stride, groups=groups)
    assert isinstance(conv, ops.SampledPointwiseConv) and conv.stride == (stride, stride)
    conv = conv.to(memory_format=layout)  # type: ignore[call-overload]
    x = torch.randn(3, 4, side, side).contiguous(memory_format=layout).requires_grad_(True)
    y = conv(x)
    gx, gw = torch.autograd.grad(y.square().sum(), [x, conv.weight])
    # Reference: torch's own strided convolution in float64 (its native kernel, not oneDNN's).
    x64, w64 = x.detach().double().requires_grad_(True), conv.weight.detach().double().requires_grad_(True)
    ref = torch.nn.functional.conv2d(x64, w64, stride=stride, groups=groups)
    rx, rw = torch.autograd.grad(ref.square().sum(), [x64, w64])
    assert y.shape == ref.shape == (3, 8, -(-side // stride), -(-side // stride))
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx.double(), rx, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gw.double(), rw, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("op", [*(f"op:{t}" for t in ops.op_types()), *(f"primitive:{n}" for n in CELL_PRIMITIVES)])
def test_no_op_builds_a_strided_pointwise_conv_that_takes_onednns_unsafe_path(op: str) -> None:
    kind, name = op.split(":")
    for stride in (2, 3):
        module = (ops.build_op(name, 6, 8, stride, _params(name, 1, stride)) if kind == "op"
                  else ops.primitive_op(name, 6, stride, affine=False))
        unsafe = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
                  and m.stride != (1, 1) and not isinstance(m, ops.SampledPointwiseConv)]
        assert not unsafe, (op, stride, unsafe)
