"""Metric collection in a local run: trial output from the bounded event queue to the
collectors, the store, the live view, the observation fold and the early-stopping watch.

The trials' reader threads feed one bounded queue (see `controller.local.processes`); only
the runner's thread takes from it, so collectors and the store see one thread. Each pass
is time-bounded, so an interrupt is acted on within a second whatever the trials print.
"""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from controller.collector import (
    CollectionError,
    FileCollector,
    StdoutCollector,
    observation_from_log,
)
from controller.local.observation_fold import ObservationFold
from controller.local.plan import TrialPlan
from controller.local.processes import TrialEvent, TrialProcess, stop_escaped
from controller.local.running_trial import RunningTrial
from controller.progress import Progress
from controller.store import MetricLog, ObservationStore, TrialRow
from kubenas.early_stopping import StopWatch
from kubenas.metrics import MetricPoint
from kubenas.trials import Objective

__all__ = ["PASS_BUDGET_S", "MetricCollection"]

# Longest time one pass spends on queued output before the runner looks at signals again.
PASS_BUDGET_S = 0.5
# Lines that mention a metric without a value it could parse, kept for the trial's message.
_UNPARSED_KEPT = 3


class MetricCollection:
    """Collects the metrics of the running trials (`running`, shared with the runner)."""

    def __init__(self, events: queue.Queue[TrialEvent], running: Mapping[str, RunningTrial], plan: TrialPlan,
                 objective: Objective, store: ObservationStore, progress: Progress) -> None:
        self.events, self.running, self.plan = events, running, plan
        self.objective, self.store, self.progress = objective, store, progress
        self.metric_names = objective.metric_names
        self._mentions = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in self.metric_names) + r")\s*=")

    def track(self, process: TrialProcess, row: TrialRow, gpu: str | None, metrics_file: Path | None,
              watch: StopWatch | None) -> RunningTrial:
        """A started trial with the collectors its plan asks for."""
        plan = self.plan
        stdout = StdoutCollector(self.metric_names, plan.metrics_format or None) if plan.collector == "StdOut" else None
        file = None if metrics_file is None else FileCollector(metrics_file, self.metric_names,
                                                               plan.metrics_format or None, plan.file_format)
        return RunningTrial(process, row, stdout, file, gpu, watch=watch,
                            observed=ObservationFold(self.objective) if plan.collector != "Push" else None)

    def take_output(self, timeout: float, interrupted: Callable[[], bool]) -> None:
        """Handle queued output for up to PASS_BUDGET_S (waiting up to `timeout` for the first
        piece, stopping early when `interrupted()`), then poll the metrics files."""
        deadline = time.monotonic() + PASS_BUDGET_S
        try:
            event = self.events.get(timeout=timeout)
            while True:
                self.handle(event)
                if time.monotonic() > deadline or interrupted():
                    break
                event = self.events.get_nowait()
        except queue.Empty:
            pass
        for trial in list(self.running.values()):
            if trial.file is not None:
                try:
                    self.report(trial, trial.file.poll())
                except CollectionError as exc:
                    trial.collection_failed(str(exc))

    def handle(self, event: TrialEvent) -> None:
        """One piece of a trial's output (or its end): to its collector, the store, the watch."""
        trial = self.running.get(event.trial)
        if trial is None:
            return  # a wake-up, or output of a trial already finished
        trial.handled += 1
        if event.line is None:
            trial.eof = True
            return
        if trial.stdout is None:
            return
        try:
            found = trial.stdout.feed(event.line)
        except CollectionError as exc:
            trial.collection_failed(str(exc))
            return
        # (the substring test first: the regex, anchored by a look-behind, scans every position)
        mention = self._mentions.search(event.line) if not found and len(trial.unparsed) < _UNPARSED_KEPT and any(
            name in event.line for name in self.metric_names) else None
        if mention:
            start = event.line.rfind("\n", 0, mention.start()) + 1
            trial.unparsed.append(event.line[start:].split("\n", 1)[0].strip()[:120])
        self.report(trial, found)

    def report(self, trial: RunningTrial, found: list[MetricPoint]) -> None:
        if not found:
            return
        self.store.report(trial.name, [MetricLog(p.name, p.stored_value(), p.timestamp) for p in found])
        self.progress.points(trial.name, found)
        if trial.observed is not None:
            trial.observed.feed(found)
        trial.judge((p.name, p.value) for p in found)

    def conclude(self, trial: RunningTrial) -> dict[str, float | str]:
        """The observation of a trial whose process has exited: its remaining output handled,
        its collectors closed. A collector that fails now fails the trial (`collect_error`)."""
        if not self._drain(trial, 1.0):
            stop_escaped(trial.name)  # something outside the group still holds the output open
            self._drain(trial, 1.0)
        try:
            if trial.stdout is not None:
                self.report(trial, trial.stdout.close())
            if trial.file is not None:
                self.report(trial, trial.file.close())
        except CollectionError as exc:
            trial.collect_error = trial.collect_error or str(exc)
        if trial.observed is not None and trial.observed.in_order:
            return trial.observed.value
        # Push (the trial reports to the store itself) or time stamps out of order
        return observation_from_log(self.objective, self.store.get(trial.name), keep_text=bool(self.plan.metrics_format))

    def _drain(self, trial: RunningTrial, timeout: float) -> bool:
        """Handle queued output (this trial's, and others' met on the way) until this trial's
        output ends; False if it did not within `timeout` (something still holds it open).
        The queue is bounded, so the reader may be waiting for room: it is taken, not joined."""
        deadline = time.monotonic() + timeout
        while not trial.eof:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return False
            try:
                self.handle(self.events.get(timeout=min(wait, 0.05)))
            except queue.Empty:
                if trial.process.join_output(0):
                    trial.eof = True  # its end event was taken by an earlier pass
        return True
