"""The SQLite observation store: one file, many threads and processes.

Durability: the file is in WAL mode with `synchronous=NORMAL`. A transaction is written
to the WAL (in the OS page cache) before `COMMIT` returns, so it survives the writing
process being SIGKILLed — the guarantee "nothing reported is lost when a trial or the
runner crashes" needs. NORMAL skips the fsync at each commit, so an OS crash or power
loss may drop the last transactions (never corrupting the file); `?synchronous=FULL` in
the URL buys power-loss durability at an fsync per commit (see bench/RESULTS.md).

Concurrency: WAL lets readers run beside the one writer. Every write starts with
`BEGIN IMMEDIATE`, so a writer waits for the write lock up front under `busy_timeout`
instead of failing when a read transaction cannot be upgraded ("database is locked").
Connections are pooled per process: sqlite3 connections are not shareable between
threads at once, and one per short-lived thread would leak file descriptors.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from controller.store import (
    StoreError,
)
from controller.store_sql import SqlObservationStore

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "sqlite_path_from_url"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS observation_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_name  TEXT    NOT NULL,
    metric_name TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    time_stamp  TEXT    NOT NULL,
    time_us     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS observation_logs_by_trial
    ON observation_logs (trial_name, time_us, id);
CREATE TABLE IF NOT EXISTS trials (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL,
    name       TEXT NOT NULL,
    condition  TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (experiment, name)
);
CREATE TABLE IF NOT EXISTS experiment_meta (
    experiment TEXT NOT NULL,
    key        TEXT NOT NULL,
    value_json TEXT NOT NULL,
    PRIMARY KEY (experiment, key)
);
"""

T = TypeVar("T")


def sqlite_path_from_url(url: str) -> str:
    """`sqlite:///rel.db` -> `rel.db`, `sqlite:////abs.db` -> `/abs.db`, a path -> itself.

    The query may set `synchronous` (`sqlite:///x.db?synchronous=FULL`); it is kept on
    the returned string as `path?synchronous=FULL` for `SQLiteStore` to read."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.netloc:
        raise StoreError(f"{url!r}: a SQLite URL has no host; write sqlite:///relative.db "
                         f"or sqlite:////absolute/path.db")
    path = unquote(parts.path.removeprefix("/"))
    if not path:
        raise StoreError(f"{url!r}: no file path; write sqlite:///relative.db or sqlite:////abs.db")
    return f"{path}?{parts.query}" if parts.query else path


def _split_options(spec: str) -> tuple[str, dict[str, str]]:
    path, _, query = spec.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise StoreError(f"{spec!r}: unknown option {unknown[0]!r}; allowed: synchronous")
    return path, options


class SQLiteStore(SqlObservationStore):
    """An `ObservationStore` in one SQLite file (created with its parent directories)."""

    MARK = "?"

    def __init__(self, path: str | os.PathLike[str], synchronous: str | None = None,
                 busy_timeout_s: float = 60.0) -> None:
        spec, options = _split_options(os.fspath(path))
        level = (synchronous or options.get("synchronous") or "NORMAL").upper()
        if level not in _SYNCHRONOUS:
            raise StoreError(f"{os.fspath(path)!r}: synchronous={level!r} is not one of "
                             f"{', '.join(_SYNCHRONOUS)}")
        if spec in ("", ":memory:") or spec.startswith("file:"):
            raise StoreError(f"{spec!r}: the store needs a file path (several connections "
                             f"share it), not an in-memory or URI database")
        self.path = Path(spec)
        self.synchronous = level
        self.busy_timeout_s = float(busy_timeout_s)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{str(self.path)!r}: cannot create its directory: {exc}") from None
        if self.path.is_dir():
            raise StoreError(f"{str(self.path)!r}: is a directory, expected a database file")
        self._init_schema()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    # --- connections ------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{str(self.path)!r}: cannot open: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.Error as exc:
            conn.close()
            raise self._error("cannot open", exc) from None
        return conn

    def _error(self, doing: str, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
            return StoreError(f"{str(self.path)!r}: not a SQLite database (corrupt or another "
                              f"kind of file): {text}")
        return StoreError(f"{str(self.path)!r}: {doing}: {text}")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError(f"{str(self.path)!r}: store is closed")
            if os.getpid() != self._pid:
                # A forked child must not touch its parent's connections (SQLite forbids it);
                # keep them referenced so garbage collection does not close them either.
                self._forked_leftovers = self._all
                self._idle, self._all, self._pid = [], [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
            with self._lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            with self._lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)

    def _retrying(self, doing: str, action: Callable[[], T]) -> T:
        """Run `action`, retrying the rare SQLITE_BUSY that bypasses the busy handler."""
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise self._error(doing, exc) from None
                log.debug("%s: %s; retrying in %.3fs", self.path, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except sqlite3.Error as exc:
                raise self._error(doing, exc) from None

    def _write(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        def transaction() -> T:
            with self._connection() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result

        return self._retrying(doing, transaction)

    def _read(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        def read() -> T:
            with self._connection() as conn:
                return work(conn)

        return self._retrying(doing, read)

    def _init_schema(self) -> None:
        def setup(conn: sqlite3.Connection) -> None:
            # Switching to WAL needs an exclusive moment; it persists in the file.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("%s: journal_mode is %s, not WAL (filesystem without shared "
                            "memory?); readers will block writers", self.path, mode)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{str(self.path)!r}: schema version {version} was written by a "
                                 f"newer kubenas (this one reads up to {SCHEMA_VERSION})")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        self._read("cannot initialise the schema", setup)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle, self._all = self._idle, [], []
        for conn in idle:
            conn.close()
