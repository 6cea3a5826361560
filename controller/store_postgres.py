"""The PostgreSQL observation store (psycopg 3), for a DBManager shared by a cluster.

Same tables and semantics as `SQLiteStore`. Each call is one transaction on a pooled
connection; PostgreSQL's own WAL (fsync on commit by default) makes a returned call
durable. Table creation is serialised with an advisory lock, because concurrent
`CREATE TABLE IF NOT EXISTS` can still collide in PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from controller.store import (
    MetricLog,
    ObservationStore,
    StoreError,
    TrialRow,
    check_json,
    normalize_logs,
    select_logs,
)
from kubenas.metrics import now_rfc3339

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


class PostgresStore(ObservationStore):
    """An `ObservationStore` in a PostgreSQL database given by a libpq URL."""

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

    # --- metric logs ------------------------------------------------------------------
    def report(self, trial_name: str, logs: Iterable[MetricLog | tuple[str, object, str]]) -> int:
        rows = [(trial_name, *row) for row in normalize_logs(trial_name, logs)]
        if not rows:
            return 0

        def insert(conn: Any) -> int:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO observation_logs (trial_name, metric_name, value, "
                                "time_stamp, time_us) VALUES (%s, %s, %s, %s, %s)", rows)
            return len(rows)

        return self._transaction(f"cannot report logs of trial {trial_name!r}", insert)

    def get(self, trial_name: str, metric_name: str | None = None,
            start_time: str | None = None, end_time: str | None = None) -> list[MetricLog]:
        sql, args = select_logs("%s", trial_name, metric_name, start_time, end_time)
        rows = self._transaction(f"cannot read logs of trial {trial_name!r}",
                                 lambda conn: conn.execute(sql, args).fetchall())
        return [MetricLog(*row) for row in rows]

    def delete(self, trial_name: str) -> int:
        return self._transaction(
            f"cannot delete logs of trial {trial_name!r}",
            lambda conn: conn.execute("DELETE FROM observation_logs WHERE trial_name = %s",
                                      (trial_name,)).rowcount)

    # --- trials and metadata ----------------------------------------------------------
    def upsert_trial(self, experiment: str, trial: TrialRow) -> None:
        data = json.dumps(trial.to_json(), sort_keys=True)
        self._transaction(f"cannot save trial {trial.name!r} of {experiment!r}", lambda conn: conn.execute(
            "INSERT INTO trials (experiment, name, condition, data, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (experiment, name) DO UPDATE SET "
            "condition = excluded.condition, data = excluded.data, updated_at = excluded.updated_at",
            (experiment, trial.name, trial.condition.value, data, now_rfc3339())))

    def list_trials(self, experiment: str) -> list[TrialRow]:
        rows = self._transaction(f"cannot list trials of {experiment!r}", lambda conn: conn.execute(
            "SELECT data FROM trials WHERE experiment = %s ORDER BY seq", (experiment,)).fetchall())
        return [TrialRow.from_json(json.loads(data)) for (data,) in rows]

    def put_meta(self, experiment: str, key: str, value_json: str) -> None:
        check_json(value_json, f"meta {key!r} of {experiment!r}")
        self._transaction(f"cannot save meta {key!r} of {experiment!r}", lambda conn: conn.execute(
            "INSERT INTO experiment_meta (experiment, key, value_json) VALUES (%s, %s, %s) "
            "ON CONFLICT (experiment, key) DO UPDATE SET value_json = excluded.value_json",
            (experiment, key, value_json)))

    def get_meta(self, experiment: str, key: str) -> str | None:
        row = self._transaction(f"cannot read meta {key!r} of {experiment!r}", lambda conn: conn.execute(
            "SELECT value_json FROM experiment_meta WHERE experiment = %s AND key = %s",
            (experiment, key)).fetchone())
        return None if row is None else str(row[0])
