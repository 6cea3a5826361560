"""The EarlyStopping gRPC service on real sockets: the suggestion server's own port, a real
DBManager over a real SQLite file, and `kubenas suggestion serve --early-stopping-port`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.dbmanager import DBManagerClient, make_dbmanager_server
from controller.store_sqlite import SQLiteStore
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from suggestion.service import make_server

KUBENAS = os.path.join(os.path.dirname(sys.executable), "kubenas")


@pytest.fixture()
def dbmanager(tmp_path):
    store = SQLiteStore(tmp_path / "kubenas.db")
    server, port = make_dbmanager_server(store, port=0)
    yield f"127.0.0.1:{port}"
    server.stop(None).wait()
    store.close()


@pytest.fixture()
def served():
    """(EarlyStopping stub, names of trials the sink was called with)."""
    marked: list[str] = []
    server, port = make_server("random", set_trial_status=marked.append)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield api_pb2_grpc.EarlyStoppingStub(channel), marked
    channel.close()
    server.stop(None)


def _experiment(settings: dict[str, str], objective: int = api_pb2.MAXIMIZE, algorithm: str = "medianstop"):
    exp = api_pb2.Experiment(name="median")
    exp.spec.objective.type = objective
    exp.spec.objective.objective_metric_name = "acc"
    exp.spec.early_stopping.algorithm_name = algorithm
    exp.spec.early_stopping.algorithm_settings.extend(
        api_pb2.EarlyStoppingSetting(name=k, value=v) for k, v in settings.items())
    return exp


def _trial(name: str, condition: int) -> api_pb2.Trial:
    trial = api_pb2.Trial(name=name)
    trial.status.condition = condition
    return trial


def _report(address: str, logs: dict[str, list[float]]) -> None:
    with DBManagerClient(address) as client:
        for trial, values in logs.items():
            client.report(trial, [("acc", repr(v), f"2024-05-01T12:00:{i:02d}Z") for i, v in enumerate(values)]
                          + [("loss", "9", "2024-05-01T12:00:00Z")])


SUCCEEDED = api_pb2.TrialStatus.TrialConditionType.SUCCEEDED
RUNNING = api_pb2.TrialStatus.TrialConditionType.RUNNING


def test_rules_come_from_the_dbmanager_logs_of_succeeded_trials(served, dbmanager):
    stub, _ = served
    _report(dbmanager, {"a": [0.1, 0.3, 0.99], "b": [0.6, 0.6, 0.6], "c": [0.9, 0.7], "d": [0.0, 0.0]})
    exp = _experiment({"min_trials_required": "3", "start_step": "2"})
    request = api_pb2.GetEarlyStoppingRulesRequest(
        experiment=exp, db_manager_address=dbmanager,
        trials=[_trial("a", SUCCEEDED), _trial("b", SUCCEEDED), _trial("d", RUNNING)])
    assert list(stub.GetEarlyStoppingRules(request, timeout=10).early_stopping_rules) == []  # 2 < 3 succeeded
    request.trials.append(_trial("c", SUCCEEDED))
    (rule,) = stub.GetEarlyStoppingRules(request, timeout=10).early_stopping_rules
    # averages of the first 2 values: a 0.2, b 0.6, c 0.8 -> median 0.6 (Katib's mean: 0.5333)
    assert (rule.name, rule.comparison, rule.start_step) == ("acc", api_pb2.LESS, 2)
    assert float(rule.value) == pytest.approx(0.6)
    request.experiment.spec.objective.type = api_pb2.MINIMIZE
    (rule,) = stub.GetEarlyStoppingRules(request, timeout=10).early_stopping_rules
    assert rule.comparison == api_pb2.GREATER


def test_defaults_are_min_trials_3_start_step_4(served, dbmanager):
    stub, _ = served
    _report(dbmanager, {f"t{i}": [float(i)] * 6 for i in range(3)})
    request = api_pb2.GetEarlyStoppingRulesRequest(experiment=_experiment({}), db_manager_address=dbmanager,
                                                   trials=[_trial(f"t{i}", SUCCEEDED) for i in range(3)])
    (rule,) = stub.GetEarlyStoppingRules(request, timeout=10).early_stopping_rules
    assert (rule.start_step, float(rule.value)) == (4, 1.0)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda r: r.ClearField("experiment"), "experiment"),
    (lambda r: setattr(r, "db_manager_address", ""), "db_manager_address"),
    (lambda r: setattr(r, "db_manager_address", "katib-db-manager"), "db_manager_address"),
    (lambda r: setattr(r, "db_manager_address", "host:99999"), "db_manager_address"),
    (lambda r: r.experiment.spec.early_stopping.ClearField("algorithm_name"), "algorithm_name"),
    (lambda r: r.experiment.spec.early_stopping.algorithm_settings.add(name="start_step", value="0"), "start_step"),
    (lambda r: r.experiment.spec.objective.ClearField("objective_metric_name"), "objective_metric_name"),
])
def test_bad_requests_are_invalid_argument_naming_the_field(served, mutate, field):
    stub, _ = served
    request = api_pb2.GetEarlyStoppingRulesRequest(experiment=_experiment({}), db_manager_address="127.0.0.1:1",
                                                   trials=[_trial("a", SUCCEEDED)])
    mutate(request)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetEarlyStoppingRules(request, timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in info.value.details()


def test_an_unreachable_dbmanager_is_unavailable_with_its_address(served):
    stub, _ = served
    request = api_pb2.GetEarlyStoppingRulesRequest(experiment=_experiment({}), db_manager_address="127.0.0.1:1",
                                                   trials=[_trial("a", SUCCEEDED)])
    with pytest.raises(grpc.RpcError) as info:
        stub.GetEarlyStoppingRules(request, timeout=30)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "127.0.0.1:1" in info.value.details()


def test_validate_settings(served):
    stub, _ = served
    spec = _experiment({"min_trials_required": "2", "start_step": "5"}).spec.early_stopping
    stub.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=spec), timeout=10)
    for settings, algorithm, expected in [
        ({"min_trials_required": "0"}, "medianstop", "min_trials_required: invalid value '0': must be an integer >= 1"),
        ({"start_step": "x"}, "medianstop", "start_step: invalid value 'x'"),
        ({"min_trials": "3"}, "medianstop", ("min_trials: invalid value '3': unknown setting; allowed settings: "
                                             "min_trials_required, start_step")),
        ({}, "hyperband", "early_stopping.algorithm_name: invalid value 'hyperband': must be one of: medianstop"),
    ]:
        spec = _experiment(settings, algorithm=algorithm).spec.early_stopping
        with pytest.raises(grpc.RpcError) as info:
            stub.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=spec),
                                               timeout=10)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert expected in info.value.details()


def test_set_trial_status_goes_to_the_sink(served):
    stub, marked = served
    stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="median-abc"), timeout=10)
    assert marked == ["median-abc"]
    with pytest.raises(grpc.RpcError) as info:
        stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name=""), timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "trial_name" in info.value.details()


def test_set_trial_status_without_a_sink_is_failed_precondition():
    server, port = make_server("random")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as info:
            api_pb2_grpc.EarlyStoppingStub(channel).SetTrialStatus(
                api_pb2.SetTrialStatusRequest(trial_name="t"), timeout=10)
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "marks it EarlyStopped itself" in info.value.details()
    finally:
        server.stop(None)


def test_cli_serves_early_stopping_on_its_own_port_with_health(tmp_path, dbmanager):
    proc = subprocess.Popen([KUBENAS, "suggestion", "serve", "-a", "random", "--host", "127.0.0.1", "--port", "0",
                             "--early-stopping-port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while len(ports) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            found = re.search(r"(early stopping|suggestion server).* listening on 127\.0\.0\.1:(\d+)", line)
            if found:
                ports[found.group(1)] = int(found.group(2))
        assert len(ports) == 2 and ports["early stopping"] != ports["suggestion server"]
        _report(dbmanager, {"a": [0.5]})
        with grpc.insecure_channel(f"127.0.0.1:{ports['early stopping']}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("manager.v1beta1.EarlyStopping", "api.v1.beta1.EarlyStopping", "manager.v1beta1.Suggestion"):
                reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            reply = api_pb2_grpc.EarlyStoppingStub(channel).GetEarlyStoppingRules(
                api_pb2.GetEarlyStoppingRulesRequest(experiment=_experiment({"min_trials_required": "1"}),
                                                     db_manager_address=dbmanager, trials=[_trial("a", SUCCEEDED)]),
                timeout=10)
            assert float(reply.early_stopping_rules[0].value) == 0.5
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_cli_reports_a_taken_early_stopping_port(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        done = subprocess.run([KUBENAS, "suggestion", "serve", "-a", "random", "--host", "127.0.0.1", "--port", "0",
                               "--early-stopping-port", str(taken)],
                              check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"--early-stopping-port {taken} on 127.0.0.1: cannot listen" in done.stderr
    assert "Traceback" not in done.stderr
