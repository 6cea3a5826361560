"""Search spaces (kubenas.space): Katib's op numbering, grids, feasible-space rules, codecs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenas.experiment import load_experiment_file
from kubenas.space import (
    Distribution,
    FeasibleSpace,
    GraphConfig,
    MacroArchitecture,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    SearchSpace,
    SpaceError,
    expand_operations,
    loads_lenient,
    nn_config,
)

KATIB = Path(__file__).resolve().parents[1] / "data" / "katib"


def p(kind: ParameterType, name: str = "p", **fs: object) -> ParameterSpec:
    return ParameterSpec(name, kind, FeasibleSpace(**fs))  # type: ignore[arg-type]


# --- op expansion: Katib's enas-gpu numbering -----------------------------------------


@pytest.fixture(scope="module")
def enas_gpu_ops() -> list:
    nas = load_experiment_file(KATIB / "enas-gpu.yaml").search_space().nas_config
    assert nas is not None
    return nas.expanded()


def test_enas_gpu_has_106_ops(enas_gpu_ops: list) -> None:
    # convolution 3*5*2 + separable 3*5*2*2 + depthwise 3*2*2 + reduction 2*2
    assert len(enas_gpu_ops) == 106
    assert [op.opt_id for op in enas_gpu_ops] == list(range(106))
    counts = {t: sum(op.opt_type == t for op in enas_gpu_ops) for t in
              ("convolution", "separable_convolution", "depthwise_convolution", "reduction")}
    assert counts == {"convolution": 30, "separable_convolution": 60, "depthwise_convolution": 12, "reduction": 4}


@pytest.mark.parametrize(
    "op_id, opt_type, params",
    [
        (0, "convolution", {"filter_size": 3, "num_filter": 32, "stride": 1}),
        (1, "convolution", {"filter_size": 3, "num_filter": 32, "stride": 2}),  # last parameter fastest
        (2, "convolution", {"filter_size": 3, "num_filter": 48, "stride": 1}),
        (10, "convolution", {"filter_size": 5, "num_filter": 32, "stride": 1}),
        (29, "convolution", {"filter_size": 7, "num_filter": 128, "stride": 2}),
        (30, "separable_convolution", {"filter_size": 3, "num_filter": 32, "stride": 1, "depth_multiplier": 1}),
        (89, "separable_convolution", {"filter_size": 7, "num_filter": 128, "stride": 2, "depth_multiplier": 2}),
        (90, "depthwise_convolution", {"filter_size": 3, "stride": 1, "depth_multiplier": 1}),
        (101, "depthwise_convolution", {"filter_size": 7, "stride": 2, "depth_multiplier": 2}),
        (102, "reduction", {"reduction_type": "max_pooling", "pool_size": 2}),
        (103, "reduction", {"reduction_type": "max_pooling", "pool_size": 3}),
        (104, "reduction", {"reduction_type": "avg_pooling", "pool_size": 2}),
        (105, "reduction", {"reduction_type": "avg_pooling", "pool_size": 3}),
    ],
)
def test_enas_gpu_ops_in_katib_order(enas_gpu_ops: list, op_id: int, opt_type: str, params: dict) -> None:
    op = enas_gpu_ops[op_id]
    assert (op.opt_id, op.opt_type, dict(op.opt_params)) == (op_id, opt_type, params)
    assert list(op.opt_params) == list(params)  # parameter order as in the YAML


def test_operation_without_parameters_is_one_op() -> None:
    ops = expand_operations([Operation("skip_connection"), Operation("conv", (p(ParameterType.CATEGORICAL, "k", list=("3", "5")),))])
    assert [(o.opt_id, o.opt_type, dict(o.opt_params)) for o in ops] == [
        (0, "skip_connection", {}), (1, "conv", {"k": 3}), (2, "conv", {"k": 5})]


def test_expanded_op_json_round_trip(enas_gpu_ops: list) -> None:
    op = enas_gpu_ops[102]
    data = json.loads(json.dumps(op.to_json()))
    assert data == {"opt_id": 102, "opt_type": "reduction", "opt_params": {"reduction_type": "max_pooling", "pool_size": 2}}
    assert type(op).from_json(data) == op
    # Katib sends categorical values as text; they come back as numbers.
    assert type(op).from_json({"opt_id": "3", "opt_type": "c", "opt_params": {"k": "5"}}).opt_params == {"k": 5}


# --- grids ------------------------------------------------------------------------------


def test_int_grid_default_and_explicit_step() -> None:
    assert p(ParameterType.INT, min="2", max="5").grid_values() == [2, 3, 4, 5]
    assert p(ParameterType.INT, min="-3", max="4", step="3").grid_values() == [-3, 0, 3]


def test_double_grid_has_no_float_drift() -> None:
    values = p(ParameterType.DOUBLE, min="0.001", max="0.01", step="0.001").grid_values()
    assert len(values) == 10
    assert values[2] == 0.003 and values[-1] == 0.01
    assert p(ParameterType.DOUBLE, min="0.1", max="0.35", step="0.1").grid_values() == [0.1, 0.2, 0.3]


def test_double_grid_needs_a_step() -> None:
    with pytest.raises(SpaceError) as info:
        p(ParameterType.DOUBLE, "lr", min="0", max="1").grid_values()
    assert info.value.field == "lr.feasibleSpace.step"


def test_discrete_grid_is_numbers_and_categorical_stays_text() -> None:
    assert p(ParameterType.DISCRETE, list=("1", "0.5", "8")).grid_values() == [1, 0.5, 8]
    assert p(ParameterType.CATEGORICAL, list=("3", "adam")).grid_values() == ["3", "adam"]


@given(st.integers(-100, 100), st.integers(0, 50), st.integers(1, 7))
def test_int_grid_matches_range(lo: int, width: int, step: int) -> None:
    spec = p(ParameterType.INT, min=str(lo), max=str(lo + width), step=str(step))
    values = spec.grid_values()
    assert values == list(range(lo, lo + width + 1, step))
    assert all(spec.contains(str(v)) for v in values)


def test_contains() -> None:
    spec = p(ParameterType.INT, min="1", max="4")
    assert spec.contains("4") and not spec.contains("5") and not spec.contains("2.5") and not spec.contains("x")
    assert p(ParameterType.DISCRETE, list=("1", "0.5")).contains("0.50")
    assert not p(ParameterType.CATEGORICAL, list=("a",)).contains("b")


# --- ParameterSpec.check ----------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, field, fragment",
    [
        (p(ParameterType.DOUBLE, min="1"), "feasibleSpace.max", "required"),
        (p(ParameterType.DOUBLE, min="2", max="1"), "feasibleSpace.max", ">= min"),
        (p(ParameterType.DOUBLE, min="a", max="1"), "feasibleSpace.min", "finite number"),
        (p(ParameterType.DOUBLE, min="0", max="nan"), "feasibleSpace.max", "finite number"),
        (p(ParameterType.DOUBLE, min="0", max="1", step="0"), "feasibleSpace.step", "> 0"),
        (p(ParameterType.DOUBLE, min="0", max="1", list=("1",)), "feasibleSpace.list", "must be empty"),
        (p(ParameterType.INT, min="0.5", max="3"), "feasibleSpace.min", "integer"),
        (p(ParameterType.INT, min="0", max="3", step="0.5"), "feasibleSpace.step", "integer"),
        (p(ParameterType.DOUBLE, min="0", max="1", distribution=Distribution.LOG_UNIFORM), "feasibleSpace.min", "> 0"),
        (p(ParameterType.CATEGORICAL), "feasibleSpace.list", "non-empty"),
        (p(ParameterType.CATEGORICAL, list=("a", "a")), "feasibleSpace.list", "unique"),
        (p(ParameterType.CATEGORICAL, list=("a",), min="1"), "feasibleSpace.min", "use list"),
        (p(ParameterType.DISCRETE, list=("1", "two")), "feasibleSpace.list[1]", "finite number"),
        (p(ParameterType.CATEGORICAL, list=("a",), distribution=Distribution.NORMAL), "feasibleSpace.distribution", "not allowed"),
    ],
)
def test_parameter_check_errors(spec: ParameterSpec, field: str, fragment: str) -> None:
    with pytest.raises(SpaceError) as info:
        spec.check("parameters[3].")
    assert info.value.field == f"parameters[3].{field}"
    assert fragment in info.value.allowed
    assert str(info.value).startswith(f"parameters[3].{field}: invalid value")


def test_valid_parameters_pass() -> None:
    for spec in (
        p(ParameterType.DOUBLE, min="0.001", max="0.1", distribution=Distribution.LOG_UNIFORM),
        p(ParameterType.INT, min="1", max="1"),
        p(ParameterType.DISCRETE, list=("1", "2.5")),
        p(ParameterType.CATEGORICAL, list=("sgd",)),
    ):
        spec.check()


def test_search_space_check() -> None:
    a = p(ParameterType.INT, "a", min="0", max="1")
    with pytest.raises(SpaceError) as info:
        SearchSpace((a, a)).check()
    assert info.value.field == "parameters[1].name"
    nas = NasConfig(GraphConfig(1, (), ()), (Operation("skip_connection"),))
    with pytest.raises(SpaceError) as info:
        SearchSpace((a,), nas).check()
    assert "exactly one" in info.value.allowed
    SearchSpace(nas_config=nas).check()  # DARTS style: no input/output sizes


def test_nas_check_requires_a_step_for_double_op_parameters() -> None:
    nas = NasConfig(GraphConfig(2, (8,), (2,)), (Operation("conv", (p(ParameterType.DOUBLE, "d", min="0", max="1"),)),))
    with pytest.raises(SpaceError) as info:
        nas.check()
    assert info.value.field == "nasConfig.operations[0].parameters[0].feasibleSpace.step"


# --- MacroArchitecture and nn_config ------------------------------------------------------


def test_macro_architecture_round_trip() -> None:
    arch = MacroArchitecture(((3,), (1, 0), (5, 1, 1)))
    text = arch.to_json()
    assert json.loads(text) == [[3], [1, 0], [5, 1, 1]]
    assert MacroArchitecture.from_json(text) == arch
    assert arch.op_ids == [3, 1, 5]


def test_macro_architecture_reads_katib_text() -> None:
    assert MacroArchitecture.from_json("[[0], [2, 1]]").op_ids == [0, 2]


@pytest.mark.parametrize(
    "rows, field",
    [(((0,), (1,)), "architecture[1]"), (((0,), (1, 2)), "architecture[1]"), (((-1,),), "architecture[0][0]")],
)
def test_macro_architecture_rejects_bad_rows(rows: tuple, field: str) -> None:
    with pytest.raises(SpaceError) as info:
        MacroArchitecture(rows)
    assert info.value.field == field


@pytest.mark.parametrize("text", ["[[0], [1]]", "[1, 2]", "{'a': 1}", "not json"])
def test_macro_architecture_from_bad_json(text: str) -> None:
    with pytest.raises(SpaceError):
        MacroArchitecture.from_json(text)


@given(st.lists(st.integers(0, 105), min_size=1, max_size=8), st.data())
def test_macro_architecture_property(op_ids: list[int], data: st.DataObject) -> None:
    rows = tuple((op, *data.draw(st.lists(st.integers(0, 1), min_size=i, max_size=i))) for i, op in enumerate(op_ids))
    arch = MacroArchitecture(rows)
    assert MacroArchitecture.from_json(arch.to_json()) == arch


def test_nn_config_embeds_only_used_ops(enas_gpu_ops: list) -> None:
    graph = GraphConfig(3, (32, 32, 3), (10,))
    config = nn_config(graph, enas_gpu_ops, [102, 0, 102])
    assert config["num_layers"] == 3 and config["input_sizes"] == [32, 32, 3] and config["output_sizes"] == [10]
    assert list(config["embedding"]) == ["0", "102"]
    assert config["embedding"]["102"]["opt_params"] == {"reduction_type": "max_pooling", "pool_size": 2}
    json.dumps(config)  # valid JSON as emitted


# --- loads_lenient ------------------------------------------------------------------------


def test_loads_lenient_reads_json_and_katib_single_quotes() -> None:
    assert loads_lenient('{"a": [1, 2]}') == {"a": [1, 2]}
    katib = "{'num_layers': 1, 'embedding': {'0': {'opt_type': 'convolution', 'opt_params': {'filter_size': '3'}}}}"
    assert loads_lenient(katib)["embedding"]["0"]["opt_params"] == {"filter_size": "3"}


def test_loads_lenient_names_what_failed() -> None:
    with pytest.raises(SpaceError) as info:
        loads_lenient("{'a': ", "nn_config")
    assert info.value.field == "nn_config" and info.value.value == "{'a': "
