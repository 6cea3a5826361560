"""Wire messages <-> domain objects (kubenas.proto_convert), as the gRPC servicers use them."""

from __future__ import annotations

import math

import pytest

from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import (
    assignments_to_proto,
    condition_from_proto,
    condition_to_proto,
    objective_from_proto,
    objective_to_proto,
    search_space_from_proto,
    search_space_to_proto,
    settings_from_proto,
    trial_from_proto,
    trial_to_proto,
)
from kubenas.space import Distribution, ParameterType, SpaceError
from kubenas.trials import MetricStrategy, Objective, ObjectiveType, TrialCondition, TrialRecord

CONDITION = api_pb2.TrialStatus.TrialConditionType


def _hpo_spec() -> api_pb2.ExperimentSpec:
    spec = api_pb2.ExperimentSpec()
    lr = spec.parameter_specs.parameters.add(name="lr", parameter_type=api_pb2.DOUBLE)
    lr.feasible_space.min, lr.feasible_space.max = "0.001", "0.1"
    lr.feasible_space.distribution = api_pb2.LOG_UNIFORM
    opt = spec.parameter_specs.parameters.add(name="optimizer", parameter_type=api_pb2.CATEGORICAL)
    opt.feasible_space.list.extend(["sgd", "adam"])
    return spec


def test_hpo_space_from_proto_keeps_text_and_enums() -> None:
    space = search_space_from_proto(_hpo_spec())
    assert not space.is_nas
    lr, opt = space.parameters
    assert (lr.name, lr.type, lr.feasible.min, lr.feasible.max) == ("lr", ParameterType.DOUBLE, "0.001", "0.1")
    assert lr.feasible.distribution is Distribution.LOG_UNIFORM and lr.feasible.step is None
    assert opt.type is ParameterType.CATEGORICAL and opt.feasible.list == ("sgd", "adam")
    assert opt.feasible.distribution is None


def test_space_round_trips_through_proto() -> None:
    original = _hpo_spec()
    again = search_space_to_proto(search_space_from_proto(original))
    assert again.SerializeToString(deterministic=True) == original.SerializeToString(deterministic=True)


def test_nas_space_from_proto() -> None:
    spec = api_pb2.ExperimentSpec()
    spec.nas_config.graph_config.num_layers = 2
    spec.nas_config.graph_config.input_sizes.extend([8, 8, 1])
    spec.nas_config.graph_config.output_sizes.append(10)
    conv = spec.nas_config.operations.operation.add(operation_type="convolution")
    size = conv.parameter_specs.parameters.add(name="filter_size", parameter_type=api_pb2.CATEGORICAL)
    size.feasible_space.list.extend(["3", "5"])
    spec.nas_config.operations.operation.add(operation_type="skip_connection")
    space = search_space_from_proto(spec)
    assert space.is_nas and not space.parameters
    assert space.nas_config is not None
    assert [op.opt_type for op in space.nas_config.expanded()] == ["convolution", "convolution", "skip_connection"]
    assert space.nas_config.graph_config.input_sizes == (8, 8, 1)
    assert search_space_to_proto(space).SerializeToString(deterministic=True) == spec.SerializeToString(deterministic=True)


def test_unknown_parameter_type_names_the_field() -> None:
    spec = api_pb2.ExperimentSpec()
    spec.parameter_specs.parameters.add(name="x", parameter_type=api_pb2.UNKNOWN_TYPE)
    with pytest.raises(SpaceError) as info:
        search_space_from_proto(spec)
    assert info.value.field == "parameters[0].parameterType"
    assert info.value.value == "UNKNOWN_TYPE"
    assert "DOUBLE" in info.value.allowed and "CATEGORICAL" in info.value.allowed


def test_malformed_space_is_rejected_unless_check_is_off() -> None:
    spec = api_pb2.ExperimentSpec()
    p = spec.parameter_specs.parameters.add(name="x", parameter_type=api_pb2.INT)
    p.feasible_space.min, p.feasible_space.max = "5", "1"
    with pytest.raises(SpaceError) as info:
        search_space_from_proto(spec)
    assert info.value.field == "parameters[0].feasibleSpace.max"
    assert search_space_from_proto(spec, check=False).parameters[0].feasible.max == "1"


def test_empty_spec_has_no_space() -> None:
    with pytest.raises(SpaceError) as info:
        search_space_from_proto(api_pb2.ExperimentSpec())
    assert info.value.field == "parameters"


def test_objective_from_proto() -> None:
    msg = api_pb2.ObjectiveSpec(type=api_pb2.MINIMIZE, goal=0.25, objective_metric_name="loss",
                                additional_metric_names=["acc"])
    obj = objective_from_proto(msg)
    assert obj == Objective(ObjectiveType.MINIMIZE, "loss", 0.25, ("acc",))
    assert obj.strategy("acc") is MetricStrategy.MIN
    assert objective_to_proto(obj) == msg


def test_zero_goal_means_no_goal() -> None:
    obj = objective_from_proto(api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name="acc"))
    assert obj.goal is None and not obj.reached(1e9)
    assert objective_to_proto(obj).goal == 0.0


@pytest.mark.parametrize(
    "msg, field",
    [
        (api_pb2.ObjectiveSpec(objective_metric_name="loss"), "objective.type"),
        (api_pb2.ObjectiveSpec(type=api_pb2.MINIMIZE), "objective.objectiveMetricName"),
        (api_pb2.ObjectiveSpec(type=api_pb2.MINIMIZE, objective_metric_name="l", goal=math.nan), "objective.goal"),
    ],
)
def test_bad_objective_names_the_field(msg: api_pb2.ObjectiveSpec, field: str) -> None:
    with pytest.raises(SpaceError) as info:
        objective_from_proto(msg)
    assert info.value.field == field


def _trial(name: str, condition: int, metrics: list[tuple[str, str]]) -> api_pb2.Trial:
    msg = api_pb2.Trial(name=name)
    msg.spec.parameter_assignments.assignments.add(name="lr", value="0.01")
    msg.spec.labels["team"] = "a"
    msg.status.condition = condition
    for metric, value in metrics:
        msg.status.observation.metrics.add(name=metric, value=value)
    return msg


def test_trial_from_proto_parses_metrics_and_drops_unparseable() -> None:
    obj = Objective(ObjectiveType.MAXIMIZE, "acc", additional_metric_names=("loss",))
    msg = _trial("t1", CONDITION.Value("SUCCEEDED"),
                 [("acc", "0.91"), ("loss", "unavailable"), ("loss", "nan"), ("epoch", "3")])
    record = trial_from_proto(msg, obj)
    assert record.name == "t1"
    assert record.condition is TrialCondition.SUCCEEDED
    assert record.assignments == {"lr": "0.01"}
    assert record.labels == {"team": "a"}
    assert record.metrics == {"acc": 0.91, "epoch": 3.0}
    assert record.value(obj) == 0.91


@pytest.mark.parametrize(
    "strategy, expected",
    [(MetricStrategy.MIN, 0.2), (MetricStrategy.MAX, 0.5), (MetricStrategy.LATEST, 0.3)],
)
def test_repeated_metric_is_reduced_by_strategy(strategy: MetricStrategy, expected: float) -> None:
    obj = Objective(ObjectiveType.MINIMIZE, "loss", strategies={"loss": strategy})
    msg = _trial("t", CONDITION.Value("SUCCEEDED"), [("loss", "0.5"), ("loss", "0.2"), ("loss", "0.3")])
    assert trial_from_proto(msg, obj).metrics["loss"] == expected


@pytest.mark.parametrize("condition", list(TrialCondition))
def test_every_condition_round_trips(condition: TrialCondition) -> None:
    number = condition_to_proto(condition)
    assert condition_from_proto(number) is condition
    wire = CONDITION.Name(number)
    assert wire == condition.name.replace("_", "")


def test_unknown_condition_number_reads_as_unknown() -> None:
    assert condition_from_proto(99) is TrialCondition.UNKNOWN


def test_trial_round_trips() -> None:
    obj = Objective(ObjectiveType.MINIMIZE, "loss", goal=0.1)
    record = TrialRecord("t7", {"x": "1.5", "opt": "adam"}, TrialCondition.FAILED, {"loss": 0.125}, {"k": "v"})
    msg = trial_to_proto(record, obj)
    assert msg.status.condition == CONDITION.Value("FAILED")
    assert msg.spec.objective.objective_metric_name == "loss"
    assert [(m.name, m.value) for m in msg.status.observation.metrics] == [("loss", "0.125")]
    assert trial_from_proto(msg, obj) == record


def test_completion_time_crosses_the_wire_both_ways() -> None:
    # evolution orders its population by completion time: losing it would age by name
    obj = Objective(ObjectiveType.MAXIMIZE, "acc")
    record = TrialRecord("t1", {"x": "1"}, TrialCondition.SUCCEEDED, {"acc": 0.5},
                         completion_time="2026-11-22T13:00:00Z")
    msg = trial_to_proto(record, obj)
    assert msg.status.completion_time == "2026-11-22T13:00:00Z"
    assert trial_from_proto(msg, obj).completion_time == "2026-11-22T13:00:00Z"
    running = trial_to_proto(TrialRecord("t2", {"x": "2"}, TrialCondition.RUNNING), obj)
    assert running.status.completion_time == "" and trial_from_proto(running, obj).completion_time is None


def test_settings_and_assignments() -> None:
    settings = [api_pb2.AlgorithmSetting(name="a", value="1"), api_pb2.AlgorithmSetting(name="b", value="x")]
    assert settings_from_proto(settings) == {"a": "1", "b": "x"}
    wire = assignments_to_proto({"n": 3, "lr": 0.5, "opt": "sgd"})
    assert [(a.name, a.value) for a in wire] == [("n", "3"), ("lr", "0.5"), ("opt", "sgd")]
