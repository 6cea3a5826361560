"""The PostgreSQL observation store (psycopg 3), for a DBManager shared by a cluster.

Same tables and semantics as `SQLiteStore`. Each call is one transaction on a pooled
connection; PostgreSQL's own WAL (fsync on commit by default) makes a returned call
durable. Table creation is serialised with an advisory lock, because concurrent
`CREATE TABLE IF NOT EXISTS` can still collide in PostgreSQL.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from controller.store import (
    StoreError,
)
from controller.store_sql import SqlObservationStore

__all__ = ["PostgresStore", "redact_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_SCHEMA_LOCK = 0x6B75_6265  # an arbitrary advisory-lock id for kubenas schema changes
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS observation_logs (
        id          BIGSERIAL PRIMARY KEY,
        trial_name  TEXT   NOT NULL,
        metric_name TEXT   NOT NULL,
        value       TEXT   NOT NULL,
        time_stamp  TEXT   NOT NULL,
        time_us     BIGINT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS observation_logs_by_trial
        ON observation_logs (trial_name, time_us, id)""",
    """CREATE TABLE IF NOT EXISTS trials (
        seq        BIGSERIAL PRIMARY KEY,
        experiment TEXT NOT NULL,
        name       TEXT NOT NULL,
        condition  TEXT NOT NULL,
        data       TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (experiment, name))""",
    """CREATE TABLE IF NOT EXISTS experiment_meta (
        experiment TEXT NOT NULL,
        key        TEXT NOT NULL,
        value_json TEXT NOT NULL,
        PRIMARY KEY (experiment, key))""",
]


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", url)


class PostgresStore(SqlObservationStore):
    """An `ObservationStore` in a PostgreSQL database given by a libpq URL."""

    MARK = "%s"

    def __init__(self, url: str, connect_timeout_s: int = 10) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"{redact_url(url)!r}: PostgreSQL needs psycopg 3; install it with "
                             f"pip install 'psycopg[binary]' (or kubenas[controller])") from None
        self._psycopg = psycopg
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._closed = False
        self._transaction("cannot create the schema", self._create_schema)

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.url, connect_timeout=self.connect_timeout_s)
        except self._psycopg.Error as exc:
            raise StoreError(f"{redact_url(self.url)!r}: cannot connect: "
                             f"{str(exc).strip()}") from None

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise StoreError(f"{redact_url(self.url)!r}: store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()  # a broken connection is not returned to the pool
            raise
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._idle.append(conn)

    def _write(self, doing: str, work: Callable[[Any], T]) -> T:
        return self._transaction(doing, work)

    def _read(self, doing: str, work: Callable[[Any], T]) -> T:
        return self._transaction(doing, work)

    def _transaction(self, doing: str, work: Callable[[Any], T]) -> T:
        try:
            with self._connection() as conn, conn.transaction():
                return work(conn)
        except self._psycopg.Error as exc:
            raise StoreError(f"{redact_url(self.url)!r}: {doing}: {str(exc).strip()}") from None

    @staticmethod
    def _create_schema(conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for statement in _SCHEMA:
            conn.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
