"""SQLiteStore across real processes: concurrent writers, a forked child, and SIGKILL.

The crash test is the durability contract: a child prints `ack` only after `report()`
returned; it is SIGKILLed mid-stream, and every acknowledged batch must be in the file.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from controller.store_sqlite import SQLiteStore

WRITER = Path(__file__).resolve().parents[1] / "programs" / "crash_writer.py"


def _writer(db: Path, trial: str, batches: int, rows: int, threads: int = 1,
            stderr: int = subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(db), trial, str(batches), str(rows), "--threads", str(threads)],
        stdout=subprocess.PIPE, stderr=stderr, text=True)


def test_concurrent_processes_and_threads_lose_nothing_and_never_lock(tmp_path):
    db = tmp_path / "kubenas.db"
    SQLiteStore(db).close()  # created once, so the writers race on data, not on the schema
    procs = [_writer(db, f"p{p}", batches=40, rows=5, threads=3) for p in range(4)]
    results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "locked" not in err and "busy" not in err
        assert out.count("ack ") == 40 * 3
    with SQLiteStore(db) as store:
        for p in range(4):
            for t in range(3):
                logs = store.get(f"p{p}-{t}")
                assert len(logs) == 40 * 5
                # one thread's batches stay in its own order
                assert [log.value for log in logs if log.metric_name == "m0"] == [
                    f"{i}.0" for i in range(40)]


def test_a_fresh_file_opened_by_many_processes_at_once(tmp_path):
    db = tmp_path / "fresh.db"
    procs = [_writer(db, f"p{p}", batches=5, rows=2) for p in range(5)]
    for proc in procs:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    with SQLiteStore(db) as store:
        assert all(len(store.get(f"p{p}")) == 10 for p in range(5))


def _forked_child(store: SQLiteStore, queue: multiprocessing.Queue[int]) -> None:
    store.report("child", [("m", "1", "")])
    queue.put(len(store.get("parent")))


def test_a_forked_child_opens_its_own_connections(tmp_path):
    store = SQLiteStore(tmp_path / "k.db")
    store.report("parent", [("m", "1", "")])  # the parent now holds an open connection
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_forked_child, args=(store, queue))
    child.start()
    assert queue.get(timeout=30) == 1
    child.join(timeout=30)
    assert child.exitcode == 0
    assert len(store.get("child")) == 1
    store.report("parent", [("m", "2", "")])  # the parent's connection still works
    assert len(store.get("parent")) == 2
    store.close()


def _read_acks(lines: list[str]) -> Counter[str]:
    acked: Counter[str] = Counter()
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ack":
            acked[parts[1]] = max(acked[parts[1]], int(parts[2]) + 1)
    return acked


def test_sigkill_mid_stream_loses_no_acknowledged_batch(tmp_path):
    db = tmp_path / "crash.db"
    SQLiteStore(db).close()
    rows = 200  # big batches, so the kill often lands inside a transaction
    for round_, kill_after in enumerate((5, 23, 61)):
        proc = _writer(db, f"r{round_}", batches=100_000, rows=rows, threads=2,
                       stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        seen = []
        while len(seen) < kill_after:
            line = proc.stdout.readline()
            assert line, "the writer exited early"
            seen.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        # read() and not communicate(): communicate reads the pipe itself and would miss
        # acks that readline() already pulled into the buffer
        rest = proc.stdout.read()
        assert proc.wait(timeout=30) == -signal.SIGKILL
        acked = _read_acks(seen + rest.splitlines())
        assert sum(acked.values()) >= kill_after

        raw = sqlite3.connect(db)
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        raw.close()
        with SQLiteStore(db) as store:  # opens cleanly after the crash
            for trial, n_acked in acked.items():
                logs = store.get(trial)
                batches = Counter(log.value.split(".")[0] for log in logs)
                # every acknowledged batch is there, whole; at most one more got committed
                # between its commit and the kill, and no batch is ever partial
                assert all(batches[str(i)] == rows for i in range(n_acked)), trial
                assert len(batches) in (n_acked, n_acked + 1)
                assert set(batches.values()) == {rows}


def test_writes_continue_after_a_killed_writer_held_the_lock(tmp_path):
    db = tmp_path / "k.db"
    SQLiteStore(db).close()
    proc = _writer(db, "victim", batches=100_000, rows=500, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.stdout.read()
    proc.wait(timeout=30)
    start = time.monotonic()
    with SQLiteStore(db) as store:
        store.report("after", [("m", "1", "")])
        assert len(store.get("after")) == 1
    assert time.monotonic() - start < 5  # a dead process's lock is not waited out
