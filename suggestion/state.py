"""Where stateful algorithms (ENAS) keep their state between calls and across restarts.

Keys are arbitrary text (they hold experiment names). The directory store names each file
by a readable prefix of the key plus a hash of the whole key, so two keys never share a
file (`team/a` and `team_a` did when unsafe characters were replaced by `_`) and a long
key never makes a name the file system refuses. The memory store keeps the blobs of its
`max_entries` most recently used keys only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path

__all__ = ["MAX_MEMORY_BYTES", "MAX_MEMORY_ENTRIES", "DirectoryStateStore", "MemoryStateStore", "StateStore", "state_file_name"]

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
# Readable part of a file name; with the hash and a temporary file's affixes the name
# stays far below the usual 255-byte limit.
_READABLE_CHARS = 80
# What a memory store keeps at most: this many experiments and this many bytes of state (an
# ENAS controller with its optimizer is ~0.5 MB at hidden size 64, ~8 MB at 256); the least
# recently used is dropped first, and its next call starts afresh.
MAX_MEMORY_ENTRIES = 64
MAX_MEMORY_BYTES = 256 * 1024 * 1024


def state_file_name(key: str) -> str:
    """The file holding `key`: `<key, unsafe characters as _, at most 80>.<sha256 of key, 32 hex>`."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{_SAFE.sub('_', key)[:_READABLE_CHARS]}.{digest}"


def _legacy_file_name(key: str) -> str | None:
    """The name releases before 2026-12 used, where it cannot belong to another key."""
    if _SAFE.search(key) or len(key) > 200 or key.startswith("."):
        return None  # replaced characters: the file may hold another key's state
    return key


class StateStore(ABC):
    """Blobs by key (one key per experiment and part). `save` is atomic: a reader sees the
    old blob or the new one, never a torn write, even if the process is killed mid-save."""

    @abstractmethod
    def load(self, key: str) -> bytes | None: ...

    @abstractmethod
    def save(self, key: str, data: bytes) -> None: ...

    @property
    def directory(self) -> Path | None:
        """A directory on disk where algorithms may keep files (pbt's trial directories);
        None when state lives in memory only."""
        return None

    def lock(self, key: str) -> threading.Lock:
        """A process-wide lock per key, for read-modify-write of one experiment's state.

        Kept only while someone holds a reference, so keys seen once cost nothing later."""
        with _locks_guard:
            lock = _locks.get((id(self), key))
            if lock is None:
                lock = threading.Lock()
                _locks[(id(self), key)] = lock
            return lock


_locks: weakref.WeakValueDictionary[tuple[int, str], threading.Lock] = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


class MemoryStateStore(StateStore):
    """Blobs in this process: at most `max_entries` keys and `max_bytes` in all (the newest
    blob is always kept); the least recently used keys are dropped first."""

    def __init__(self, max_entries: int = MAX_MEMORY_ENTRIES, max_bytes: int = MAX_MEMORY_BYTES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries: invalid value {max_entries!r}: must be >= 1")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._guard = threading.Lock()

    def load(self, key: str) -> bytes | None:
        with self._guard:
            blob = self._blobs.get(key)
            if blob is not None:
                self._blobs.move_to_end(key)
            return blob

    def save(self, key: str, data: bytes) -> None:
        with self._guard:
            self._bytes -= len(self._blobs.pop(key, b""))
            self._blobs[key] = bytes(data)
            self._bytes += len(data)
            while len(self._blobs) > self.max_entries or (self._bytes > self.max_bytes and len(self._blobs) > 1):
                dropped, blob = self._blobs.popitem(last=False)
                self._bytes -= len(blob)
                log.warning("in-memory state of %r dropped (more than %d keys or %d MB); give the server a "
                            "state directory to keep every experiment's state", dropped, self.max_entries,
                            self.max_bytes // 2**20)


class DirectoryStateStore(StateStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def directory(self) -> Path | None:
        return self.root

    def path(self, key: str) -> Path:
        return self.root / state_file_name(key)

    def load(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            pass
        legacy = _legacy_file_name(key)
        if legacy is None:
            return None
        try:
            blob = (self.root / legacy).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        log.info("state %r read from its pre-hash file name; the next save writes %s", key, self.path(key).name)
        return blob

    def save(self, key: str, data: bytes) -> None:
        target = self.path(key)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
