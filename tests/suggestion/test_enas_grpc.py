"""ENAS through real gRPC: Katib's unit scenario and example spaces, validation errors,
several experiments at once, and a SIGKILLed server resuming exactly from --state-dir."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.experiment import load_experiment_file
from kubenas.genotype import Genotype
from kubenas.proto_convert import objective_to_proto, search_space_to_proto, trial_to_proto
from kubenas.space import SearchSpace
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.state import state_file_name
from tests.suggestion.servers import suggestion_stub
from tests.suggestion.test_enas_spaces import (
    ACCURACY,
    KATIB_DATA,
    katib_space,
    mixed_types_space,
    unit_scenario_space,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
FAST = {"controller_train_steps": "5", "controller_hidden_size": "32"}
KUBENAS = str(Path(sys.executable).parent / "kubenas")


def experiment(space: SearchSpace, settings: dict[str, str] | None = None, name: str = "enas-exp") -> api_pb2.Experiment:
    spec = search_space_to_proto(space)
    spec.objective.CopyFrom(objective_to_proto(ACCURACY))
    spec.algorithm.algorithm_name = "enas"
    for key, value in (settings or {}).items():
        spec.algorithm.algorithm_settings.add(name=key, value=value)
    return api_pb2.Experiment(name=name, spec=spec)


def request(exp: api_pb2.Experiment, n: int, trials: Sequence[TrialRecord] = ()) -> api_pb2.GetSuggestionsRequest:
    return api_pb2.GetSuggestionsRequest(experiment=exp, current_request_number=n,
                                         total_request_number=len(trials) + n,
                                         trials=[trial_to_proto(t, ACCURACY) for t in trials])


def assignments(reply: api_pb2.GetSuggestionsReply) -> list[dict[str, str]]:
    return [{a.name: a.value for a in pa.assignments} for pa in reply.parameter_assignments]


def check_macro(space: SearchSpace, got: dict[str, str]) -> None:
    nas = space.nas_config
    assert nas is not None and set(got) == {"architecture", "nn_config"}
    rows = json.loads(got["architecture"])
    ops = nas.expanded()
    assert len(rows) == nas.graph_config.num_layers
    assert [len(r) for r in rows] == list(range(1, len(rows) + 1))
    assert all(0 <= r[0] < len(ops) and set(r[1:]) <= {0, 1} for r in rows)
    config = json.loads(got["nn_config"])
    assert config["num_layers"] == nas.graph_config.num_layers
    assert {int(k) for k in config["embedding"]} == {r[0] for r in rows}
    for key, entry in config["embedding"].items():
        assert entry == ops[int(key)].to_json()


@pytest.fixture(scope="module")
def stub() -> Iterator[api_pb2_grpc.SuggestionStub]:
    with suggestion_stub("enas") as stub:
        yield stub


def test_katibs_unit_scenario(stub: api_pb2_grpc.SuggestionStub) -> None:
    # Katib's test_enas_service.py, message for message: two succeeded trials, request 2.
    def trial(name: str, arch: str, accuracy: str) -> api_pb2.Trial:
        return api_pb2.Trial(
            name=name,
            spec=api_pb2.TrialSpec(
                objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name="Validation-Accuracy",
                                                goal=0.99),
                parameter_assignments=api_pb2.TrialSpec.ParameterAssignments(assignments=[
                    api_pb2.ParameterAssignment(name="architecture", value=arch),
                    api_pb2.ParameterAssignment(name="nn_config", value="{'num_layers': 4}"),
                ])),
            status=api_pb2.TrialStatus(
                observation=api_pb2.Observation(metrics=[api_pb2.Metric(name="Validation-Accuracy", value=accuracy)]),
                condition=api_pb2.TrialStatus.TrialConditionType.SUCCEEDED))

    def cat(name: str, *values: str) -> api_pb2.ParameterSpec:
        return api_pb2.ParameterSpec(name=name, parameter_type=api_pb2.CATEGORICAL,
                                     feasible_space=api_pb2.FeasibleSpace(list=list(values)))

    exp = api_pb2.Experiment(name="enas-experiment", spec=api_pb2.ExperimentSpec(
        algorithm=api_pb2.AlgorithmSpec(algorithm_name="enas"),
        objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, goal=0.9, objective_metric_name="Validation-Accuracy"),
        parallel_trial_count=2, max_trial_count=10,
        nas_config=api_pb2.NasConfig(
            graph_config=api_pb2.GraphConfig(num_layers=4, input_sizes=[32, 32, 8], output_sizes=[10]),
            operations=api_pb2.NasConfig.Operations(operation=[
                api_pb2.Operation(operation_type="convolution", parameter_specs=api_pb2.Operation.ParameterSpecs(
                    parameters=[cat("filter_size", "5"), cat("num_filter", "128"), cat("stride", "1", "2")])),
                api_pb2.Operation(operation_type="reduction", parameter_specs=api_pb2.Operation.ParameterSpecs(
                    parameters=[cat("reduction_type", "max_pooling"), api_pb2.ParameterSpec(
                        name="pool_size", parameter_type=api_pb2.INT,
                        feasible_space=api_pb2.FeasibleSpace(min="2", max="3", step="1"))])),
            ]))))
    trials = [trial("first-trial", "[[3], [0, 1], [0, 0, 1], [2, 1, 0, 0]]", "0.88"),
              trial("second-trial", "[[1], [0, 1], [2, 1, 1], [2, 1, 1, 0]]", "0.84")]
    stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=30)
    reply = stub.GetSuggestions(api_pb2.GetSuggestionsRequest(experiment=exp, trials=trials,
                                                              current_request_number=2), timeout=60)
    got = assignments(reply)
    assert len(got) == 2
    for a in got:
        check_macro(unit_scenario_space(), a)


@pytest.mark.parametrize("name", ["enas-gpu", "enas-cpu"])
def test_katib_example_spaces(stub: api_pb2_grpc.SuggestionStub, name: str) -> None:
    exp = load_experiment_file(KATIB_DATA / f"{name}.yaml").to_proto()
    exp.spec.algorithm.algorithm_settings.add(name="controller_train_steps", value="5")
    space = katib_space(name)
    stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=30)
    first = assignments(stub.GetSuggestions(api_pb2.GetSuggestionsRequest(experiment=exp, current_request_number=3),
                                            timeout=60))
    assert len(first) == 3
    for a in first:
        check_macro(space, a)
    conditions = [TrialCondition.SUCCEEDED, TrialCondition.FAILED, TrialCondition.METRICS_UNAVAILABLE]
    history = [TrialRecord(f"t{i}", a, c, {"Validation-Accuracy": 0.5} if c is TrialCondition.SUCCEEDED else {})
               for i, (a, c) in enumerate(zip(first, conditions))]
    reply = stub.GetSuggestions(api_pb2.GetSuggestionsRequest(
        experiment=exp, current_request_number=3, trials=[trial_to_proto(t, ACCURACY) for t in history]), timeout=60)
    for a in assignments(reply):
        check_macro(space, a)


def test_double_discrete_int_categorical_and_parameterless_ops(stub: api_pb2_grpc.SuggestionStub) -> None:
    space = mixed_types_space()
    exp = experiment(space, FAST, name="mixed")
    got = assignments(stub.GetSuggestions(request(exp, 4), timeout=60))
    assert len(got) == 4
    for a in got:
        check_macro(space, a)


def test_micro_mode_over_the_wire(stub: api_pb2_grpc.SuggestionStub) -> None:
    exp = experiment(katib_space("enas-gpu"), {**FAST, "search_mode": "micro", "num_nodes": "3"}, name="micro")
    got = assignments(stub.GetSuggestions(request(exp, 2), timeout=60))
    assert len(got) == 2
    for a in got:
        assert Genotype.from_json(a["architecture"]).num_nodes == 3
        assert json.loads(a["nn_config"])["search_mode"] == "micro"


@pytest.mark.parametrize(("settings", "space", "expected"), [
    ({"controller_temperature": "-1"}, unit_scenario_space(), ["controller_temperature", "'-1'", "> 0"]),
    ({"controller_skip_target": "1.0"}, unit_scenario_space(), ["controller_skip_target", "'1.0'", "(0, 1)"]),
    ({"controller_hidden_size": "big"}, unit_scenario_space(), ["controller_hidden_size", "'big'", "[1, 1024]"]),
    ({"controller_learning_rte": "0.1"}, unit_scenario_space(), ["controller_learning_rte", "allowed settings"]),
    ({}, unit_scenario_space(num_layers=0), ["nasConfig.graphConfig.numLayers", "0"]),
])
def test_invalid_settings_and_spaces_are_invalid_argument(stub: api_pb2_grpc.SuggestionStub, settings: dict[str, str],
                                                          space: SearchSpace, expected: list[str]) -> None:
    exp = experiment(space, settings)
    for call in (lambda: stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp),
                                                        timeout=30),
                 lambda: stub.GetSuggestions(request(exp, 1), timeout=30)):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() is INVALID
        for text in expected:
            assert text in info.value.details(), info.value.details()


def test_missing_graph_sizes_and_parameters_are_invalid_argument(stub: api_pb2_grpc.SuggestionStub) -> None:
    exp = experiment(unit_scenario_space())
    del exp.spec.nas_config.graph_config.input_sizes[:]
    with pytest.raises(grpc.RpcError) as info:
        stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=30)
    assert info.value.code() is INVALID and "nasConfig.graphConfig.inputSizes" in info.value.details()
    exp = experiment(unit_scenario_space())
    del exp.spec.nas_config.operations.operation[0].parameter_specs.parameters[:]
    with pytest.raises(grpc.RpcError) as info:
        stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=30)
    assert info.value.code() is INVALID and "nasConfig.operations[0].parameters" in info.value.details()
    assert "filter_size" in info.value.details()


def _rounds(stub: api_pb2_grpc.SuggestionStub, exp: api_pb2.Experiment, count: int) -> list[list[dict[str, str]]]:
    history: list[TrialRecord] = []
    out = []
    for r in range(count):
        got = assignments(stub.GetSuggestions(request(exp, 2, history), timeout=60))
        out.append(got)
        history += [TrialRecord(f"{exp.name}-{r}-{i}", a, TrialCondition.SUCCEEDED,
                                {"Validation-Accuracy": 0.1 * len(a["nn_config"]) % 1})
                    for i, a in enumerate(got)]
    return out


def test_several_experiments_at_once_match_their_solo_runs(stub: api_pb2_grpc.SuggestionStub) -> None:
    exps = [experiment(unit_scenario_space(), {**FAST, "random_state": str(i)}, name=f"par-{i}") for i in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(lambda e: _rounds(stub, e, 3), exps))
    with suggestion_stub("enas") as solo_stub:
        alone = [_rounds(solo_stub, e, 3) for e in exps]
    assert together == alone
    assert together[0] != together[1]


# ---- the real server process, killed and restarted -------------------------------------------

class ServerProcess:
    """`kubenas suggestion serve --algorithm enas` as a subprocess on a free port."""

    def __init__(self, state_dir: Path) -> None:
        self.proc = subprocess.Popen([KUBENAS, "suggestion", "serve", "--algorithm", "enas", "--port", "0",
                                      "--host", "127.0.0.1", "--state-dir", str(state_dir)],
                                     stderr=subprocess.PIPE, text=True)
        self.port = self._read_port(time.monotonic() + 60)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = api_pb2_grpc.SuggestionStub(self.channel)
        health = health_pb2_grpc.HealthStub(self.channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="manager.v1beta1.Suggestion"), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING

    def _read_port(self, deadline: float) -> int:
        assert self.proc.stderr is not None
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if match:
                return int(match.group(1))
        self.proc.kill()
        raise AssertionError(f"no 'listening on' line; stderr: {''.join(seen)}")

    def kill(self) -> None:
        self.channel.close()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.mark.slow
def test_sigkill_and_restart_gives_the_uninterrupted_suggestions(tmp_path: Path) -> None:
    exp = experiment(unit_scenario_space(), {**FAST, "random_state": "5"}, name="resume")
    plain = ServerProcess(tmp_path / "plain")
    try:
        expected = _rounds(plain.stub, exp, 4)
    finally:
        plain.kill()
    requests = []
    history: list[TrialRecord] = []
    for r, got in enumerate(expected):
        requests.append(request(exp, 2, history))
        history += [TrialRecord(f"resume-{r}-{i}", a, TrialCondition.SUCCEEDED,
                                {"Validation-Accuracy": 0.1 * len(a["nn_config"]) % 1}) for i, a in enumerate(got)]
    state = tmp_path / "killed"
    first = ServerProcess(state)
    try:
        before = [assignments(first.stub.GetSuggestions(req, timeout=60)) for req in requests[:2]]
    finally:
        first.kill()  # SIGKILL: no shutdown hook runs
    assert (state / state_file_name("enas-resume")).is_file()
    second = ServerProcess(state)
    try:
        after = [assignments(second.stub.GetSuggestions(req, timeout=60)) for req in requests[2:]]
    finally:
        second.kill()
    assert before + after == expected
