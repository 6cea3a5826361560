"""State stores: round trips, atomic replacement, and survival of a killed writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from suggestion.state import DirectoryStateStore, MemoryStateStore


def test_memory_store_round_trip_and_missing_key() -> None:
    store = MemoryStateStore()
    assert store.load("exp") is None
    store.save("exp", b"abc")
    assert store.load("exp") == b"abc"


def test_directory_store_persists_across_instances(tmp_path: Path) -> None:
    DirectoryStateStore(tmp_path).save("exp/one:controller", b"\x00\x01")
    assert DirectoryStateStore(tmp_path).load("exp/one:controller") == b"\x00\x01"
    # keys are sanitised into one flat directory: no path traversal
    assert all(p.parent == tmp_path for p in tmp_path.iterdir())


def test_lock_is_shared_per_key() -> None:
    store = MemoryStateStore()
    assert store.lock("a") is store.lock("a")
    assert store.lock("a") is not store.lock("b")


def test_killed_writer_leaves_old_or_new_blob_never_torn(tmp_path: Path) -> None:
    writer = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from suggestion.state import DirectoryStateStore
        store = DirectoryStateStore({str(tmp_path)!r})
        i = 0
        while True:
            store.save("exp", bytes([i % 256]) * 2_000_000)
            i += 1
            print(i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    blob = DirectoryStateStore(tmp_path).load("exp")
    assert blob is not None and len(blob) == 2_000_000
    assert len(set(blob)) == 1  # one complete write, not a mix of two
