"""The observation store: metric logs of trials, and the trials of local experiments.

One interface, several backends: `SQLiteStore` (a file in the work directory, the
default for `kubenas run` and `kubenas db serve`) and `PostgresStore` (psycopg 3). The
DBManager gRPC service (`controller.dbmanager`) serves any of them. `open_store(url)` is
the one place that maps a URL to a backend.

Metric logs follow Katib's DBManager semantics: values are text (Katib's collector
reports the string "unavailable" when it finds nothing), a metric name of "" means all
metrics, and the RFC 3339 `start_time`/`end_time` bounds of a query are inclusive.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from kubenas import rfc3339
from kubenas.errors import InvalidValue
from kubenas.metrics import UNAVAILABLE, MetricPoint, now_rfc3339
from kubenas.trials import TrialCondition

if TYPE_CHECKING:
    from typing import Self

    from controller.dbmanager import make_dbmanager_server, serve_dbmanager
    from controller.store_postgres import PostgresStore
    from controller.store_sqlite import SQLiteStore

__all__ = [
    "InvalidLogError",
    "MetricLog",
    "ObservationStore",
    "PostgresStore",
    "SQLiteStore",
    "StoreError",
    "TrialRow",
    "make_dbmanager_server",
    "observation_json",
    "open_store",
    "parse_rfc3339",
    "serve_dbmanager",
]


class StoreError(Exception):
    """The store cannot be opened or used: a bad URL, an unwritable path, a corrupt file,
    a missing driver. The message names the URL or path."""


class InvalidLogError(InvalidValue):
    """A metric log or a query is malformed; the DBManager maps it to INVALID_ARGUMENT.

    `field` names the offending field (e.g. `metric_logs[2].time_stamp`)."""


class MetricLog(NamedTuple):
    """One reported metric value. A tuple, so `(name, value, timestamp)` works too."""

    metric_name: str
    value: str
    time_stamp: str

    def as_point(self, keep_text: bool = False) -> MetricPoint | None:
        """The numeric point, or None when the value is not a finite number ("unavailable").
        With `keep_text`, a value that is no number at all (a genotype) is a text point;
        "unavailable" and empty values still give None."""
        try:
            number = float(self.value)
        except ValueError:
            if keep_text and self.value.strip() and self.value.strip() != UNAVAILABLE:
                return MetricPoint(self.metric_name, self.value, self.time_stamp)
            return None
        return MetricPoint(self.metric_name, number, self.time_stamp) if math.isfinite(number) else None


def observation_json(observation: Mapping[str, float | str]) -> dict[str, float | str]:
    """An observation for JSON: numbers as numbers, texts as strings."""
    return {k: v if isinstance(v, str) else float(v) for k, v in observation.items()}


@dataclass(frozen=True)
class TrialRow:
    """A trial of a local experiment as the runner persists it, enough to `--resume`."""

    name: str
    assignments: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    condition: TrialCondition = TrialCondition.CREATED
    start_time: str | None = None
    completion_time: str | None = None
    # numbers, or texts for metrics captured as text (see kubenas.metrics.parse_line)
    observation: Mapping[str, float | str] = field(default_factory=dict)
    exit_code: int | None = None
    message: str = ""
    seed: int | None = None
    duration_s: float | None = None
    workdir: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "assignments": dict(self.assignments),
            "labels": dict(self.labels),
            "condition": self.condition.value,
            "start_time": self.start_time,
            "completion_time": self.completion_time,
            "observation": observation_json(self.observation),
            "exit_code": self.exit_code,
            "message": self.message,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "workdir": self.workdir,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialRow:
        return cls(
            name=str(data["name"]),
            assignments={str(k): str(v) for k, v in data.get("assignments", {}).items()},
            labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
            condition=TrialCondition(data.get("condition", TrialCondition.CREATED.value)),
            start_time=data.get("start_time"),
            completion_time=data.get("completion_time"),
            observation={str(k): v if isinstance(v, str) else float(v)
                         for k, v in data.get("observation", {}).items()},
            exit_code=None if data.get("exit_code") is None else int(data["exit_code"]),
            message=str(data.get("message", "")),
            seed=None if data.get("seed") is None else int(data["seed"]),
            duration_s=None if data.get("duration_s") is None else float(data["duration_s"]),
            workdir=str(data.get("workdir", "")),
        )


class ObservationStore(ABC):
    """Where metric logs, local trials and experiment metadata are kept.

    Implementations are safe to call from several threads at once and, for SQLite, from
    several processes on one file. A call that returned has been committed durably
    enough to survive the calling process being killed.
    """

    # --- metric logs (Katib DBManager semantics) -------------------------------------
    @abstractmethod
    def report(self, trial_name: str, logs: Iterable[MetricLog | tuple[str, object, str]]) -> int:
        """Append metric logs of a trial in one transaction; returns how many were stored.

        An empty time stamp is stamped with the current time; a malformed one raises
        `InvalidLogError` and nothing of the batch is stored."""

    @abstractmethod
    def get(
        self,
        trial_name: str,
        metric_name: str | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
    ) -> list[MetricLog]:
        """The trial's logs in time order (insertion order among equal times).

        `metric_name` None or "" means every metric; the time bounds are inclusive RFC 3339
        (None or "" means unbounded)."""

    @abstractmethod
    def delete(self, trial_name: str) -> int:
        """Delete every log of a trial; returns how many were deleted."""

    # --- trials of local experiments --------------------------------------------------
    @abstractmethod
    def upsert_trial(self, experiment: str, trial: TrialRow) -> None:
        """Insert or replace a trial by name; its position in `list_trials` is kept."""

    @abstractmethod
    def list_trials(self, experiment: str) -> list[TrialRow]:
        """Every trial of an experiment in the order they were first inserted."""

    # --- experiment-level key/value ---------------------------------------------------
    @abstractmethod
    def put_meta(self, experiment: str, key: str, value_json: str) -> None:
        """Store a JSON document under (experiment, key); it must be valid JSON."""

    @abstractmethod
    def get_meta(self, experiment: str, key: str) -> str | None:
        """The JSON document stored under (experiment, key), or None."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- helpers shared by the backends ---------------------------------------------------

def parse_rfc3339(text: str, field_name: str = "time_stamp") -> int:
    """Microseconds since the epoch (UTC) of an RFC 3339 time; nanoseconds are truncated."""
    try:
        return rfc3339.to_micros(rfc3339.parse(text))
    except rfc3339.TimeFormatError as exc:
        raise InvalidLogError(field_name, text, exc.reason) from None


def normalize_logs(
    trial_name: str, logs: Iterable[MetricLog | tuple[str, object, str]]
) -> list[tuple[str, str, str, int]]:
    """Validate a batch: rows of (metric_name, value text, time_stamp text, time in µs)."""
    if not trial_name:
        raise InvalidLogError("trial_name", trial_name, "must not be empty")
    rows = []
    for i, log in enumerate(logs):
        try:
            name, value, stamp = log
        except (TypeError, ValueError):
            raise InvalidLogError(f"metric_logs[{i}]", log,
                                  "expected (metric name, value, time stamp)") from None
        if not name or not isinstance(name, str):
            raise InvalidLogError(f"metric_logs[{i}].metric.name", name, "must not be empty")
        if isinstance(value, str):
            text = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            text = repr(float(value))
        else:
            raise InvalidLogError(f"metric_logs[{i}].metric.value", value, "expected a string or a number")
        stamp = stamp or now_rfc3339()
        rows.append((name, text, stamp, parse_rfc3339(stamp, f"metric_logs[{i}].time_stamp")))
    return rows


def time_bounds(start_time: str | None, end_time: str | None) -> tuple[int | None, int | None]:
    start = parse_rfc3339(start_time, "start_time") if start_time else None
    end = parse_rfc3339(end_time, "end_time") if end_time else None
    return start, end


def select_logs(mark: str, trial_name: str, metric_name: str | None,
                start_time: str | None, end_time: str | None) -> tuple[str, list[object]]:
    """The one query both SQL stores run for GetObservationLog; `mark` is the driver's
    placeholder (`?` for sqlite3, `%s` for psycopg). Bounds are inclusive, as in Katib."""
    start, end = time_bounds(start_time, end_time)
    sql = f"SELECT metric_name, value, time_stamp FROM observation_logs WHERE trial_name = {mark}"
    args: list[object] = [trial_name]
    for clause, value in (("metric_name =", metric_name or None), ("time_us >=", start), ("time_us <=", end)):
        if value is not None:
            sql += f" AND {clause} {mark}"
            args.append(value)
    return sql + " ORDER BY time_us, id", args


def check_json(value_json: str, where: str) -> None:
    try:
        json.loads(value_json)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{where}: value is not valid JSON ({exc}): {value_json!r:.80}") from None


# --- URL -> backend -------------------------------------------------------------------

def _open_sqlite(url: str) -> ObservationStore:
    from controller.store_sqlite import SQLiteStore, sqlite_path_from_url

    return SQLiteStore(sqlite_path_from_url(url))


def _open_postgres(url: str) -> ObservationStore:
    from controller.store_postgres import PostgresStore

    return PostgresStore(url)


_BACKENDS: dict[str, Callable[[str], ObservationStore]] = {
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def open_store(url: str) -> ObservationStore:
    """Open a store from `sqlite:///relative.db`, `sqlite:////abs.db`, a plain path, or
    `postgresql://user:pass@host/db`. Raises `StoreError` naming the URL."""
    if not url or not url.strip():
        raise StoreError("empty store URL; expected sqlite:///PATH, a file path or postgresql://...")
    scheme, sep, _ = url.partition("://")
    if not sep:
        return _open_sqlite(url)
    opener = _BACKENDS.get(scheme.lower())
    if opener is None:
        raise StoreError(f"{url!r}: unknown scheme {scheme!r}; expected one of "
                         f"{', '.join(s + '://' for s in _BACKENDS)} or a file path")
    return opener(url)


# Lazy re-exports: the backends import this module, and importing grpc or psycopg must not
# be the price of reading a TrialRow.
_LAZY = {
    "SQLiteStore": "controller.store_sqlite",
    "PostgresStore": "controller.store_postgres",
    "make_dbmanager_server": "controller.dbmanager",
    "serve_dbmanager": "controller.dbmanager",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
