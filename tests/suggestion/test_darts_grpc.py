"""Katib's darts-gpu and darts-cpu experiments, verbatim, through a real darts server (port 0).

Katib's own service answers the first GetSuggestions and crashes on the second (its
assignments live in locals set only on the first call); ours answers every call alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.experiment import load_experiment_text
from tests.suggestion.servers import suggestion_stub

_HEAD = """\
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  namespace: kubeflow
  name: {name}
spec:
  parallelTrialCount: 1
  maxTrialCount: 1
  maxFailedTrialCount: 1
  objective:
    type: maximize
    objectiveMetricName: Best-Genotype
  metricsCollectorSpec:
    collector:
      kind: StdOut
    source:
      filter:
        metricsFormat:
          - "([\\\\w-]+)=(Genotype.*)"
  algorithm:
    algorithmName: darts
    algorithmSettings:
{settings}
  nasConfig:
    graphConfig:
      numLayers: {layers}
    operations:
{operations}
  trialTemplate:
    primaryContainerName: training-container
    trialParameters:
      - name: algorithmSettings
        description: Algorithm settings of DARTS Experiment
        reference: algorithm-settings
      - name: searchSpace
        description: Search Space of DARTS Experiment
        reference: search-space
      - name: numberLayers
        description: Number of Neural Network layers
        reference: num-layers
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            containers:
              - name: training-container
                image: docker.io/kubeflowkatib/darts-cnn-cifar10-gpu:v0.15.0
                command:
                  - python3
                  - run_trial.py
                  - --algorithm-settings="${{trialParameters.algorithmSettings}}"
                  - --search-space="${{trialParameters.searchSpace}}"
                  - --num-layers="${{trialParameters.numberLayers}}"
            restartPolicy: Never
"""


def _op(kind: str, *sizes: str) -> str:
    lines = f"      - operationType: {kind}\n"
    if sizes:
        lines += ("        parameters:\n          - name: filter_size\n            parameterType: categorical\n"
                  "            feasibleSpace:\n              list:\n")
        lines += "".join(f'                - "{s}"\n' for s in sizes)
    return lines.rstrip("\n")


def _setting(name: str, value: str) -> str:
    return f'      - name: {name}\n        value: "{value}"'


DARTS_GPU = _HEAD.format(
    name="darts-gpu", layers=3, settings=_setting("num_epochs", "3"),
    operations="\n".join([_op("separable_convolution", "3"), _op("dilated_convolution", "3", "5"),
                          _op("avg_pooling", "3"), _op("max_pooling", "3"), _op("skip_connection")]))
DARTS_CPU = _HEAD.format(
    name="darts-cpu", layers=1,
    settings="\n".join(_setting(n, v) for n, v in (("num_epochs", "1"), ("num_nodes", "1"),
                                                    ("init_channels", "1"), ("stem_multiplier", "1"))),
    operations=_op("max_pooling", "3"))


@pytest.fixture(scope="module")
def stub() -> Iterator[api_pb2_grpc.SuggestionStub]:
    with suggestion_stub("darts") as stub:
        yield stub


@pytest.mark.parametrize(("yaml_text", "space", "layers"), [
    (DARTS_GPU, ["separable_convolution_3x3", "dilated_convolution_3x3", "dilated_convolution_5x5",
                 "avg_pooling_3x3", "max_pooling_3x3", "skip_connection"], "3"),
    (DARTS_CPU, ["max_pooling_3x3"], "1"),
])
def test_katib_examples_validate_and_answer_every_call(stub: api_pb2_grpc.SuggestionStub, yaml_text: str,
                                                       space: list[str], layers: str) -> None:
    experiment = load_experiment_text(yaml_text).to_proto()
    stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment))
    replies = [stub.GetSuggestions(api_pb2.GetSuggestionsRequest(experiment=experiment, current_request_number=n,
                                                                 total_request_number=n))
               for n in (1, 1, 2)]
    assert [len(r.parameter_assignments) for r in replies] == [1, 1, 2]
    first = {a.name: a.value for a in replies[0].parameter_assignments[0].assignments}
    for reply in replies:
        for pa in reply.parameter_assignments:
            assert {a.name: a.value for a in pa.assignments} == first
    assert json.loads(first["search-space"]) == space
    assert first["num-layers"] == layers
    settings = json.loads(first["algorithm-settings"])
    assert settings["num_epochs"] == int(experiment.spec.algorithm.algorithm_settings[0].value)
    assert settings["w_lr"] == 0.025 and settings["order"] == "second"


def test_bad_setting_is_invalid_argument_naming_it(stub: api_pb2_grpc.SuggestionStub) -> None:
    experiment = load_experiment_text(DARTS_GPU).to_proto()
    del experiment.spec.algorithm.algorithm_settings[:]
    experiment.spec.algorithm.algorithm_settings.add(name="w_lr", value="-1")
    with pytest.raises(grpc.RpcError) as info:
        stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "w_lr" in info.value.details() and "-1" in info.value.details() and ">= 0" in info.value.details()
