"""The statements both SQL stores run, written once: SQLite and PostgreSQL differ only in
their parameter marker and in how they open a transaction (`_write` / `_read`)."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

from controller.store import (
    MetricLog,
    ObservationStore,
    TrialRow,
    check_json,
    normalize_logs,
    select_logs,
)
from kubenas.metrics import now_rfc3339

__all__ = ["SqlObservationStore"]

T = TypeVar("T")


class SqlObservationStore(ObservationStore):
    MARK: ClassVar[str]  # the driver's parameter marker: "?" (sqlite3) or "%s" (psycopg)

    @abstractmethod
    def _write(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run `fn(connection)` in a write transaction; failures become StoreError(what...)."""

    @abstractmethod
    def _read(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run `fn(connection)` for reading; failures become StoreError(what...)."""

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self.MARK)

    # --- metric logs ------------------------------------------------------------------
    def report(self, trial_name: str, logs: Iterable[MetricLog | tuple[str, object, str]]) -> int:
        rows = [(trial_name, *row) for row in normalize_logs(trial_name, logs)]
        if not rows:
            return 0
        sql = self._sql("INSERT INTO observation_logs (trial_name, metric_name, value, time_stamp, time_us) "
                        "VALUES (?, ?, ?, ?, ?)")

        def insert(conn: Any) -> int:
            conn.cursor().executemany(sql, rows)
            return len(rows)

        return self._write(f"cannot report logs of trial {trial_name!r}", insert)

    def get(self, trial_name: str, metric_name: str | None = None,
            start_time: str | None = None, end_time: str | None = None) -> list[MetricLog]:
        sql, args = select_logs(self.MARK, trial_name, metric_name, start_time, end_time)
        rows = self._read(f"cannot read logs of trial {trial_name!r}",
                          lambda conn: conn.execute(sql, args).fetchall())
        return [MetricLog(*row) for row in rows]

    def delete(self, trial_name: str) -> int:
        sql = self._sql("DELETE FROM observation_logs WHERE trial_name = ?")
        return self._write(f"cannot delete logs of trial {trial_name!r}",
                           lambda conn: conn.execute(sql, (trial_name,)).rowcount)

    # --- trials and metadata ----------------------------------------------------------
    def upsert_trial(self, experiment: str, trial: TrialRow) -> None:
        data = json.dumps(trial.to_json(), sort_keys=True)
        sql = self._sql("INSERT INTO trials (experiment, name, condition, data, updated_at) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (experiment, name) DO UPDATE SET "
                        "condition = excluded.condition, data = excluded.data, updated_at = excluded.updated_at")
        self._write(f"cannot save trial {trial.name!r} of {experiment!r}", lambda conn: conn.execute(
            sql, (experiment, trial.name, trial.condition.value, data, now_rfc3339())))

    def list_trials(self, experiment: str) -> list[TrialRow]:
        sql = self._sql("SELECT data FROM trials WHERE experiment = ? ORDER BY seq")
        rows = self._read(f"cannot list trials of {experiment!r}",
                          lambda conn: conn.execute(sql, (experiment,)).fetchall())
        return [TrialRow.from_json(json.loads(data)) for (data,) in rows]

    def put_meta(self, experiment: str, key: str, value_json: str) -> None:
        check_json(value_json, f"meta {key!r} of {experiment!r}")
        sql = self._sql("INSERT INTO experiment_meta (experiment, key, value_json) VALUES (?, ?, ?) "
                        "ON CONFLICT (experiment, key) DO UPDATE SET value_json = excluded.value_json")
        self._write(f"cannot save meta {key!r} of {experiment!r}",
                    lambda conn: conn.execute(sql, (experiment, key, value_json)))

    def get_meta(self, experiment: str, key: str) -> str | None:
        sql = self._sql("SELECT value_json FROM experiment_meta WHERE experiment = ? AND key = ?")
        row = self._read(f"cannot read meta {key!r} of {experiment!r}",
                         lambda conn: conn.execute(sql, (experiment, key)).fetchone())
        return None if row is None else str(row[0])
