"""The core op catalog: whether a macro architecture fits its input, before anything is built.

(Each op's shape arithmetic against the real modules is tests/trainer/test_ops.py.)
"""

from __future__ import annotations

import itertools

import pytest

from kubenas.op_shapes import (
    OP_SHAPES,
    MapTooSmall,
    OpError,
    first_misfit,
    op_output_hw,
    output_size,
    widest_op_ids,
)
from kubenas.space import ExpandedOp

CONV = ExpandedOp(0, "convolution", {"filter_size": "3", "num_filter": "8"})
POOL = ExpandedOp(1, "reduction", {"reduction_type": "max_pooling", "pool_size": "2"})
STRIDED = ExpandedOp(2, "convolution", {"filter_size": "3", "num_filter": "8", "stride": "2"})


def _chain_fits(ops: list[ExpandedOp], hw: tuple[int, int], op_ids: tuple[int, ...]) -> bool:
    """The brute-force answer: apply every op, see whether any refuses its map."""
    try:
        for op_id in op_ids:
            op = ops[op_id]
            hw = (output_size(op.opt_type, hw[0], op.opt_params), output_size(op.opt_type, hw[1], op.opt_params))
    except MapTooSmall:
        return False
    return True


def test_five_poolings_do_not_fit_a_28x28_image_and_the_fifth_is_named() -> None:
    # 28 -> 14 -> 7 -> 3 -> 1: the fifth 2x2 window has no 2x2 map left.
    misfit = first_misfit([CONV, POOL], (28, 28), [1, 1, 1, 1, 1, 0])
    assert misfit is not None
    layer, error = misfit
    assert layer == 4 and error.field == "pool_size" and "1x1" in error.allowed
    assert first_misfit([CONV, POOL], (28, 28), [1, 1, 1, 1, 0, 0]) is None


def test_height_and_width_are_followed_separately() -> None:
    # A 32x4 map takes two 2x2 poolings (4 -> 2 -> 1), not three, whatever its height.
    assert first_misfit([POOL], (32, 4), [0, 0]) is None
    misfit = first_misfit([POOL], (32, 4), [0, 0, 0])
    assert misfit is not None and misfit[0] == 2 and "1x1" in misfit[1].allowed


def test_widest_chain_exists_exactly_when_some_chain_fits() -> None:
    ops = [POOL, STRIDED]  # nothing keeps the map: depth is limited by the input
    for side in (1, 2, 3, 4, 8, 16):
        for layers in range(1, 6):
            any_fits = any(_chain_fits(ops, (side, side), ids) for ids in itertools.product(range(2), repeat=layers))
            chain = widest_op_ids(ops, (side, side), layers)
            assert (chain is not None) == any_fits, (side, layers)
            if chain is not None:
                assert len(chain) == layers and _chain_fits(ops, (side, side), tuple(chain))


def test_a_map_keeping_op_makes_any_depth_fit_quickly() -> None:
    assert widest_op_ids([POOL, CONV], (2, 2), 10_000) == [1] * 10_000


def test_ops_of_unknown_shape_are_taken_to_keep_the_map() -> None:
    # Katib lets a nasConfig name any op type its own trainer builds; and bad params are the
    # trainer's error to report, not a reason to call the architecture a misfit.
    custom = ExpandedOp(0, "identity", {})
    bad_params = ExpandedOp(1, "convolution", {"filter_size": "three"})
    assert op_output_hw(custom, (5, 7)) == (5, 7)
    assert op_output_hw(bad_params, (5, 7)) == (5, 7)
    with pytest.raises(OpError):
        output_size("identity", 5, {})  # the trainer's own question still gets its error
    assert first_misfit([custom, bad_params], (1, 1), [0, 1, 0]) is None


def test_only_map_size_errors_are_misfits() -> None:
    assert issubclass(MapTooSmall, OpError)
    with pytest.raises(MapTooSmall):
        output_size("reduction", 1, {"pool_size": 2})
    with pytest.raises(MapTooSmall):
        output_size("convolution", 1, {"stride": 2})
    with pytest.raises(OpError) as info:
        output_size("reduction", 8, {"reduction_type": "median_pooling"})
    assert not isinstance(info.value, MapTooSmall) and info.value.field == "reduction_type"


def test_the_catalog_lists_every_type_the_trainers_build() -> None:
    from trainer.ops import BUILDERS

    assert BUILDERS.names() == OP_SHAPES.names()
