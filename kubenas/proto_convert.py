"""Wire messages (api.v1.beta1) <-> domain objects, for every gRPC servicer and client.

The suggestion server turns `GetSuggestionsRequest.experiment.spec` into a `SearchSpace`
and an `Objective`, and `request.trials` into `TrialRecord`s; the controller goes the other
way. Conversion is the only thing done here: a malformed message raises `SpaceError`
(field path relative to the experiment spec, value, what is allowed), which servicers map
to INVALID_ARGUMENT.

Proto3 scalars carry no presence, so an `ObjectiveSpec.goal` of 0.0 reads as "no goal"
(Katib's controller also sends 0 when the Experiment has none).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TypeVar

from kubenas.api.v1beta1 import api_pb2
from kubenas.space.errors import SpaceError
from kubenas.space.nas import GraphConfig, NasConfig, Operation
from kubenas.space.number_text import format_value
from kubenas.space.parameters import Distribution, FeasibleSpace, ParameterSpec, ParameterType
from kubenas.space.search_space import SearchSpace
from kubenas.trials import MetricStrategy, Objective, ObjectiveType, TrialCondition, TrialRecord

__all__ = [
    "GRPC_MESSAGE_OPTIONS",
    "MAX_MESSAGE_BYTES",
    "MAX_SUGGESTIONS_PER_REQUEST",
    "assignments_from_proto",
    "assignments_to_proto",
    "condition_from_proto",
    "condition_to_proto",
    "nas_config_from_proto",
    "nas_config_to_proto",
    "objective_from_proto",
    "objective_to_proto",
    "parameter_spec_from_proto",
    "parameter_spec_to_proto",
    "search_space_from_proto",
    "search_space_to_proto",
    "settings_from_proto",
    "settings_to_proto",
    "trial_from_proto",
    "trial_to_proto",
]

_E = TypeVar("_E")

# Wire limits shared by every server and client of ours. gRPC's default 4 MiB receive limit
# is hit by a few thousand NAS trials in one GetSuggestions request, or ~100k metric points
# of one trial in a GetObservationLog reply: the run would stop on a size, not on bad input.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_MESSAGE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)
# Katib's controller asks for the trials it is about to create (at most parallelTrialCount);
# a bound keeps a request for 2**31 assignments from holding a worker and gigabytes.
MAX_SUGGESTIONS_PER_REQUEST = 10_000

# One table per enum: domain value <-> wire number. Zero (unknown) has no domain value.
_PARAMETER_TYPES: dict[ParameterType, api_pb2.ParameterType] = {
    ParameterType.DOUBLE: api_pb2.DOUBLE,
    ParameterType.INT: api_pb2.INT,
    ParameterType.DISCRETE: api_pb2.DISCRETE,
    ParameterType.CATEGORICAL: api_pb2.CATEGORICAL,
}
_DISTRIBUTIONS: dict[Distribution, api_pb2.Distribution] = {
    Distribution.UNIFORM: api_pb2.UNIFORM,
    Distribution.LOG_UNIFORM: api_pb2.LOG_UNIFORM,
    Distribution.NORMAL: api_pb2.NORMAL,
    Distribution.LOG_NORMAL: api_pb2.LOG_NORMAL,
}
_OBJECTIVE_TYPES: dict[ObjectiveType, api_pb2.ObjectiveType] = {
    ObjectiveType.MINIMIZE: api_pb2.MINIMIZE,
    ObjectiveType.MAXIMIZE: api_pb2.MAXIMIZE,
}
_CONDITION = api_pb2.TrialStatus.TrialConditionType
_CONDITIONS: dict[TrialCondition, api_pb2.TrialStatus.TrialConditionType] = {
    TrialCondition.CREATED: _CONDITION.Value("CREATED"),
    TrialCondition.RUNNING: _CONDITION.Value("RUNNING"),
    TrialCondition.SUCCEEDED: _CONDITION.Value("SUCCEEDED"),
    TrialCondition.KILLED: _CONDITION.Value("KILLED"),
    TrialCondition.FAILED: _CONDITION.Value("FAILED"),
    TrialCondition.METRICS_UNAVAILABLE: _CONDITION.Value("METRICSUNAVAILABLE"),
    TrialCondition.EARLY_STOPPED: _CONDITION.Value("EARLYSTOPPED"),
    TrialCondition.UNKNOWN: _CONDITION.Value("UNKNOWN"),
}


def _reverse(table: Mapping[_E, int]) -> dict[int, _E]:
    return {number: value for value, number in table.items()}


_PARAMETER_TYPES_BY_NUMBER = _reverse(_PARAMETER_TYPES)
_DISTRIBUTIONS_BY_NUMBER = _reverse(_DISTRIBUTIONS)
_OBJECTIVE_TYPES_BY_NUMBER = _reverse(_OBJECTIVE_TYPES)
_CONDITIONS_BY_NUMBER = _reverse(_CONDITIONS)


def _text(value: str) -> str | None:
    return value if value != "" else None


def parameter_spec_from_proto(msg: api_pb2.ParameterSpec, where: str = "") -> ParameterSpec:
    """One `ParameterSpec` message as domain data (not checked; see `ParameterSpec.check`)."""
    ptype = _PARAMETER_TYPES_BY_NUMBER.get(msg.parameter_type)
    if ptype is None:
        allowed = ", ".join(api_pb2.ParameterType.Name(n) for n in _PARAMETER_TYPES.values())
        raise SpaceError(f"{where}parameterType", api_pb2.ParameterType.Name(msg.parameter_type)
                         if msg.parameter_type in api_pb2.ParameterType.values() else msg.parameter_type,
                         f"must be one of {allowed}")
    fs = msg.feasible_space
    distribution = None
    if fs.distribution != api_pb2.DISTRIBUTION_UNSPECIFIED:
        distribution = _DISTRIBUTIONS_BY_NUMBER.get(fs.distribution)
        if distribution is None:
            raise SpaceError(f"{where}feasibleSpace.distribution", fs.distribution,
                             "must be one of UNIFORM, LOG_UNIFORM, NORMAL, LOG_NORMAL")
    feasible = FeasibleSpace(
        min=_text(fs.min),
        max=_text(fs.max),
        list=tuple(fs.list),
        step=_text(fs.step),
        distribution=distribution,
    )
    return ParameterSpec(name=msg.name, type=ptype, feasible=feasible)


def parameter_spec_to_proto(spec: ParameterSpec) -> api_pb2.ParameterSpec:
    fs = spec.feasible
    feasible = api_pb2.FeasibleSpace(
        min=fs.min or "",
        max=fs.max or "",
        list=list(fs.list),
        step=fs.step or "",
        distribution=_DISTRIBUTIONS[fs.distribution] if fs.distribution else api_pb2.DISTRIBUTION_UNSPECIFIED,
    )
    return api_pb2.ParameterSpec(name=spec.name, parameter_type=_PARAMETER_TYPES[spec.type], feasible_space=feasible)


def nas_config_from_proto(msg: api_pb2.NasConfig, where: str = "nasConfig.") -> NasConfig:
    gc = msg.graph_config
    operations = []
    for i, op in enumerate(msg.operations.operation):
        params = tuple(
            parameter_spec_from_proto(p, f"{where}operations[{i}].parameters[{j}].")
            for j, p in enumerate(op.parameter_specs.parameters)
        )
        operations.append(Operation(operation_type=op.operation_type, parameters=params))
    graph = GraphConfig(num_layers=gc.num_layers, input_sizes=tuple(gc.input_sizes), output_sizes=tuple(gc.output_sizes))
    return NasConfig(graph_config=graph, operations=tuple(operations))


def nas_config_to_proto(config: NasConfig) -> api_pb2.NasConfig:
    gc = config.graph_config
    msg = api_pb2.NasConfig(
        graph_config=api_pb2.GraphConfig(
            num_layers=gc.num_layers, input_sizes=list(gc.input_sizes), output_sizes=list(gc.output_sizes)
        )
    )
    for op in config.operations:
        pb = msg.operations.operation.add(operation_type=op.operation_type)
        if op.parameters:
            pb.parameter_specs.parameters.extend(parameter_spec_to_proto(p) for p in op.parameters)
    return msg


def search_space_from_proto(spec: api_pb2.ExperimentSpec, check: bool = True) -> SearchSpace:
    """The experiment's search space; with `check`, raises SpaceError unless well-formed.

    A spec with a `nas_config` holding a graph config or operations is NAS; otherwise HPO.
    """
    nas = None
    if spec.HasField("nas_config") and (
        spec.nas_config.HasField("graph_config") or len(spec.nas_config.operations.operation)
    ):
        nas = nas_config_from_proto(spec.nas_config)
    params = tuple(
        parameter_spec_from_proto(p, f"parameters[{i}].") for i, p in enumerate(spec.parameter_specs.parameters)
    )
    space = SearchSpace(parameters=params, nas_config=nas)
    if check:
        space.check()
    return space


def search_space_to_proto(space: SearchSpace, spec: api_pb2.ExperimentSpec | None = None) -> api_pb2.ExperimentSpec:
    """Write the space into `spec` (a new ExperimentSpec when None) and return it."""
    spec = spec if spec is not None else api_pb2.ExperimentSpec()
    if space.parameters:
        spec.parameter_specs.parameters.extend(parameter_spec_to_proto(p) for p in space.parameters)
    if space.nas_config is not None:
        spec.nas_config.CopyFrom(nas_config_to_proto(space.nas_config))
    return spec


def objective_from_proto(msg: api_pb2.ObjectiveSpec) -> Objective:
    """The objective; metric strategies are not on the wire, so Katib's defaults apply."""
    otype = _OBJECTIVE_TYPES_BY_NUMBER.get(msg.type)
    if otype is None:
        raise SpaceError("objective.type", api_pb2.ObjectiveType.Name(msg.type)
                         if msg.type in api_pb2.ObjectiveType.values() else msg.type,
                         "must be MINIMIZE or MAXIMIZE")
    if not msg.objective_metric_name:
        raise SpaceError("objective.objectiveMetricName", msg.objective_metric_name, "must be a non-empty metric name")
    if not math.isfinite(msg.goal):
        raise SpaceError("objective.goal", msg.goal, "must be a finite number")
    goal = msg.goal if msg.goal != 0.0 else None
    return Objective(
        type=otype,
        metric_name=msg.objective_metric_name,
        goal=goal,
        additional_metric_names=tuple(msg.additional_metric_names),
    )


def objective_to_proto(objective: Objective) -> api_pb2.ObjectiveSpec:
    return api_pb2.ObjectiveSpec(
        type=_OBJECTIVE_TYPES[objective.type],
        goal=objective.goal if objective.goal is not None else 0.0,
        objective_metric_name=objective.metric_name,
        additional_metric_names=list(objective.additional_metric_names),
    )


def settings_from_proto(settings: Iterable[api_pb2.AlgorithmSetting | api_pb2.EarlyStoppingSetting]) -> dict[str, str]:
    """`algorithm_settings` (or early-stopping settings) as name -> text; later names win."""
    return {s.name: s.value for s in settings}


def settings_to_proto(settings: Mapping[str, str]) -> list[api_pb2.AlgorithmSetting]:
    return [api_pb2.AlgorithmSetting(name=k, value=str(v)) for k, v in settings.items()]


def assignments_from_proto(assignments: Iterable[api_pb2.ParameterAssignment]) -> dict[str, str]:
    return {a.name: a.value for a in assignments}


def assignments_to_proto(assignments: Mapping[str, object]) -> list[api_pb2.ParameterAssignment]:
    """Values that are not text yet are written in the canonical wire form (`format_value`)."""
    return [api_pb2.ParameterAssignment(name=k, value=v if isinstance(v, str) else format_value(v))
            for k, v in assignments.items()]


def condition_from_proto(number: int) -> TrialCondition:
    # An enum number newer than ours is no reason to reject a whole request.
    return _CONDITIONS_BY_NUMBER.get(number, TrialCondition.UNKNOWN)


def condition_to_proto(condition: TrialCondition) -> api_pb2.TrialStatus.TrialConditionType:
    return _CONDITIONS[condition]


def _metric_value(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def trial_from_proto(msg: api_pb2.Trial, objective: Objective) -> TrialRecord:
    """One trial as an algorithm sees it.

    Metric values are parsed to float; text that is not a finite number (Katib sends
    "unavailable" for a missing metric) is dropped. A metric reported more than once is
    reduced by the objective's strategy for it (the last value for other metrics).
    """
    metrics: dict[str, float] = {}
    for metric in msg.status.observation.metrics:
        value = _metric_value(metric.value)
        if value is None:
            continue
        name = metric.name
        previous = metrics.get(name)
        if previous is None or name not in objective.metric_names:
            metrics[name] = value
            continue
        strategy = objective.strategy(name)
        if strategy is MetricStrategy.MIN:
            metrics[name] = min(previous, value)
        elif strategy is MetricStrategy.MAX:
            metrics[name] = max(previous, value)
        else:
            metrics[name] = value
    return TrialRecord(
        name=msg.name,
        assignments=assignments_from_proto(msg.spec.parameter_assignments.assignments),
        condition=condition_from_proto(msg.status.condition),
        metrics=metrics,
        labels=dict(msg.spec.labels),
        # evolution ages its population by it; Katib's controller sends it too
        completion_time=msg.status.completion_time or None,
    )


def trial_to_proto(record: TrialRecord, objective: Objective) -> api_pb2.Trial:
    """The wire form of a trial, as the controller sends it in GetSuggestionsRequest.trials.

    Text-valued metrics (`record.texts`, a genotype) pass through as they are: Katib's
    Metric.value is a string. `trial_from_proto` drops them again for the algorithms."""
    msg = api_pb2.Trial(name=record.name)
    msg.spec.objective.CopyFrom(objective_to_proto(objective))
    msg.spec.parameter_assignments.assignments.extend(assignments_to_proto(record.assignments))
    msg.spec.labels.update(dict(record.labels))
    msg.status.condition = condition_to_proto(record.condition)
    if record.completion_time:
        msg.status.completion_time = record.completion_time
    msg.status.observation.metrics.extend(
        api_pb2.Metric(name=name, value=format_value(float(value))) for name, value in record.metrics.items()
    )
    msg.status.observation.metrics.extend(api_pb2.Metric(name=name, value=text) for name, text in record.texts.items())
    return msg
