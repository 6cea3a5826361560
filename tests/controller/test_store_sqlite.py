"""SQLiteStore specifics: resume across processes, URLs, WAL, bad and corrupt files."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.store import InvalidLogError, StoreError, TrialRow, open_store, parse_rfc3339
from controller.store_sqlite import SQLiteStore, sqlite_path_from_url
from kubenas.trials import TrialCondition


@pytest.fixture()
def store(tmp_path):
    with SQLiteStore(tmp_path / "kubenas.db") as s:
        yield s


@pytest.mark.parametrize("text, micros", [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:01.5Z", 1_500_000),
    ("1970-01-01T01:00:00+01:00", 0),
    ("1969-12-31T23:59:59.999999Z", -1),
    ("2024-02-29T12:00:00.123456789z", 1_709_208_000_123_456),
])
def test_parse_rfc3339(text, micros):
    assert parse_rfc3339(text) == micros


def test_resume_sees_what_a_previous_process_wrote(tmp_path):
    path = tmp_path / "kubenas.db"
    with SQLiteStore(path) as s:
        s.upsert_trial("exp", TrialRow("t1", condition=TrialCondition.SUCCEEDED,
                                       observation={"loss": 0.25}))
        s.upsert_trial("exp", TrialRow("t2", condition=TrialCondition.RUNNING))
        s.report("t2", [("loss", "0.5", "2024-01-01T00:00:00Z")])
        s.put_meta("exp", "suggestion", json.dumps({"requested": 2}))
    with open_store(f"sqlite:///{path}") as s:
        trials = s.list_trials("exp")
        assert [(t.name, t.condition) for t in trials] == [
            ("t1", TrialCondition.SUCCEEDED), ("t2", TrialCondition.RUNNING)]
        unfinished = [t.name for t in trials if not t.condition.finished]
        assert unfinished == ["t2"]
        assert s.get("t2")[0].value == "0.5"
        assert json.loads(s.get_meta("exp", "suggestion")) == {"requested": 2}


def test_file_is_wal_and_schema_is_versioned(store):
    raw = sqlite3.connect(store.path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    raw.close()


def test_sqlite_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_path_from_url("sqlite:///runs/x/kubenas.db") == "runs/x/kubenas.db"
    assert sqlite_path_from_url("sqlite:////abs/k.db") == "/abs/k.db"
    assert sqlite_path_from_url("plain/k.db") == "plain/k.db"
    with open_store("sqlite:///runs/x/kubenas.db") as s:  # creates parent directories
        assert s.path.resolve() == (tmp_path / "runs/x/kubenas.db").resolve()
    with open_store("plain.db?synchronous=full") as s:
        assert s.synchronous == "FULL"
        raw = s._idle[0]
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


@pytest.mark.parametrize("url, message", [
    ("", "empty store URL"),
    ("mysql://root@db/katib", "unknown scheme 'mysql'"),
    ("sqlite://host/k.db", "has no host"),
    ("sqlite:///", "no file path"),
    ("sqlite:///:memory:", "needs a file path"),
    ("sqlite:///k.db?synchronous=SOMETIMES", "synchronous='SOMETIMES'"),
    ("sqlite:///k.db?journal=off", "unknown option 'journal'"),
])
def test_bad_urls_name_the_url(tmp_path, monkeypatch, url, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_corrupt_file_and_directory_and_unwritable_path(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(StoreError, match=r"junk\.db.*not a SQLite database"):
        SQLiteStore(junk)
    with pytest.raises(StoreError, match="is a directory"):
        SQLiteStore(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create its directory"):
        open_store(f"sqlite:///{blocker}/sub/k.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_file_is_a_store_error(tmp_path):
    path = tmp_path / "ro.db"
    SQLiteStore(path).close()
    os.chmod(path, 0o444)
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(StoreError, match=r"ro\.db"):
            s = SQLiteStore(path)
            s.report("t", [("m", "1", "")])
    finally:
        os.chmod(tmp_path, 0o755)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SQLiteStore(path)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])),
       st.sampled_from(["T", "t", " "]))
def test_parse_rfc3339_agrees_with_datetime(moment, separator):
    text = moment.isoformat(sep=separator, timespec="microseconds")
    expected = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    assert parse_rfc3339(text) == expected
    assert parse_rfc3339(text.replace("+00:00", "Z")) == expected


@pytest.mark.parametrize("text", ["2024-05-01", "2024-05-01T12:00:00", "2024-02-30T00:00:00Z",
                                  "2024-05-01T12:00:00+25:00", "12:00:00Z", "",
                                  "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00.1234567890Z"])
def test_parse_rfc3339_rejects(text):
    with pytest.raises(InvalidLogError, match="RFC 3339"):
        parse_rfc3339(text, "start_time")
