"""The darts suggestion: Katib's settings and rules, our extras, the three assignments, every call."""

from __future__ import annotations

import json

import pytest

from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import search_space_from_proto
from kubenas.space import (
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    SearchSpace,
)
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.darts import Darts
from suggestion.algorithms.registry import algorithm_class

KATIB_DEFAULTS = {
    "num_epochs": 50, "w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9, "w_weight_decay": 3e-4,
    "w_grad_clip": 5.0, "alpha_lr": 3e-4, "alpha_weight_decay": 1e-3, "batch_size": 128,
    "num_workers": 4, "init_channels": 16, "print_step": 50, "num_nodes": 4, "stem_multiplier": 3,
}


def _filter_sizes(*sizes: str) -> tuple[ParameterSpec, ...]:
    return (ParameterSpec("filter_size", ParameterType.CATEGORICAL, FeasibleSpace(list=sizes)),)


def darts_gpu_space(num_layers: int = 3) -> SearchSpace:
    """The search space of Katib's darts-gpu example (no inputSizes/outputSizes, as there)."""
    ops = (
        Operation("separable_convolution", _filter_sizes("3")),
        Operation("dilated_convolution", _filter_sizes("3", "5")),
        Operation("avg_pooling", _filter_sizes("3")),
        Operation("max_pooling", _filter_sizes("3")),
        Operation("skip_connection"),
    )
    return SearchSpace(nas_config=NasConfig(GraphConfig(num_layers, (), ()), ops))


def problem(settings: dict[str, str] | None = None, space: SearchSpace | None = None) -> Problem:
    return Problem(
        "darts-exp",
        space or darts_gpu_space(),
        Objective(ObjectiveType.MAXIMIZE, "Best-Genotype"),
        settings or {},
    )


def test_registered_under_darts() -> None:
    assert algorithm_class("darts") is Darts
    assert Darts.supports_nas and not Darts.supports_hpo


def test_darts_gpu_example_space_passes_core_validation_without_sizes() -> None:
    spec = api_pb2.ExperimentSpec()
    spec.nas_config.graph_config.num_layers = 3
    op = spec.nas_config.operations.operation.add(operation_type="separable_convolution")
    op.parameter_specs.parameters.add(
        name="filter_size", parameter_type=api_pb2.CATEGORICAL, feasible_space=api_pb2.FeasibleSpace(list=["3"])
    )
    spec.nas_config.operations.operation.add(operation_type="skip_connection")
    space = search_space_from_proto(spec, check=True)
    Darts().validate(problem({"num_epochs": "3"}, space))


def test_assignments_resolve_every_setting_with_katib_defaults_as_numbers() -> None:
    [s] = Darts().suggest(problem({"num_epochs": "3"}), [], 1)
    assert set(s.assignments) == {"algorithm-settings", "search-space", "num-layers"}
    settings = json.loads(s.assignments["algorithm-settings"])
    assert settings == {
        **KATIB_DEFAULTS, "num_epochs": 3,
        "order": "second", "partial_channels": 1, "edge_normalization": "auto", "dataset": "cifar10",
        "random_state": None,
    }
    assert isinstance(settings["batch_size"], int) and isinstance(settings["w_lr"], float)
    assert json.loads(s.assignments["search-space"]) == [
        "separable_convolution_3x3", "dilated_convolution_3x3", "dilated_convolution_5x5",
        "avg_pooling_3x3", "max_pooling_3x3", "skip_connection",
    ]
    assert s.assignments["num-layers"] == "3"


def test_every_call_answers_the_requested_number_the_same_way() -> None:
    algo, p = Darts(), problem({"order": "first", "partial_channels": "4", "random_state": "7"})
    first = algo.suggest(p, [], 1)
    done = TrialRecord("t1", first[0].assignments, TrialCondition.SUCCEEDED, {})
    second = algo.suggest(p, [done], 3)
    third = Darts().suggest(p, [done], 2)
    assert len(second) == 3 and len(third) == 2
    assert all(s.assignments == first[0].assignments for s in second + third)
    settings = json.loads(first[0].assignments["algorithm-settings"])
    assert (settings["order"], settings["partial_channels"], settings["random_state"]) == ("first", 4, 7)


def test_none_disables_batch_size_and_random_state_as_in_katib() -> None:
    [s] = Darts().suggest(problem({"batch_size": "None", "random_state": "None"}), [], 1)
    settings = json.loads(s.assignments["algorithm-settings"])
    assert settings["batch_size"] is None and settings["random_state"] is None


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("num_epochs", "0", "> 0"),
        ("num_epochs", "ten", "> 0"),
        ("w_lr", "-0.1", ">= 0"),
        ("alpha_weight_decay", "nan", ">= 0"),
        ("w_grad_clip", "-1", ">= 0"),
        ("batch_size", "0", ">= 1"),
        ("num_workers", "-1", ">= 0"),
        ("init_channels", "0", ">= 1"),
        ("print_step", "0.5", ">= 1"),
        ("num_nodes", "0", ">= 1"),
        ("stem_multiplier", "0", ">= 1"),
        ("order", "third", "first"),
        ("partial_channels", "0", ">= 1"),
        ("dataset", "CIFAR 10", "dataset name"),
        ("random_state", "-3", ">= 0"),
        ("learning_rate", "0.1", "unknown setting"),
    ],
)
def test_bad_settings_name_the_setting_value_and_rule(name: str, value: str, allowed: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        Darts().validate(problem({name: value}))
    assert info.value.setting == name and info.value.value == value
    assert allowed in info.value.allowed


def test_hpo_space_and_none_only_space_are_rejected() -> None:
    hpo = SearchSpace(parameters=(ParameterSpec("lr", ParameterType.DOUBLE, FeasibleSpace("0.1", "1")),))
    with pytest.raises(InvalidSettings, match="nasConfig"):
        Darts().validate(problem(space=hpo))
    only_none = SearchSpace(nas_config=NasConfig(GraphConfig(2, (), ()), (Operation("none"),)))
    with pytest.raises(InvalidSettings, match="besides none"):
        Darts().suggest(problem(space=only_none), [], 1)


def test_katib_darts_cpu_example_settings_validate() -> None:
    ops = (Operation("max_pooling", _filter_sizes("3")),)
    space = SearchSpace(nas_config=NasConfig(GraphConfig(1, (), ()), ops))
    raw = {"num_epochs": "1", "num_nodes": "1", "init_channels": "1", "stem_multiplier": "1"}
    [s] = Darts().suggest(problem(raw, space), [], 1)
    assert json.loads(s.assignments["search-space"]) == ["max_pooling_3x3"]
    assert json.loads(s.assignments["algorithm-settings"])["init_channels"] == 1
