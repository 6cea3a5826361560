"""search_mode end to end: `kubenas validate` (a real subprocess) and a real gRPC suggestion
server accept the canonical NB201 Experiment and name a bad search_mode clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from kubenas.api.v1beta1 import api_pb2
from kubenas.experiment import load_experiment_text
from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from tests.suggestion.servers import suggestion_stub

ROOT = Path(__file__).resolve().parents[2]

NB201_EXPERIMENT = """\
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  name: nb201-search
spec:
  objective: {type: maximize, objectiveMetricName: Validation-Accuracy}
  algorithm:
    algorithmName: ALGORITHM
    algorithmSettings:
      - {name: search_mode, value: "MODE"}
  maxTrialCount: 4
  parallelTrialCount: 2
  nasConfig:
    graphConfig: {numLayers: 5, inputSizes: [32, 32, 3], outputSizes: [10]}
    operations:
      - operationType: none
      - operationType: skip_connect
      - operationType: nor_conv
        parameters:
          - {name: filter_size, parameterType: categorical, feasibleSpace: {list: ["1", "3"]}}
      - operationType: avg_pool
        parameters:
          - {name: pool_size, parameterType: categorical, feasibleSpace: {list: ["3"]}}
  trialTemplate:
    primaryContainerName: training-container
    trialParameters:
      - {name: architecture, reference: architecture}
      - {name: nnConfig, reference: nn_config}
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            containers:
              - name: training-container
                image: python:3.12
                command: [python3, -c, "print('Validation-Accuracy=0.5')",
                          "${trialParameters.architecture}", "${trialParameters.nnConfig}"]
            restartPolicy: Never
"""


def experiment_text(algorithm: str, mode: str) -> str:
    return NB201_EXPERIMENT.replace("ALGORITHM", algorithm).replace("MODE", mode)


def kubenas_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubenas", "validate", str(path)],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("algorithm", ["random", "grid", "enas"])
def test_kubenas_validate_accepts_the_nb201_experiment(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "nb201.yaml"
    path.write_text(experiment_text(algorithm, "nb201"))
    proc = kubenas_validate(path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ") and algorithm in proc.stdout


def test_kubenas_validate_names_a_bad_search_mode(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(experiment_text("random", "nb-201"))
    proc = kubenas_validate(path)
    assert proc.returncode == 2
    assert "spec.algorithm.algorithmSettings[search_mode]: 'nb-201'" in proc.stderr
    assert "one of macro, micro, nb201" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_kubenas_validate_names_an_unusable_nb201_space(tmp_path: Path) -> None:
    path = tmp_path / "no-sizes.yaml"
    path.write_text(experiment_text("random", "nb201").replace("outputSizes: [10]", "outputSizes: []"))
    proc = kubenas_validate(path)
    assert proc.returncode == 2
    assert "nasConfig.graphConfig.outputSizes" in proc.stderr and "nb201" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("algorithm", ["random", "enas"])
def test_grpc_validates_and_suggests_nb201_cells(algorithm: str) -> None:
    exp = load_experiment_text(experiment_text(algorithm, "nb201")).to_proto()
    with suggestion_stub(algorithm) as stub:
        stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=30)
        reply = stub.GetSuggestions(
            api_pb2.GetSuggestionsRequest(experiment=exp, current_request_number=3, total_request_number=3), timeout=60
        )
    assert len(reply.parameter_assignments) == 3
    for pa in reply.parameter_assignments:
        values = {a.name: a.value for a in pa.assignments}
        cell = Cell201.from_string(values["architecture"])
        assert set(cell.ops) <= set(NB201_PRIMITIVES)
        assert '"search_mode": "nb201"' in values["nn_config"]


def test_grpc_refuses_a_bad_search_mode_with_invalid_argument() -> None:
    exp = load_experiment_text(experiment_text("random", "cells")).to_proto()
    with suggestion_stub("random") as stub, pytest.raises(grpc.RpcError) as info:
        stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=30)
    err = info.value
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert err.details().startswith("search_mode: invalid value 'cells'")  # type: ignore[attr-defined]
    assert "nb201" in err.details()  # type: ignore[attr-defined]
