"""Where stateful algorithms (ENAS) keep their state between calls and across restarts."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from pathlib import Path

__all__ = ["DirectoryStateStore", "MemoryStateStore", "StateStore"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class StateStore(ABC):
    """Blobs by key (one key per experiment and part). `save` is atomic: a reader sees the
    old blob or the new one, never a torn write, even if the process is killed mid-save."""

    @abstractmethod
    def load(self, key: str) -> bytes | None: ...

    @abstractmethod
    def save(self, key: str, data: bytes) -> None: ...

    def lock(self, key: str) -> threading.Lock:
        """A process-wide lock per key, for read-modify-write of one experiment's state."""
        with _locks_guard:
            return _locks.setdefault((id(self), key), threading.Lock())


_locks: dict[tuple[int, str], threading.Lock] = {}
_locks_guard = threading.Lock()


class MemoryStateStore(StateStore):
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def load(self, key: str) -> bytes | None:
        return self._blobs.get(key)

    def save(self, key: str, data: bytes) -> None:
        self._blobs[key] = bytes(data)


class DirectoryStateStore(StateStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / _SAFE.sub("_", key)

    def load(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

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
