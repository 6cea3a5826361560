"""The DBManager gRPC service on a real socket over a real SQLite file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from controller.dbmanager import DBManagerClient, make_dbmanager_server
from controller.store import MetricLog
from controller.store_sqlite import SQLiteStore
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc


@pytest.fixture()
def served(tmp_path):
    store = SQLiteStore(tmp_path / "kubenas.db")
    server, port = make_dbmanager_server(store, port=0)
    yield store, f"127.0.0.1:{port}"
    server.stop(None).wait()
    store.close()


def test_report_get_delete_round_trip_with_time_filters(served):
    store, address = served
    with DBManagerClient(address) as client:
        client.report("trial-1", [
            ("Validation-Accuracy", "0.50", "2024-05-01T12:00:00Z"),
            ("loss", "1.2", "2024-05-01T12:00:00Z"),
            ("Validation-Accuracy", "0.75", "2024-05-01T12:00:10.5Z"),
            ("Validation-Accuracy", "0.80", "2024-05-01T12:00:20Z"),
        ])
        client.report("trial-2", [("loss", "3", "2024-05-01T12:00:00Z")])
        assert len(client.get("trial-1")) == 4
        assert [m.value for m in client.get("trial-1", "Validation-Accuracy")] == ["0.50", "0.75", "0.80"]
        window = client.get("trial-1", "Validation-Accuracy",
                            start_time="2024-05-01T12:00:10.5Z", end_time="2024-05-01T14:00:20+02:00")
        assert window == [MetricLog("Validation-Accuracy", "0.75", "2024-05-01T12:00:10.5Z"),
                          MetricLog("Validation-Accuracy", "0.80", "2024-05-01T12:00:20Z")]
        client.delete("trial-1")
        assert client.get("trial-1") == []
        assert len(client.get("trial-2")) == 1
    assert store.get("trial-2")[0].value == "3"  # it really went to the file


def test_raw_wire_messages_match_katib(served):
    _, address = served
    with grpc.insecure_channel(address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name="t", observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp="2024-05-01T12:00:00Z",
                                  metric=api_pb2.Metric(name="loss", value="unavailable"))])))
        reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="t", metric_name=""))
        (log,) = reply.observation_log.metric_logs
        assert (log.time_stamp, log.metric.name, log.metric.value) == (
            "2024-05-01T12:00:00Z", "loss", "unavailable")


@pytest.mark.parametrize("call, request_, field", [
    ("ReportObservationLog", api_pb2.ReportObservationLogRequest(trial_name=""), "trial_name"),
    ("ReportObservationLog", api_pb2.ReportObservationLogRequest(
        trial_name="t", observation_log=api_pb2.ObservationLog(metric_logs=[
            api_pb2.MetricLog(time_stamp="", metric=api_pb2.Metric(name="ok", value="1")),
            api_pb2.MetricLog(time_stamp="", metric=api_pb2.Metric(name="", value="1"))])),
     "observation_log.metric_logs[1].metric.name"),
    ("ReportObservationLog", api_pb2.ReportObservationLogRequest(
        trial_name="t", observation_log=api_pb2.ObservationLog(metric_logs=[
            api_pb2.MetricLog(time_stamp="12:00", metric=api_pb2.Metric(name="m", value="1"))])),
     "observation_log.metric_logs[0].time_stamp"),
    ("GetObservationLog", api_pb2.GetObservationLogRequest(trial_name=""), "trial_name"),
    ("GetObservationLog", api_pb2.GetObservationLogRequest(trial_name="t", start_time="2024-05-01"),
     "start_time"),
    ("GetObservationLog", api_pb2.GetObservationLogRequest(trial_name="t", end_time="2024-05-01T25:00:00Z"),
     "end_time"),
    ("DeleteObservationLog", api_pb2.DeleteObservationLogRequest(trial_name=""), "trial_name"),
])
def test_bad_requests_are_invalid_argument_naming_the_field(served, call, request_, field):
    store, address = served
    with grpc.insecure_channel(address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        with pytest.raises(grpc.RpcError) as exc:
            getattr(stub, call)(request_)
    assert exc.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith(f"{field}: invalid value")
    assert "Traceback" not in exc.value.details()
    assert store.get("t") == []  # a rejected batch stores nothing


def test_health_and_reflection(served):
    _, address = served
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "api.v1.beta1.DBManager"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as exc:
            health.Check(health_pb2.HealthCheckRequest(service="api.v1.beta1.Suggestion"))
        assert exc.value.code() is grpc.StatusCode.NOT_FOUND
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        reply = next(reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
            list_services="")])))
        names = {s.name for s in reply.list_services_response.service}
        assert {"api.v1.beta1.DBManager", "grpc.health.v1.Health"} <= names


def test_many_clients_report_at_once(served):
    store, address = served
    errors: list[BaseException] = []

    def push(t: int) -> None:
        try:
            with DBManagerClient(address) as client:
                for i in range(25):
                    client.report(f"trial-{t}", [("loss", str(i), ""), ("acc", str(i), "")])
        except (AssertionError, grpc.RpcError) as exc:  # collected: pytest would not see a thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(len(store.get(f"trial-{t}")) == 50 for t in range(8))


def test_port_in_use_is_an_oserror(served):
    store, address = served
    port = int(address.rsplit(":", 1)[1])
    with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
        make_dbmanager_server(store, port=port)


def _kubenas(*args: str) -> list[str]:
    return [sys.executable, "-c", "from kubenas_cli.app import main; main()", *args]


def _serve(db) -> tuple[subprocess.Popen, int]:
    """`kubenas db serve` on a free port, and the port it logged."""
    proc = subprocess.Popen(_kubenas("db", "serve", "--db", f"sqlite:///{db}", "--port", "0",
                                     "--host", "127.0.0.1"),
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"DBManager serving .* on 127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match.group(1))
    proc.kill()
    proc.wait()
    raise AssertionError("no 'DBManager serving' log line")


def test_kubenas_db_serve_serves_and_stops_on_sigterm(tmp_path):
    db = tmp_path / "served.db"
    proc, port = _serve(db)
    try:
        with DBManagerClient(f"127.0.0.1:{port}") as client:
            client.report("t", [("loss", "0.1", "")])
            assert client.get("t")[0].value == "0.1"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with SQLiteStore(db) as store:
        assert store.get("t")[0].value == "0.1"


@pytest.mark.parametrize("db, message", [
    ("mysql://x", "unknown scheme 'mysql'"),
    ("sqlite://host/x.db", "has no host"),
])
def test_kubenas_db_serve_rejects_a_bad_db_url(tmp_path, db, message):
    done = subprocess.run(_kubenas("db", "serve", "--db", db, "--port", "0"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--db" in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr


def test_kubenas_db_serve_on_a_taken_port_names_the_port(served, tmp_path):
    _, address = served
    port = address.rsplit(":", 1)[1]
    done = subprocess.run(_kubenas("db", "serve", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                                   "--port", port, "--host", "127.0.0.1"),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"--port {port}" in done.stderr and "Traceback" not in done.stderr


def test_every_acknowledged_push_survives_the_server_being_killed(tmp_path):
    db = tmp_path / "pushed.db"
    proc, port = _serve(db)
    acknowledged = 0
    try:
        with DBManagerClient(f"127.0.0.1:{port}") as client:
            for i in range(30):
                client.report("pushed", [(f"m{j}", f"{i}", "") for j in range(20)])
                acknowledged += 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no graceful stop, no chance to flush anything
        proc.wait(timeout=20)
    with SQLiteStore(db) as store:
        logs = store.get("pushed")
    assert len(logs) == acknowledged * 20 == 600
