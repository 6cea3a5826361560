"""State stores: round trips, atomic replacement, and survival of a killed writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from suggestion.state import (
    MAX_MEMORY_BYTES,
    MAX_MEMORY_ENTRIES,
    DirectoryStateStore,
    MemoryStateStore,
    state_file_name,
)


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


def test_keys_that_once_shared_a_file_keep_their_own(tmp_path: Path) -> None:
    # Before: unsafe characters became "_", so "team/a" and "team_a" (and any two non-ASCII
    # names of one length) read and wrote one file.
    pairs = [("enas-team/a", "enas-team_a"), ("enas-é", "enas-ü"), ("enas-a b", "enas-a_b"), ("x" * 300, "x" * 301)]
    store = DirectoryStateStore(tmp_path)
    for i, (first, second) in enumerate(pairs):
        store.save(first, f"first-{i}".encode())
        store.save(second, f"second-{i}".encode())
    again = DirectoryStateStore(tmp_path)
    for i, (first, second) in enumerate(pairs):
        assert (again.load(first), again.load(second)) == (f"first-{i}".encode(), f"second-{i}".encode())
    assert len(list(tmp_path.iterdir())) == 2 * len(pairs)


def test_long_and_unicode_keys_make_short_readable_file_names(tmp_path: Path) -> None:
    store = DirectoryStateStore(tmp_path)
    for key in ("enas-" + "n" * 300, "enas-" + "实验" * 200, "enas-../../etc/passwd", "enas-\x00\udcff"):
        store.save(key, key.encode("utf-8", "surrogatepass"))
        assert store.load(key) == key.encode("utf-8", "surrogatepass")
        name = state_file_name(key)
        assert len(name.encode()) <= 120 and name.startswith("enas-") and store.path(key).parent == tmp_path


def test_a_state_file_written_under_the_old_name_is_still_read(tmp_path: Path) -> None:
    (tmp_path / "enas-exp-1").write_bytes(b"old")
    store = DirectoryStateStore(tmp_path)
    assert store.load("enas-exp-1") == b"old"
    store.save("enas-exp-1", b"new")
    assert DirectoryStateStore(tmp_path).load("enas-exp-1") == b"new"
    # An old name made by replacing characters may hold another key's state: not read.
    (tmp_path / "enas-team_b").write_bytes(b"whose?")
    assert store.load("enas-team/b") is None


def test_memory_store_keeps_its_most_recently_used_keys_only() -> None:
    store = MemoryStateStore(max_entries=3)
    for key in "abcd":
        store.save(key, key.encode())
    assert store.load("a") is None
    assert store.load("b") == b"b"  # b is now the most recent
    store.save("e", b"e")
    assert [k for k in "bcde" if store.load(k) is not None] == ["b", "d", "e"]
    assert MemoryStateStore().max_entries == MAX_MEMORY_ENTRIES


def test_locks_of_keys_no_longer_in_use_are_not_kept() -> None:
    import gc
    import weakref

    store = MemoryStateStore()
    ref = weakref.ref(store.lock("seen-once"))
    gc.collect()
    assert ref() is None


def test_memory_store_keeps_at_most_its_byte_budget_but_always_the_newest_blob() -> None:
    store = MemoryStateStore(max_entries=100, max_bytes=9)
    store.save("a", b"1234")
    store.save("b", b"1234")
    store.save("a", b"12")  # replacing a blob counts its new size only
    store.save("c", b"1234")
    assert [k for k in "abc" if store.load(k) is not None] == ["a", "c"]
    store.save("big", b"x" * 50)
    assert [k for k in ("a", "c", "big") if store.load(k) is not None] == ["big"]
    assert MemoryStateStore().max_bytes == MAX_MEMORY_BYTES
