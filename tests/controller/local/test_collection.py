"""controller.local.collection: output to collectors, real SQLite, the fold and the watch."""

from __future__ import annotations

import io
import json
import queue
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from controller.local.collection import MetricCollection
from controller.local.plan import TrialPlan
from controller.local.processes import LaunchSpec, TrialEvent
from controller.local.running_trial import RunningTrial
from controller.progress import Progress
from controller.store import MetricLog, ObservationStore, TrialRow, open_store
from kubenas.early_stopping import Comparison, StopRule, StopWatch
from kubenas.trials import Objective, ObjectiveType, TrialCondition
from tests.controller.local.parts import FakeChildProcess

LOSS = Objective(ObjectiveType.MINIMIZE, "loss", additional_metric_names=("acc",))
PLAN = TrialPlan(container={}, env={}, kind="Job", api_version="batch/v1", namespace="default",
                 collector="StdOut", metrics_format=(), file_path="", file_format="TEXT")


class Parts:
    def __init__(self, store: ObservationStore, tmp_path: Path, plan: TrialPlan = PLAN) -> None:
        self.tmp_path, self.store = tmp_path, store
        self.events: queue.Queue[TrialEvent] = queue.Queue(maxsize=32)
        self.running: dict[str, RunningTrial] = {}
        self.progress = Progress(Console(file=io.StringIO(), width=200), "exp", LOSS, 4)
        self.collection = MetricCollection(self.events, self.running, plan, LOSS, store, self.progress)

    def start(self, name: str, metrics_file: Path | None = None, watch: StopWatch | None = None
              ) -> tuple[RunningTrial, FakeChildProcess]:
        spec = LaunchSpec(argv=("python",), env={}, cwd=str(self.tmp_path), log_path=self.tmp_path / "log")
        process = FakeChildProcess(name, spec, self.events)
        row = TrialRow(name=name, assignments={}, condition=TrialCondition.RUNNING)
        trial = self.collection.track(process, row, None, metrics_file, watch)  # type: ignore[arg-type]
        self.running[name] = trial
        return trial, process


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObservationStore]:
    with open_store(str(tmp_path / "kubenas.db")) as opened:
        yield opened


def _values(store: ObservationStore, name: str) -> list[tuple[str, Any]]:
    return [(log.metric_name, log.value) for log in store.get(name)]


def test_output_reaches_the_store_and_the_fold_and_a_partial_line_waits(store: ObservationStore,
                                                                        tmp_path: Path) -> None:
    parts = Parts(store, tmp_path)
    trial, process = parts.start("t1")
    process.emit("epoch 1\nloss=0.5 acc=0.7\nloss=0.")
    process.emit("25\n")
    process.events.put(TrialEvent("", None))  # a wake-up from the suggestion feed: no trial
    process.emit("loss=0.4")
    parts.collection.take_output(0.1, lambda: False)
    assert trial.handled == 3 and process.posted == 3
    assert _values(store, "t1") == [("loss", "0.5"), ("acc", "0.7"), ("loss", "0.25")]
    process.exit(0)
    process.end_output()
    assert parts.collection.conclude(trial) == {"loss": 0.25, "acc": 0.7}  # the minimum of loss
    assert trial.eof and _values(store, "t1")[-1] == ("loss", "0.4")  # the last line, at close


def test_a_pass_stops_at_an_interrupt_and_leaves_the_rest_queued(store: ObservationStore, tmp_path: Path) -> None:
    parts = Parts(store, tmp_path)
    trial, process = parts.start("t1")
    for i in range(5):
        process.emit(f"loss={i}\n")
    parts.collection.take_output(0.1, lambda: True)
    assert trial.handled == 1 and parts.events.qsize() == 4 and trial.output_queued()


def test_a_mention_without_a_number_is_kept_for_the_message(store: ObservationStore, tmp_path: Path) -> None:
    parts = Parts(store, tmp_path)
    trial, process = parts.start("t1")
    process.emit("x\nloss=nan-ish here\n")
    process.emit("my-loss=oops\n")  # part of another name: not a mention
    process.end_output()
    process.exit(0)
    assert parts.collection.conclude(trial) == {}
    assert trial.unparsed == ["loss=nan-ish here"]
    assert trial.message(TrialCondition.METRICS_UNAVAILABLE, 0, LOSS).endswith("'loss=nan-ish here'")


def test_metrics_judged_by_the_watch_stop_the_trial_early(store: ObservationStore, tmp_path: Path) -> None:
    parts = Parts(store, tmp_path)
    watch = StopWatch((StopRule("acc", 0.5, Comparison.LESS, start_step=2),), LOSS)
    trial, process = parts.start("t1", watch=watch)
    process.emit("acc=0.1\n")
    process.emit("acc=0.2\n")
    parts.collection.take_output(0.1, lambda: False)
    assert trial.early_stop == "stopped early: acc < 0.5 from report 2" and process.signals == [signal.SIGTERM]


def test_the_file_collector_is_polled_and_closed(store: ObservationStore, tmp_path: Path) -> None:
    plan = replace(PLAN, collector="File", file_path="m.json", file_format="JSON")
    parts = Parts(store, tmp_path, plan)
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"loss": "0.3"}) + "\n")
    trial, process = parts.start("t1", metrics_file=path)
    assert trial.stdout is None and trial.file is not None
    process.emit("loss=0.01\n")  # stdout is not read with the File collector
    parts.collection.take_output(0.05, lambda: False)
    assert _values(store, "t1") == [("loss", "0.3")]
    with path.open("a") as out:
        out.write(json.dumps({"loss": "0.2"}) + "\n")
    process.end_output()
    process.exit(0)
    assert parts.collection.conclude(trial) == {"loss": 0.2}


def test_push_trials_are_observed_from_the_store(store: ObservationStore, tmp_path: Path) -> None:
    parts = Parts(store, tmp_path, replace(PLAN, collector="Push"))
    trial, process = parts.start("t1")
    assert trial.stdout is None and trial.observed is None
    store.report("t1", [MetricLog("loss", "0.6", "2026-01-01T00:00:00Z"),
                        MetricLog("loss", "0.4", "2026-01-01T00:00:01Z")])
    process.end_output()
    process.exit(0)
    assert parts.collection.conclude(trial) == {"loss": 0.4}


def test_time_stamps_out_of_order_are_reduced_from_the_store(store: ObservationStore, tmp_path: Path) -> None:
    plan = replace(PLAN, collector="File", file_path="m.json", file_format="JSON")
    parts = Parts(store, tmp_path, plan)
    path = tmp_path / "m.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in [
        {"loss": "0.1", "timestamp": "2026-01-01T00:00:05Z"},
        {"loss": "0.9", "timestamp": "2026-01-01T00:00:01Z"}]))
    trial, process = parts.start("t1", metrics_file=path)
    process.end_output()
    process.exit(0)
    observation = parts.collection.conclude(trial)
    assert trial.observed is not None and not trial.observed.in_order
    assert observation == {"loss": 0.1}
