"""DBManager against hostile clients: big batches and replies, odd names, bad times.

A real server on port 0 over a real SQLite file; what was acknowledged must read back whole.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from controller.dbmanager import DBManagerClient, make_dbmanager_server
from controller.store_sqlite import SQLiteStore
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = tmp_path / "kubenas.db"
    store = SQLiteStore(path)
    server, port = make_dbmanager_server(store, port=0)
    yield path, f"127.0.0.1:{port}"
    server.stop(None).wait()
    store.close()


def test_a_trial_with_more_than_4_mib_of_points_reads_back(served: tuple[Path, str]) -> None:
    # Before: each batch was accepted, but GetObservationLog's reply broke gRPC's default 4 MiB
    # receive limit, so the controller could never read the trial's metrics again.
    _, address = served
    batch = [("validation-accuracy-top1-ema", repr(i * 0.001), f"2024-05-01T12:00:{i % 60:02d}.123456Z")
             for i in range(40_000)]
    with DBManagerClient(address, timeout_s=60) as client:
        for _ in range(2):
            client.report("long-trial", batch)
        logs = client.get("long-trial")
    assert sum(len(n) + len(v) + len(s) for n, v, s in logs) > 4 * 1024 * 1024
    assert len(logs) == 80_000
    assert sorted({float(v) for _, v, _ in logs}) == sorted({i * 0.001 for i in range(40_000)})


def test_one_batch_over_4_mib_is_stored_whole(served: tuple[Path, str]) -> None:
    path, address = served
    batch = [("loss", repr(i + 0.5), "2024-05-01T12:00:00Z") for i in range(120_000)]
    request = api_pb2.ReportObservationLogRequest(trial_name="t", observation_log=api_pb2.ObservationLog(
        metric_logs=[api_pb2.MetricLog(time_stamp=s, metric=api_pb2.Metric(name=n, value=v)) for n, v, s in batch]))
    assert request.ByteSize() > 4 * 1024 * 1024
    with DBManagerClient(address, timeout_s=60) as client:
        client.report("t", batch)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM observation_logs WHERE trial_name = 't'").fetchone() == (120_000,)


@pytest.mark.parametrize("name", ["x'; DROP TABLE observation_logs;--", "%", "_", "a\x00b", "名前 with spaces", "t" * 10_000])
def test_odd_trial_names_are_data_not_sql(served: tuple[Path, str], name: str) -> None:
    path, address = served
    with DBManagerClient(address) as client:
        client.report("bystander", [("loss", "1", "")])
        client.report(name, [("loss", "2", "2024-05-01T12:00:00Z")])
        assert [(n, v) for n, v, _ in client.get(name)] == [("loss", "2")]
        client.delete(name)
        assert client.get(name) == []
        assert [v for _, v, _ in client.get("bystander")] == ["1"]  # LIKE wildcards matched nothing else
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize(("stamp", "fragment"), [
    ("2024-01-01T00:00:00+25:00", "UTC offset +25:00 is out of range"),
    ("2024-01-01T00:00:00-10:75", "UTC offset -10:75 is out of range"),
    ("2024-02-30T00:00:00Z", "day is out of range for month"),
    ("10000-01-01T00:00:00Z", "expected an RFC 3339 time"),
    ("1714564800", "expected an RFC 3339 time"),
])
def test_bad_timestamps_reject_the_whole_batch_naming_the_item(served: tuple[Path, str], stamp: str,
                                                                fragment: str) -> None:
    _, address = served
    with DBManagerClient(address) as client:
        with pytest.raises(grpc.RpcError) as info:
            client.report("t", [("loss", "1", "2024-01-01T00:00:00Z"), ("loss", "2", stamp)])
        assert client.get("t") == []  # the good first item was not kept either
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details()
    assert details.startswith(f"observation_log.metric_logs[1].time_stamp: invalid value {stamp!r}")
    assert fragment in details and "timedelta" not in details


def test_garbage_values_are_kept_as_text(served: tuple[Path, str]) -> None:
    _, address = served
    with grpc.insecure_channel(address) as channel:
        api_pb2_grpc.DBManagerStub(channel).ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name="t", observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(metric=api_pb2.Metric(name="loss", value=v)) for v in ("nan", "\x00\xff", "1e999", "")])),
            timeout=10)
    with DBManagerClient(address) as client:
        assert [v for _, v, _ in client.get("t")] == ["nan", "\x00\xff", "1e999", ""]


@pytest.mark.parametrize(("method", "message"), [
    ("ReportObservationLog", api_pb2.ReportObservationLogRequest(trial_name="abcdef", observation_log=api_pb2.ObservationLog(
        metric_logs=[api_pb2.MetricLog(time_stamp="2024-05-01T12:00:00Z",
                                       metric=api_pb2.Metric(name="loss", value="0.5"))]))),
    ("GetObservationLog", api_pb2.GetObservationLogRequest(trial_name="abcdef")),
    ("DeleteObservationLog", api_pb2.DeleteObservationLogRequest(trial_name="abcdef")),
])
def test_invalid_utf8_is_invalid_argument_without_a_traceback(served: tuple[Path, str], method: str,
                                                              message: object,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # Before: protobuf refused the request while gRPC parsed it, which logged a traceback per
    # request and answered INTERNAL.
    _, address = served
    payload = message.SerializeToString()  # type: ignore[attr-defined]
    assert b"abcdef" in payload
    payload = payload.replace(b"abcdef", b"ab\xff\xfeef")
    with grpc.insecure_channel(address) as channel, caplog.at_level(logging.INFO):
        call = channel.unary_unary(f"/api.v1.beta1.DBManager/{method}")
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as info:
                call(payload, timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "UTF-8" in info.value.details() and method in info.value.details()
        # The server still serves well-formed requests.
        with DBManagerClient(address) as client:
            client.report("fine", [("loss", "0.5", "2024-05-01T12:00:00Z")])
            assert [m.value for m in client.get("fine")] == ["0.5"]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def test_an_invalid_value_error_is_shortened(served: tuple[Path, str]) -> None:
    _, address = served
    with DBManagerClient(address) as client, pytest.raises(grpc.RpcError) as info:
        client.report("t", [("loss", "0.5", "not a time " * 10_000)])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(info.value.details()) < 1500 and "more characters" in info.value.details()
