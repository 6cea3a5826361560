"""One search-space family: the classes an Experiment's YAML is read into are the ones the
algorithms receive, under both their YAML and their Python names."""

from __future__ import annotations

import pickle

import pytest
from pydantic import ValidationError

from kubenas import space
from kubenas.experiment import load_experiment_dict
from kubenas.space import Distribution, FeasibleSpace, GraphConfig, NasConfig, Operation, ParameterSpec, ParameterType


def _experiment(spec: dict) -> dict:
    base = {
        "objective": {"type": "maximize", "objectiveMetricName": "acc"},
        "algorithm": {"algorithmName": "random"},
        "trialTemplate": {"trialParameters": [], "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {
            "template": {"spec": {"containers": [{"name": "training-container", "image": "x"}]}}}}},
    }
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "e"}, "spec": {**base, **spec}}


def test_the_yaml_model_is_the_domain_object() -> None:
    exp = load_experiment_dict(_experiment({"parameters": [
        {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}},
        {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"], "distribution": "uniform"}},
    ]}))
    written, searched = exp.spec.parameters, exp.search_space().parameters
    assert all(type(p) is space.ParameterSpec for p in (*written, *searched))
    assert written[0] is searched[0]  # nothing to normalise: the very object
    # Katib's `uniform` on a list type is kept as written and dropped for the search.
    assert written[1].feasible.distribution is Distribution.UNIFORM
    assert searched[1].feasible.distribution is None
    assert exp.to_dict()["spec"]["parameters"][1]["feasibleSpace"]["distribution"] == "uniform"


def test_yaml_and_python_names_build_the_same_object() -> None:
    by_yaml = ParameterSpec.model_validate({"name": "k", "parameterType": "int", "feasibleSpace": {"min": 1, "max": "3"}})
    by_python = ParameterSpec(name="k", type=ParameterType.INT, feasible=FeasibleSpace(min="1", max="3"))
    assert by_yaml == by_python == ParameterSpec("k", ParameterType.INT, FeasibleSpace("1", "3"))
    assert hash(by_yaml) == hash(by_python) and pickle.loads(pickle.dumps(by_yaml)) == by_yaml
    assert by_python.model_dump(by_alias=True, exclude_none=True) == {
        "name": "k", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3", "list": ()}}
    assert by_python.grid_values() == [1, 2, 3]


def test_positional_arguments_fill_fields_in_order_and_no_more() -> None:
    assert GraphConfig(8, (32, 32, 3), (10,)) == GraphConfig(num_layers=8, input_sizes=(32, 32, 3), output_sizes=(10,))
    with pytest.raises(TypeError, match="at most 3 positional"):
        GraphConfig(8, (1,), (1,), (1,))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="two values for 'num_layers'"):
        GraphConfig(8, num_layers=9)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        GraphConfig(True, (1,), (1,))  # a bool is no layer count  # type: ignore[arg-type]


def test_frozen_and_closed() -> None:
    op = Operation("conv", (ParameterSpec("k", ParameterType.CATEGORICAL, FeasibleSpace(list=("3",))),))
    with pytest.raises(ValidationError):
        op.operation_type = "pool"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="operationTyp"):
        Operation.model_validate({"operationTyp": "conv"})


def test_nas_config_normalised_only_where_katib_uniform_is_meaningless() -> None:
    listed = ParameterSpec("k", ParameterType.CATEGORICAL, FeasibleSpace(list=("3", "5"), distribution=Distribution.UNIFORM))
    ranged = ParameterSpec("r", ParameterType.INT, FeasibleSpace("1", "4", step="1", distribution=Distribution.UNIFORM))
    config = NasConfig(GraphConfig(2, (8,), (10,)), (Operation("conv", (listed, ranged)),))
    params = config.normalized().operations[0].parameters
    assert params[0].feasible.distribution is None and params[1].feasible.distribution is Distribution.UNIFORM
    config.normalized().check()
    plain = NasConfig(GraphConfig(2, (8,), (10,)), (Operation("none"),))
    assert plain.normalized() is plain


def _int_op(kind: str, high: int) -> dict:
    return {"operationType": kind, "parameters": [
        {"name": "units", "parameterType": "int", "feasibleSpace": {"min": "1", "max": str(high)}}]}


def test_spec_rules_and_services_apply_the_same_space_checks() -> None:
    """One place per check: `kubenas validate` reports what a suggestion service would refuse."""
    from kubenas.experiment import SpecError
    from kubenas.proto_convert import search_space_from_proto, search_space_to_proto

    nas = {"graphConfig": {"numLayers": 2, "inputSizes": [8], "outputSizes": [10]},
           "operations": [_int_op("dense", 6000), _int_op("wide", 6000)]}  # 12,000 once expanded
    with pytest.raises(SpecError) as info:
        load_experiment_dict(_experiment({"nasConfig": nas}))
    assert [(e.path, e.value) for e in info.value.errors] == [("spec.nasConfig.operations", "12000 operations once expanded")]
    wire = search_space_to_proto(space.SearchSpace(nas_config=NasConfig.model_validate(nas)))
    with pytest.raises(space.SpaceError) as refused:
        search_space_from_proto(wire)  # what a suggestion service does with a request
    assert (refused.value.field, refused.value.allowed) == ("nasConfig.operations", info.value.errors[0].allowed)

    twice = {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "0", "max": "1"}}
    with pytest.raises(SpecError) as info:
        load_experiment_dict(_experiment({"parameters": [twice, twice]}))
    with pytest.raises(space.SpaceError) as direct:
        space.SearchSpace((ParameterSpec.model_validate(twice),) * 2).check()
    assert info.value.errors[0].allowed == direct.value.allowed and info.value.paths == [f"spec.{direct.value.field}"]


def test_one_bad_operation_does_not_hide_the_others() -> None:
    from kubenas.experiment import SpecError

    bad = {"operationType": "conv", "parameters": [
        {"name": "k", "parameterType": "int", "feasibleSpace": {"min": "5", "max": "3"}}]}
    nas = {"graphConfig": {"numLayers": 0}, "operations": [bad, _int_op("wide", 20_000), {"operationType": ""}]}
    with pytest.raises(SpecError) as info:
        load_experiment_dict(_experiment({"nasConfig": nas}))
    assert info.value.paths == ["spec.nasConfig.graphConfig.numLayers", "spec.nasConfig.operations[0].parameters[0].feasibleSpace.max",
                                "spec.nasConfig.operations[2].operationType", "spec.nasConfig.operations[1]"]
    with pytest.raises(space.SpaceError) as first:
        NasConfig.model_validate(nas).check()
    assert first.value.field == "nasConfig.graphConfig.numLayers"
