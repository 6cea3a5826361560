"""The ObservationStore contract, run against every backend on real databases.

SQLite runs everywhere. PostgreSQL runs when its server binaries (initdb, pg_ctl) and
psycopg are installed: a throwaway cluster is started in a temporary directory (fsync off,
it is disposable) and every test gets a fresh database in it.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from controller.store import (
    InvalidLogError,
    MetricLog,
    StoreError,
    TrialRow,
    open_store,
    parse_rfc3339,
)
from controller.store_sqlite import SQLiteStore
from kubenas.trials import TrialCondition


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    """A PostgreSQL cluster for this module; yields a function making a fresh database URL."""
    import psycopg
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use its own system user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        # Not under tmp_path: pytest resets its per-user directory to mode 0700 whenever
        # another pytest session starts, which would lock that user out mid-run.
        base = Path(tempfile.mkdtemp(prefix="kubenas-pg-"))
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid}
    else:
        base = tmp_path_factory.mktemp("postgres")
    data, port = base / "data", _free_port()
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    admin = f"postgresql://kubenas@127.0.0.1:{port}/postgres"
    counter = itertools.count()

    def new_database() -> str:
        name = f"kubenas_test_{next(counter)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://kubenas@127.0.0.1:{port}/{name}"

    try:
        for command in ([initdb, "-D", str(data), "-U", "kubenas", "--auth=trust", "-E", "UTF8",
                         "--no-sync"],
                        [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w",
                         "start"]):
            done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=base,
                                  **run_as)
            assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"
        yield new_database
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, check=False, **run_as)
        if run_as:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "kubenas.db")
    else:
        s = open_store(request.getfixturevalue("postgres_server")())
    with s:
        yield s


def test_report_get_in_time_order_with_insertion_order_for_ties(store):
    assert store.report("t1", [
        ("loss", "0.5", "2024-01-01T00:00:02Z"),
        ("loss", "0.7", "2024-01-01T00:00:01Z"),
        MetricLog("acc", "0.1", "2024-01-01T00:00:01Z"),
    ]) == 3
    store.report("t2", [("loss", "9", "2024-01-01T00:00:00Z")])
    assert store.get("t1") == [
        MetricLog("loss", "0.7", "2024-01-01T00:00:01Z"),
        MetricLog("acc", "0.1", "2024-01-01T00:00:01Z"),
        MetricLog("loss", "0.5", "2024-01-01T00:00:02Z"),
    ]
    assert [log.value for log in store.get("t1", "loss")] == ["0.7", "0.5"]
    assert store.get("t1", "") == store.get("t1", None)
    assert store.get("nobody") == []


def test_time_bounds_are_inclusive_and_compare_across_zones(store):
    store.report("t", [("m", str(i), f"2024-01-01T00:00:0{i}Z") for i in range(5)])
    # 01:00:02+01:00 is 00:00:02Z: the bound is compared as an instant, not as text.
    got = store.get("t", start_time="2024-01-01T01:00:01+01:00", end_time="2024-01-01T00:00:03.000Z")
    assert [log.value for log in got] == ["1", "2", "3"]
    assert [log.value for log in store.get("t", end_time="2024-01-01T00:00:00Z")] == ["0"]
    assert store.get("t", start_time="2024-01-01T00:00:04.000001Z") == []


def test_values_are_text_and_numbers_are_kept_exactly(store):
    store.report("t", [("loss", "unavailable", ""), ("acc", 0.1 + 0.2, "")])
    logs = store.get("t")
    assert logs[0].value == "unavailable" and logs[0].as_point() is None
    assert float(logs[1].value) == 0.1 + 0.2
    assert logs[1].as_point().value == 0.1 + 0.2


def test_empty_time_stamp_is_stamped_now(store):
    store.report("t", [("m", "1", "")])
    (log,) = store.get("t")
    parse_rfc3339(log.time_stamp)  # a valid RFC 3339 time
    assert log.time_stamp.endswith("Z")


def test_bad_batch_is_rejected_whole_with_the_field_named(store):
    with pytest.raises(InvalidLogError) as exc:
        store.report("t", [("m", "1", "2024-01-01T00:00:00Z"), ("m", "2", "yesterday")])
    assert exc.value.field == "metric_logs[1].time_stamp" and "yesterday" in str(exc.value)
    with pytest.raises(InvalidLogError, match=r"metric_logs\[0\]\.metric\.name"):
        store.report("t", [("", "1", "")])
    with pytest.raises(InvalidLogError, match="trial_name"):
        store.report("", [("m", "1", "")])
    with pytest.raises(InvalidLogError, match=r"metric_logs\[0\]\.metric\.value: invalid value None"):
        store.report("t", [("m", None, "")])
    with pytest.raises(InvalidLogError, match=r"metric_logs\[1\]: .*expected \(metric name"):
        store.report("t", [("m", "1", ""), ("m", "1")])
    with pytest.raises(InvalidLogError, match="start_time: invalid value '2024-13-01T00:00:00Z'"):
        store.get("t", start_time="2024-13-01T00:00:00Z")
    with pytest.raises(InvalidLogError, match="end_time"):
        store.get("t", end_time="noon")
    assert store.get("t") == []


def test_delete_removes_only_that_trial(store):
    store.report("a", [("m", "1", "")] * 3)
    store.report("b", [("m", "2", "")])
    assert store.delete("a") == 3
    assert store.get("a") == [] and len(store.get("b")) == 1
    assert store.delete("a") == 0


def test_trials_upsert_keeps_first_insertion_order_and_round_trips(store):
    first = TrialRow("enas-a", {"architecture": "[[1]]", "nn_config": "{}"}, labels={"k": "v"},
                     condition=TrialCondition.RUNNING, start_time="2024-01-01T00:00:00Z", seed=7,
                     workdir="/w/a")
    store.upsert_trial("exp", first)
    store.upsert_trial("exp", TrialRow("enas-b"))
    store.upsert_trial("other", TrialRow("enas-a"))
    done = TrialRow("enas-a", first.assignments, first.labels, TrialCondition.SUCCEEDED,
                    first.start_time, "2024-01-01T00:01:00Z", {"Validation-Accuracy": 0.93},
                    exit_code=0, message="ok", seed=7, duration_s=60.5, workdir="/w/a")
    store.upsert_trial("exp", done)
    trials = store.list_trials("exp")
    assert [t.name for t in trials] == ["enas-a", "enas-b"]
    assert trials[0] == done and trials[1] == TrialRow("enas-b")
    assert isinstance(trials[0].observation["Validation-Accuracy"], float)
    assert [t.name for t in store.list_trials("other")] == ["enas-a"]
    assert store.list_trials("missing") == []


def test_meta_overwrites_and_rejects_non_json(store):
    assert store.get_meta("exp", "k") is None
    store.put_meta("exp", "k", "1")
    store.put_meta("exp", "k", '{"a": [1, 2]}')
    assert json.loads(store.get_meta("exp", "k")) == {"a": [1, 2]}
    assert store.get_meta("exp2", "k") is None
    with pytest.raises(StoreError, match="not valid JSON"):
        store.put_meta("exp", "k", "{'single': 'quotes'}")


def test_closed_store_refuses_calls(store):
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get("t")


def test_threads_share_one_store(store):
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(40):
                store.report(f"trial-{t}", [("loss", f"{i}", ""), ("acc", f"{i}", "")])
                assert len(store.get(f"trial-{t}", "loss")) == i + 1
        except (AssertionError, StoreError) as exc:  # collected: pytest would not see a thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for t in range(6):
        assert [log.value for log in store.get(f"trial-{t}", "loss")] == [str(i) for i in range(40)]
    if isinstance(store, SQLiteStore):  # connections are pooled, not one per thread ever seen
        assert len(store._all) <= 6



def test_dbmanager_serves_a_postgres_store(postgres_server):
    from controller.dbmanager import DBManagerClient, make_dbmanager_server

    with open_store(postgres_server()) as store:
        server, port = make_dbmanager_server(store, port=0)
        try:
            with DBManagerClient(f"127.0.0.1:{port}") as client:
                client.report("t", [("acc", "0.5", "2024-05-01T12:00:00Z"),
                                    ("acc", "0.7", "2024-05-01T12:00:01Z")])
                assert [m.value for m in client.get("t", "acc", start_time="2024-05-01T12:00:01Z")] == ["0.7"]
        finally:
            server.stop(None).wait()


def test_postgres_store_survives_reopen_and_concurrent_schema_creation(postgres_server):
    url = postgres_server()
    stores: list = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(open_store(url))
        except StoreError as exc:  # collected: pytest would not see a thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(stores) == 4
    stores[0].upsert_trial("exp", TrialRow("a", condition=TrialCondition.SUCCEEDED))
    for s in stores:
        s.close()
    with open_store(url) as again:
        assert [t.name for t in again.list_trials("exp")] == ["a"]


def test_postgres_unreachable_is_a_store_error_without_the_password():
    port = _free_port()  # nothing listens there
    with pytest.raises(StoreError, match="cannot connect") as exc:
        open_store(f"postgresql://kubenas:s3cret@127.0.0.1:{port}/kubenas")
    assert "s3cret" not in str(exc.value) and "****" in str(exc.value)


def test_postgres_without_psycopg_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # stands in for "not installed"
    with pytest.raises(StoreError, match=r"psycopg 3.*pip install"):
        open_store("postgresql://kubenas@127.0.0.1:1/kubenas")
