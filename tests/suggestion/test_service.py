"""The Suggestion gRPC server: real servers on real sockets (port 0), called through stubs."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.space import SearchSpace
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.random_search import RandomSearch
from suggestion.service import SuggestionServicer, make_server, serve
from tests.suggestion.contract import (
    CONTRACT_SPACES,
    check_hpo_assignments,
    check_macro_assignments,
    param,
)
from tests.suggestion.servers import experiment, request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SMALL_GRID = SearchSpace(parameters=(
    param("units", "int", lo="16", hi="48", step="16"),
    param("optimizer", "categorical", values=("sgd", "adam")),
))


def assignment_dicts(reply: api_pb2.GetSuggestionsReply) -> list[dict[str, str]]:
    return [{a.name: a.value for a in pa.assignments} for pa in reply.parameter_assignments]


def as_trials(points: Sequence[Mapping[str, str]], start: int, condition: TrialCondition) -> list[TrialRecord]:
    metrics = {"accuracy": 0.5} if condition is TrialCondition.SUCCEEDED else {}
    return [TrialRecord(f"t{start + i}", dict(p), condition, metrics) for i, p in enumerate(points)]


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = api_pb2_grpc.SuggestionStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)


class Served(Client):
    def __init__(self, server: grpc.Server, port: int) -> None:
        super().__init__(port)
        self.server = server

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)


@pytest.fixture(scope="module")
def random_server() -> Iterator[Served]:
    server, port = make_server("random")
    server.start()
    served = Served(server, port)
    yield served
    served.close()


@pytest.fixture(scope="module")
def grid_server() -> Iterator[Served]:
    server, port = make_server("grid")
    server.start()
    served = Served(server, port)
    yield served
    served.close()


def rpc_error(call, req) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call(req, timeout=10)
    return info.value


# ---- GetSuggestions ---------------------------------------------------------------------

def test_random_hpo_returns_exactly_n_in_space_and_echoes_algorithm(random_server: Served) -> None:
    exp = experiment(CONTRACT_SPACES["hpo_continuous"], "random", {"random_state": "11"})
    reply = random_server.stub.GetSuggestions(request(exp, 5), timeout=10)
    points = assignment_dicts(reply)
    assert len(points) == 5 and len({json.dumps(p, sort_keys=True) for p in points}) == 5
    for p in points:
        check_hpo_assignments(CONTRACT_SPACES["hpo_continuous"], p)
    assert reply.algorithm == exp.spec.algorithm


def test_random_nas_returns_macro_architectures(random_server: Served) -> None:
    space = CONTRACT_SPACES["nas_macro"]
    reply = random_server.stub.GetSuggestions(request(experiment(space, "random"), 3), timeout=10)
    assert len(reply.parameter_assignments) == 3
    for p in assignment_dicts(reply):
        check_macro_assignments(space, p)


def test_seeded_random_is_repeatable_and_moves_on_with_history(random_server: Served) -> None:
    exp = experiment(CONTRACT_SPACES["hpo_continuous"], "random", {"random_state": "5"})
    first = assignment_dicts(random_server.stub.GetSuggestions(request(exp, 2), timeout=10))
    again = assignment_dicts(random_server.stub.GetSuggestions(request(exp, 2), timeout=10))
    assert first == again
    history = as_trials(first, 0, TrialCondition.SUCCEEDED)
    later = assignment_dicts(random_server.stub.GetSuggestions(request(exp, 2, history), timeout=10))
    assert not set(map(str, later)) & set(map(str, first))


def test_zero_requested_is_an_empty_reply_but_still_validated(random_server: Served) -> None:
    exp = experiment(CONTRACT_SPACES["hpo_grid"], "random")
    assert len(random_server.stub.GetSuggestions(request(exp, 0), timeout=10).parameter_assignments) == 0
    bad = experiment(CONTRACT_SPACES["hpo_grid"], "random", {"random_state": "x"})
    assert rpc_error(random_server.stub.GetSuggestions, request(bad, 0)).code() is INVALID


def test_negative_request_number_names_the_field(random_server: Served) -> None:
    err = rpc_error(random_server.stub.GetSuggestions, request(experiment(SMALL_GRID, "random"), -1))
    assert err.code() is INVALID
    assert "current_request_number" in err.details() and "-1" in err.details()


def test_missing_experiment_names_the_field(random_server: Served) -> None:
    for call, req in ((random_server.stub.GetSuggestions, api_pb2.GetSuggestionsRequest(current_request_number=1)),
                      (random_server.stub.ValidateAlgorithmSettings, api_pb2.ValidateAlgorithmSettingsRequest())):
        err = rpc_error(call, req)
        assert err.code() is INVALID and err.details().startswith("experiment:")


def test_other_algorithm_name_is_refused(random_server: Served) -> None:
    err = rpc_error(random_server.stub.GetSuggestions, request(experiment(SMALL_GRID, "grid"), 1))
    assert err.code() is INVALID
    assert "algorithmName" in err.details() and "'grid'" in err.details() and "'random'" in err.details()


@pytest.mark.parametrize("settings, setting", [
    ({"seed": "1"}, "seed"),
    ({"random_state": "abc"}, "random_state"),
    ({"random_state": "-3"}, "random_state"),
])
def test_bad_settings_are_invalid_argument_on_both_methods(random_server: Served, settings: dict[str, str],
                                                           setting: str) -> None:
    exp = experiment(SMALL_GRID, "random", settings)
    value = next(iter(settings.values()))
    for call, req in ((random_server.stub.ValidateAlgorithmSettings,
                       api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp)),
                      (random_server.stub.GetSuggestions, request(exp, 1))):
        err = rpc_error(call, req)
        assert err.code() is INVALID
        assert err.details().startswith(f"{setting}: invalid value {value!r}"), err.details()
        assert "Traceback" not in err.details()


def test_valid_settings_validate(random_server: Served, grid_server: Served) -> None:
    random_server.stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(
        experiment=experiment(CONTRACT_SPACES["nas_macro"], "random", {"random_state": "3"})), timeout=10)
    grid_server.stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(
        experiment=experiment(SMALL_GRID, "grid", {"random_state": "3"})), timeout=10)


def test_malformed_space_names_its_field(random_server: Served) -> None:
    space = SearchSpace(parameters=(param("lr", "double", lo="0.5", hi="0.1"),))
    err = rpc_error(random_server.stub.GetSuggestions, request(experiment(space, "random"), 1))
    assert err.code() is INVALID
    assert err.details().startswith("parameters[0].feasibleSpace.max: invalid value '0.1'"), err.details()


def test_grid_refuses_double_without_step(grid_server: Served) -> None:
    exp = experiment(CONTRACT_SPACES["hpo_continuous"], "grid")
    err = rpc_error(grid_server.stub.ValidateAlgorithmSettings, api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp))
    assert err.code() is INVALID
    assert err.details().startswith("parameters[0].feasibleSpace.step") and "'lr'" in err.details()


def test_grid_refuses_a_space_too_large_to_enumerate(grid_server: Served) -> None:
    space = SearchSpace(parameters=tuple(param(f"p{i}", "int", lo="1", hi="100") for i in range(4)))
    err = rpc_error(grid_server.stub.GetSuggestions, request(experiment(space, "grid"), 1))
    assert err.code() is INVALID
    assert err.details().startswith("parameters: invalid value '100000000 grid points") and "at most" in err.details()


def test_grid_drains_across_calls_without_repeats_then_reports_what_remains(grid_server: Served) -> None:
    exp = experiment(SMALL_GRID, "grid")
    history: list[TrialRecord] = []
    conditions = [TrialCondition.SUCCEEDED, TrialCondition.FAILED, TrialCondition.RUNNING]
    for round_ in range(2):
        points = assignment_dicts(grid_server.stub.GetSuggestions(request(exp, 2, history), timeout=10))
        assert len(points) == 2
        history += as_trials(points, len(history), conditions[round_ % 3])
    # 4 of 6 used: asking for 3 is refused with what is left, asking for that many works.
    err = rpc_error(grid_server.stub.GetSuggestions, request(exp, 3, history))
    assert err.code() is grpc.StatusCode.OUT_OF_RANGE
    assert dict(err.trailing_metadata())["remaining"] == "2"
    assert "3 assignments requested, 2 remain" in err.details()
    points = assignment_dicts(grid_server.stub.GetSuggestions(request(exp, 2, history), timeout=10))
    history += as_trials(points, len(history), TrialCondition.SUCCEEDED)
    seen = {(t.assignments["units"], t.assignments["optimizer"]) for t in history}
    assert seen == {(u, o) for u in ("16", "32", "48") for o in ("sgd", "adam")}
    err = rpc_error(grid_server.stub.GetSuggestions, request(exp, 1, history))
    assert err.code() is grpc.StatusCode.OUT_OF_RANGE and dict(err.trailing_metadata())["remaining"] == "0"


def test_concurrent_calls_are_all_answered(random_server: Served) -> None:
    exp = experiment(CONTRACT_SPACES["nas_macro"], "random")
    results: list[int] = []

    def call() -> None:
        results.append(len(random_server.stub.GetSuggestions(request(exp, 4), timeout=20).parameter_assignments))

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [4] * 12


# ---- a deliberately broken algorithm (a test double: no real algorithm misbehaves) ----

class _DropsOne(RandomSearch):
    def suggest(self, problem, history, n):  # type: ignore[no-untyped-def]
        return super().suggest(problem, history, n)[:-1]


class _Crashes(RandomSearch):
    def suggest(self, problem, history, n):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("division by zero in the model")


@pytest.mark.parametrize("algorithm, fragment", [
    (_DropsOne, "returned 2 suggestions for 3 requested"),
    (_Crashes, "ZeroDivisionError: division by zero in the model"),
])
def test_algorithm_faults_are_internal_and_the_server_keeps_serving(algorithm: type[RandomSearch],
                                                                    fragment: str) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_SuggestionServicer_to_server(SuggestionServicer(algorithm()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    served = Served(server, port)
    try:
        exp = experiment(SMALL_GRID, "random")
        for _ in range(2):
            err = rpc_error(served.stub.GetSuggestions, request(exp, 3))
            assert err.code() is grpc.StatusCode.INTERNAL and fragment in err.details()
        assert len(served.stub.GetSuggestions(request(exp, 0), timeout=10).parameter_assignments) == 0
    finally:
        served.close()


# ---- health, reflection, binding -----------------------------------------------------------

def test_health_and_reflection_in_process(grid_server: Served) -> None:
    for name in ("manager.v1beta1.Suggestion", "api.v1.beta1.Suggestion", ""):
        status = grid_server.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING, name
    services = set(ProtoReflectionDescriptorDatabase(grid_server.channel).get_services())
    assert {"api.v1.beta1.Suggestion", "grpc.health.v1.Health"} <= services


def test_make_server_refuses_a_busy_port_and_creates_the_state_dir(grid_server: Served, tmp_path: Path) -> None:
    with pytest.raises(OSError, match=f"127.0.0.1:{grid_server.port}"):
        make_server("random", port=grid_server.port)
    server, port = make_server("random", state_dir=tmp_path / "state")
    assert port > 0 and (tmp_path / "state").is_dir()
    server.stop(None)


# ---- the CLI entry point as a subprocess -----------------------------------------------------

KUBENAS = str(Path(sys.executable).parent / "kubenas")


def _read_port(proc: subprocess.Popen[str], deadline: float) -> int:
    assert proc.stderr is not None
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no 'listening on' line; stderr so far: {''.join(seen)}")


def test_cli_serve_answers_then_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen([KUBENAS, "suggestion", "serve", "--algorithm", "random", "--port", "0",
                             "--host", "127.0.0.1"], stderr=subprocess.PIPE, text=True)
    try:
        port = _read_port(proc, time.monotonic() + 60)
        served = Client(port)
        for name in ("manager.v1beta1.Suggestion", "api.v1.beta1.Suggestion"):
            status = served.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING, name
        assert "api.v1.beta1.Suggestion" in ProtoReflectionDescriptorDatabase(served.channel).get_services()
        reply = served.stub.GetSuggestions(request(experiment(SMALL_GRID, "random"), 2), timeout=10)
        assert len(reply.parameter_assignments) == 2
        served.channel.close()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        assert "stopped" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_serve_unknown_algorithm_is_a_usage_error() -> None:
    proc = subprocess.run([KUBENAS, "suggestion", "serve", "--algorithm", "nope", "--port", "0"],
                          check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert "--algorithm" in proc.stderr and "'nope'" in proc.stderr and "random" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_serve_on_a_busy_port_is_a_usage_error(grid_server: Served) -> None:
    proc = subprocess.run([KUBENAS, "suggestion", "serve", "--algorithm", "random", "--host", "127.0.0.1",
                           "--port", str(grid_server.port)],
                          check=False, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert f"--port {grid_server.port}" in proc.stderr and "cannot listen" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_stopping_reports_not_serving_to_watchers_before_closing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="suggestion.service")
    stop = threading.Event()
    runner = threading.Thread(target=serve, args=("grid",), daemon=True,
                              kwargs={"host": "127.0.0.1", "port": 0, "grace": 1.0, "stop": stop})
    runner.start()
    deadline = time.monotonic() + 30
    port = None
    while port is None and time.monotonic() < deadline:
        port = next((int(m.group(1)) for r in caplog.records
                     if (m := re.search(r"listening on 127\.0\.0\.1:(\d+)", r.getMessage()))), None)
        time.sleep(0.02)
    assert port is not None, "serve() never logged its address"
    client = Client(port)
    try:
        watch = client.health.Watch(health_pb2.HealthCheckRequest(service="manager.v1beta1.Suggestion"), timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        stop.set()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        runner.join(timeout=15)
        assert not runner.is_alive()
    finally:
        stop.set()
        client.channel.close()


# --- hostile requests (QA) ----------------------------------------------------------------

@pytest.mark.parametrize("n", [10_001, 10**6, 2**31 - 1])
def test_a_huge_request_number_is_refused_at_once(random_server: Served, n: int) -> None:
    # Before the bound, 2**31-1 kept a worker busy past any deadline and grew without limit.
    start = time.monotonic()
    err = rpc_error(random_server.stub.GetSuggestions, request(experiment(SMALL_GRID, "random"), n))
    assert time.monotonic() - start < 2
    assert err.code() is INVALID
    assert f"current_request_number: invalid value {n}" in err.details() and "10000" in err.details()


def test_the_largest_allowed_request_is_answered(random_server: Served) -> None:
    from kubenas.proto_convert import MAX_SUGGESTIONS_PER_REQUEST

    reply = random_server.stub.GetSuggestions(
        request(experiment(SMALL_GRID, "random"), MAX_SUGGESTIONS_PER_REQUEST), timeout=30)
    assert len(reply.parameter_assignments) == MAX_SUGGESTIONS_PER_REQUEST


def test_a_history_over_grpcs_default_4_mib_is_accepted(random_server: Served) -> None:
    # A long NAS experiment sends every trial each call; 4 MiB is a few thousand of them.
    from kubenas.proto_convert import GRPC_MESSAGE_OPTIONS

    exp = experiment(SMALL_GRID, "random")
    trials = [TrialRecord(f"t{i}", {"units": "16", "optimizer": "x" * 1000}, TrialCondition.FAILED, {})
              for i in range(5000)]
    req = request(exp, 1, trials)
    assert req.ByteSize() > 4 * 1024 * 1024
    with grpc.insecure_channel(f"127.0.0.1:{random_server.port}", options=GRPC_MESSAGE_OPTIONS) as channel:
        reply = api_pb2_grpc.SuggestionStub(channel).GetSuggestions(req, timeout=30)
    assert len(reply.parameter_assignments) == 1


def test_garbage_metrics_duplicate_names_and_unknown_conditions_still_get_a_reply(random_server: Served) -> None:
    exp = experiment(SMALL_GRID, "random", {"random_state": "3"})
    trials = []
    for i, (value, condition) in enumerate([("nan", 2), ("garbage", 2), ("1e999", 55), ("\x00\xff", 4), ("", 2)]):
        trial = api_pb2.Trial(name="same-name" if i < 2 else f"t{i}")
        trial.spec.parameter_assignments.assignments.add(name="units", value="16")
        trial.spec.parameter_assignments.assignments.add(name="optimizer", value="sgd")
        trial.status.condition = condition  # type: ignore[assignment]
        trial.status.observation.metrics.add(name="accuracy", value=value)
        trials.append(trial)
    req = api_pb2.GetSuggestionsRequest(experiment=exp, trials=trials, current_request_number=2)
    reply = random_server.stub.GetSuggestions(req, timeout=10)
    assert len(reply.parameter_assignments) == 2


def test_unknown_enum_numbers_name_their_field(random_server: Served) -> None:
    exp = experiment(SMALL_GRID, "random")
    exp.spec.parameter_specs.parameters[0].feasible_space.distribution = 77  # type: ignore[assignment]
    err = rpc_error(random_server.stub.GetSuggestions, api_pb2.GetSuggestionsRequest(experiment=exp, current_request_number=1))
    assert err.code() is INVALID and "parameters[0].feasibleSpace.distribution: invalid value 77" in err.details()
    exp = experiment(SMALL_GRID, "random")
    exp.spec.objective.type = 42  # type: ignore[assignment]
    err = rpc_error(random_server.stub.GetSuggestions, api_pb2.GetSuggestionsRequest(experiment=exp, current_request_number=1))
    assert err.code() is INVALID and "objective.type: invalid value 42" in err.details()


def test_a_nas_space_too_large_to_build_is_refused_at_once(random_server: Served) -> None:
    from kubenas.space import (
        FeasibleSpace,
        GraphConfig,
        NasConfig,
        Operation,
        ParameterSpec,
        ParameterType,
    )

    for nas, field in [
        (NasConfig(GraphConfig(100_000, (8, 8, 1), (10,)), (Operation("pooling"),)), "nasConfig.graphConfig.numLayers"),
        (NasConfig(GraphConfig(3, (8, 8, 1), (10,)), (Operation("convolution", (ParameterSpec(
            "filter_size", ParameterType.INT, FeasibleSpace(min="1", max="100000000")),)),)), "nasConfig.operations[0]"),
    ]:
        start = time.monotonic()
        err = rpc_error(random_server.stub.GetSuggestions, request(experiment(SearchSpace(nas_config=nas), "random"), 1))
        assert time.monotonic() - start < 2
        assert err.code() is INVALID and err.details().startswith(field), err.details()
