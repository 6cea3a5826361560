"""Search spaces the ENAS tests share (Katib's examples and unit scenario), and their op numbering."""

from __future__ import annotations

from pathlib import Path

from kubenas.experiment import load_experiment_file
from kubenas.space import (
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    SearchSpace,
)
from kubenas.trials import Objective, ObjectiveType
from suggestion.algorithms.base import Problem

KATIB_DATA = Path(__file__).resolve().parents[1] / "data" / "katib"
ACCURACY = Objective(ObjectiveType.MAXIMIZE, "Validation-Accuracy", goal=0.99)


def cat(name: str, *values: str) -> ParameterSpec:
    return ParameterSpec(name, ParameterType.CATEGORICAL, FeasibleSpace(list=values))


def rng(name: str, kind: str, lo: str, hi: str, step: str | None = None) -> ParameterSpec:
    return ParameterSpec(name, ParameterType(kind), FeasibleSpace(min=lo, max=hi, step=step))


def katib_space(name: str) -> SearchSpace:
    """`enas-gpu` (8 layers) or `enas-cpu` (1 layer) from Katib's example YAML."""
    return load_experiment_file(KATIB_DATA / f"{name}.yaml").search_space()


def unit_scenario_space(num_layers: int = 4) -> SearchSpace:
    """Katib's ENAS unit test: conv 5x5/128 filters/stride 1-2 and max pooling 2-3 (4 ops)."""
    ops = (
        Operation("convolution", (cat("filter_size", "5"), cat("num_filter", "128"), cat("stride", "1", "2"))),
        Operation("reduction", (cat("reduction_type", "max_pooling"), rng("pool_size", "int", "2", "3", "1"))),
    )
    return SearchSpace(nas_config=NasConfig(GraphConfig(num_layers, (32, 32, 8), (10,)), ops))


def mixed_types_space(num_layers: int = 3) -> SearchSpace:
    """INT, DOUBLE, DISCRETE and CATEGORICAL operation parameters, plus a parameterless op."""
    ops = (
        Operation("convolution", (rng("filter_size", "int", "3", "5", "2"), ParameterSpec(
            "num_filter", ParameterType.DISCRETE, FeasibleSpace(list=("16", "32"))))),
        Operation("dropout_convolution", (rng("rate", "double", "0.1", "0.3", "0.1"), cat("act", "relu", "gelu"))),
        Operation("skip_connection"),
    )
    return SearchSpace(nas_config=NasConfig(GraphConfig(num_layers, (8, 8, 1), (10,)), ops))


def problem(space: SearchSpace, settings: dict[str, str] | None = None, name: str = "enas-exp",
            objective: Objective = ACCURACY) -> Problem:
    return Problem(name, space, objective, dict(settings or {}))


def test_katib_gpu_example_has_106_ops_in_katib_order() -> None:
    nas = katib_space("enas-gpu").nas_config
    assert nas is not None and nas.graph_config.num_layers == 8
    ops = nas.expanded()
    assert len(ops) == 106
    # First parameter slowest: filter_size, then num_filter, then stride.
    assert (ops[0].opt_type, dict(ops[0].opt_params)) == ("convolution", {"filter_size": 3, "num_filter": 32, "stride": 1})
    assert dict(ops[1].opt_params) == {"filter_size": 3, "num_filter": 32, "stride": 2}
    assert dict(ops[10].opt_params) == {"filter_size": 5, "num_filter": 32, "stride": 1}
    assert ops[30].opt_type == "separable_convolution" and dict(ops[30].opt_params)["depth_multiplier"] == 1
    assert ops[90].opt_type == "depthwise_convolution"
    assert [dict(o.opt_params) for o in ops[102:]] == [
        {"reduction_type": r, "pool_size": k} for r in ("max_pooling", "avg_pooling") for k in (2, 3)
    ]
    assert katib_space("enas-cpu").nas_config.graph_config.num_layers == 1  # type: ignore[union-attr]


def test_mixed_parameter_types_expand_to_numbers() -> None:
    ops = mixed_types_space().nas_config.expanded()  # type: ignore[union-attr]
    assert [dict(o.opt_params) for o in ops[:4]] == [
        {"filter_size": 3, "num_filter": 16}, {"filter_size": 3, "num_filter": 32},
        {"filter_size": 5, "num_filter": 16}, {"filter_size": 5, "num_filter": 32},
    ]
    assert [o.opt_params["rate"] for o in ops[4:10:2]] == [0.1, 0.2, 0.3]
    assert ops[-1].opt_type == "skip_connection" and dict(ops[-1].opt_params) == {}
    assert len(ops) == 11
