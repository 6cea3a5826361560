"""One bench run: an algorithm searches NB201 on one dataset with one seed, over gRPC.

This is the controller's loop with the tabular trial in place of a process: ask the
suggestion server for `parallel` trials with the full history (every trial SUCCEEDED with
its `val_acc` observation, exactly what `kubenas run` sends), answer each from the table,
advance the simulated clock, repeat until the query or time budget is spent.

Parallel trials run as synchronous batches: a batch of workers starts together and the
next request waits for the slowest, so the clock advances by the batch's longest training
time. A batch that would end after the time budget is not counted (NB201's rule for its
own searches: a query that does not finish within the budget does not count).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.grpc_clients import SuggestionClient, SuggestionServerError
from kubenas import rfc3339
from kubenas.api.v1beta1 import api_pb2
from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.proto_convert import trial_to_proto
from kubenas.space import SpaceError
from kubenas.trials import TrialCondition, TrialRecord
from kubenas_bench.nb201.config import BenchConfig, BenchError, Dataset
from kubenas_bench.nb201.experiment import OBJECTIVE, bench_experiment, run_settings
from kubenas_bench.nb201.tabular import Nb201Table

__all__ = ["ARCHITECTURE", "Query", "RunResult", "run_name", "search"]

log = logging.getLogger(__name__)

ARCHITECTURE = "architecture"


@dataclass(frozen=True)
class Query:
    """One tabular trial as the bench records it (see README.md, results.json)."""

    index: int                # 1-based, in the order the algorithm suggested
    trial: str
    architecture: str
    key: str                  # the table key, e.g. "333132"
    connected: bool           # False: no path from input to output (the table scores it anyway)
    val_acc: float            # what the algorithm was told (one training seed)
    mean_val_acc: float       # the table's mean over seeds (ground truth)
    train_time_s: float       # charged to the simulated clock (x time scale)
    sim_time_s: float         # simulated clock when this query's batch finished
    best_so_far: float        # best val_acc the algorithm has seen (monotone)
    incumbent_mean: float     # mean_val_acc of the cell with that best val_acc

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "trial": self.trial, "architecture": self.architecture, "key": self.key,
            "connected": self.connected, "val_acc": self.val_acc, "mean_val_acc": round(self.mean_val_acc, 6),
            "train_time_s": round(self.train_time_s, 3), "sim_time_s": round(self.sim_time_s, 3),
            "best_so_far": self.best_so_far, "incumbent_mean": round(self.incumbent_mean, 6),
        }


@dataclass(frozen=True)
class RunResult:
    """A whole run: its identity, the settings sent, its trajectory and how it stopped."""

    dataset: Dataset
    algorithm: str
    seed: int
    experiment: str
    settings: Mapping[str, str]
    queries: tuple[Query, ...]
    stopped_by: str           # "queries" | "time" | "exhausted"
    wall_s: float

    @property
    def sim_time_s(self) -> float:
        return self.queries[-1].sim_time_s if self.queries else 0.0

    def to_json(self) -> dict[str, Any]:
        final = self.queries[-1] if self.queries else None
        return {
            "dataset": self.dataset.name, "algorithm": self.algorithm, "seed": self.seed,
            "tabular_seed": self.seed, "experiment": self.experiment, "settings": dict(self.settings),
            "queries": len(self.queries), "stopped_by": self.stopped_by,
            "sim_time_s": round(self.sim_time_s, 3), "wall_s": round(self.wall_s, 3),
            "best_val_acc": final.best_so_far if final else None,
            "incumbent_mean": round(final.incumbent_mean, 6) if final else None,
            "distinct_cells": len({q.key for q in self.queries}),
            "trajectory": [q.to_json() for q in self.queries],
        }


def run_name(dataset: Dataset, algorithm: str, seed: int) -> str:
    """The experiment name of one run: a DNS label, unique per (dataset, algorithm, seed),
    so stateful algorithms (ENAS) keep one state per run on a shared server."""
    return f"nb201-{dataset.name}-{algorithm}-s{seed}"


def _sim_timestamp(seconds: float) -> str:
    """RFC 3339 of a simulated clock reading, counted from the Unix epoch."""
    return rfc3339.format_time(datetime.fromtimestamp(seconds, UTC))


def _cell(assignments: Mapping[str, str], algorithm: str) -> Cell201:
    text = assignments.get(ARCHITECTURE)
    try:
        if text is None:
            raise SpaceError(ARCHITECTURE, sorted(assignments), "an NB201 suggestion carries an architecture")
        cell = Cell201.from_string(text)
        cell.table_key(NB201_PRIMITIVES)
    except SpaceError as exc:
        raise BenchError(f"algorithm {algorithm!r} suggested an assignment the NB201 table cannot answer: {exc}") from None
    return cell


def _suggest(client: SuggestionClient, experiment: api_pb2.Experiment, history: list[api_pb2.Trial], n: int,
             algorithm: str, log_hint: str) -> tuple[api_pb2.GetSuggestionsReply.ParameterAssignments, ...] | None:
    try:
        reply = client.suggest(experiment, history, n, len(history) + n)
    except SuggestionServerError as exc:
        code = exc.code.name if exc.code is not None else "error"
        raise BenchError(f"GetSuggestions for {experiment.name} failed ({code}) in algorithm {algorithm!r}: {exc}; "
                         f"see {log_hint}") from None
    return None if reply.exhausted or not reply.assignments else reply.assignments[:n]


def search(client: SuggestionClient, table: Nb201Table, algorithm: str, seed: int, config: BenchConfig,
           log_hint: str = "the suggestion server's log") -> RunResult:
    """Run one (dataset, algorithm, seed) to its budget; `table` is reseeded with `seed`."""
    started = time.monotonic()
    dataset = table.dataset
    name = run_name(dataset, algorithm, seed)
    settings = run_settings(seed, config.settings.get(algorithm, {}))
    experiment = bench_experiment(name, algorithm, settings, config.parallel, config.query_cap)
    table.reseed(seed)
    history: list[api_pb2.Trial] = []
    queries: list[Query] = []
    clock, best, incumbent = 0.0, float("-inf"), 0.0
    stopped_by = "queries"
    while len(queries) < config.query_cap:
        n = min(config.parallel, config.query_cap - len(queries))
        items = _suggest(client, experiment, history, n, algorithm, log_hint)
        if items is None:
            stopped_by = "exhausted"
            break
        batch = []
        for item in items:
            assignments = {a.name: a.value for a in item.assignments}
            cell = _cell(assignments, algorithm)
            batch.append((item, assignments, cell, table.evaluate(cell)))
        end = clock + max(e.train_time_s for *_, e in batch) * config.time_scale
        if config.budget_seconds is not None and end > config.budget_seconds:
            stopped_by = "time"
            break
        clock = end
        for item, assignments, cell, evaluation in batch:
            index = len(queries) + 1
            trial = item.trial_name or f"{name}-{index:05d}"
            if evaluation.val_acc > best:
                best, incumbent = evaluation.val_acc, evaluation.mean_val_acc
            queries.append(Query(index, trial, cell.to_string(), cell.table_key(NB201_PRIMITIVES), cell.connected(),
                                 evaluation.val_acc, evaluation.mean_val_acc,
                                 evaluation.train_time_s * config.time_scale, clock, best, incumbent))
            record = TrialRecord(trial, assignments, TrialCondition.SUCCEEDED, {OBJECTIVE.metric_name: evaluation.val_acc},
                                 labels=dict(item.labels))
            proto = trial_to_proto(record, OBJECTIVE)
            # simulated, from the epoch: orders the history by age for aging evolution
            proto.status.completion_time = _sim_timestamp(clock)
            history.append(proto)
    result = RunResult(dataset, algorithm, seed, name, settings, tuple(queries), stopped_by, time.monotonic() - started)
    log.info("%s: %d queries, best val_acc %.2f (incumbent mean %.2f), %.1fs", name, len(queries), best, incumbent,
             result.wall_s)
    return result
