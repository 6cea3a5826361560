"""Search spaces too large to enumerate are refused by counting, before anything is built."""

from __future__ import annotations

import time

import pytest

from kubenas.space import (
    MAX_EXPANDED_OPERATIONS,
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    SpaceError,
    parse_number,
)


def _int(name: str, lo: str, hi: str, step: str | None = None) -> ParameterSpec:
    return ParameterSpec(name, ParameterType.INT, FeasibleSpace(min=lo, max=hi, step=step))


def _nas(*ops: Operation) -> NasConfig:
    return NasConfig(GraphConfig(3, (8, 8, 1), (10,)), ops)


@pytest.mark.parametrize(("lo", "hi", "step"), [("0", "1", "1e-320"), ("0", "1", "1e-17"), ("-1e308", "1e308", "1e-300")])
def test_a_double_step_too_small_to_index_is_refused(lo: str, hi: str, step: str) -> None:
    spec = ParameterSpec("x", ParameterType.DOUBLE, FeasibleSpace(min=lo, max=hi, step=step))
    with pytest.raises(SpaceError) as info:
        spec.check("parameters[0].")
    assert info.value.field == "parameters[0].feasibleSpace.step" and "2**53" in info.value.allowed


def test_a_fine_but_indexable_step_is_accepted() -> None:
    ParameterSpec("x", ParameterType.DOUBLE, FeasibleSpace(min="0", max="1", step="1e-15")).check()


def test_an_operation_expanding_to_millions_is_refused_without_expanding() -> None:
    # Before: the first suggestion expanded it into 10**8 operations (minutes, gigabytes).
    huge = Operation("convolution", (_int("filter_size", "1", "100000000"),))
    start = time.monotonic()
    with pytest.raises(SpaceError) as info:
        _nas(Operation("pooling"), huge).check()
    assert time.monotonic() - start < 0.1
    assert info.value.field == "nasConfig.operations[1]"
    assert info.value.value == "100000000 operations once expanded"


def test_operations_each_small_but_too_many_together_are_refused() -> None:
    part = Operation("convolution", (_int("a", "1", "100"), _int("b", "1", "60")))  # 6000 each
    _nas(part).check()
    with pytest.raises(SpaceError) as info:
        _nas(part, part).check()
    assert info.value.field == "nasConfig.operations" and str(MAX_EXPANDED_OPERATIONS) in info.value.allowed


@pytest.mark.parametrize("layers", [0, 1001, 100_000])
def test_num_layers_is_bounded(layers: int) -> None:
    # Before: 100,000 layers passed and the first suggestion built a 10 GB architecture.
    nas = NasConfig(GraphConfig(layers, (8, 8, 1), (10,)), (Operation("pooling"),))
    with pytest.raises(SpaceError) as info:
        nas.check()
    assert info.value.field == "nasConfig.graphConfig.numLayers" and "[1, 1000]" in info.value.allowed


@pytest.mark.parametrize("kind", [ParameterType.INT, ParameterType.DOUBLE])
@pytest.mark.parametrize("digits", [310, 4000, 5000])
def test_an_integer_bound_past_the_float_range_is_refused_by_name(kind: ParameterType, digits: int) -> None:
    # Before: 310..4300 digits parsed as an int, then float(max) raised OverflowError in check().
    spec = ParameterSpec("x", kind, FeasibleSpace(min="0", max="9" * digits, step="1"))
    with pytest.raises(SpaceError) as info:
        spec.check("parameters[0].")
    assert info.value.field == "parameters[0].feasibleSpace.max" and "finite number within ±1.8e308" in info.value.allowed
    with pytest.raises(ValueError, match="not a finite number"):
        parse_number("-" + "9" * digits)


def test_integers_up_to_the_float_range_stay_exact() -> None:
    big = 10**308
    assert parse_number(str(big)) == big and isinstance(parse_number(str(big)), int)
    _int("x", str(-big), str(big)).check()
