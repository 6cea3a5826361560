"""Early stopping in a local run: the current rules from the EarlyStopping service, applied to
each running trial's metrics as they arrive (see `RunningTrial.judge`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from controller.grpc_clients import EarlyStoppingClient, SuggestionServerError
from controller.local.running_trial import RunningTrial, describe_rule
from controller.store import MetricLog, ObservationStore
from kubenas.early_stopping import StopRule, StopWatch
from kubenas.proto_convert import trial_to_proto
from kubenas.trials import Objective, TrialRecord

__all__ = ["EarlyStopping"]

log = logging.getLogger(__name__)


class EarlyStopping:
    """The rules in force. Asked for at start and again whenever a trial completes (`stale`);
    with no spec.earlyStopping (`client` None) there are none and nothing is asked."""

    def __init__(self, client: EarlyStoppingClient | None, experiment: Any, objective: Objective,
                 store: ObservationStore, note: Callable[[str], None] = lambda _text: None) -> None:
        # `experiment` is the Experiment message the rules are asked for.
        self.client, self.experiment, self.objective, self.store, self.note = client, experiment, objective, store, note
        self.rules: tuple[StopRule, ...] = ()
        self.stale = client is not None

    def trial_completed(self) -> None:
        self.stale = self.client is not None

    def watch(self) -> StopWatch | None:
        """A watch over the current rules for a trial starting now; None without rules."""
        return StopWatch(self.rules, self.objective) if self.rules else None

    def refresh(self, records: Sequence[TrialRecord], running: Iterable[RunningTrial]) -> None:
        """Ask the service for the current rules if stale; apply new ones to running trials too."""
        if self.client is None or not self.stale:
            return
        self.stale = False
        history = [trial_to_proto(r, self.objective) for r in records]
        try:
            rules = self.client.rules(self.experiment, history)
        except SuggestionServerError as exc:
            # Early stopping saves time; losing it for a while must not end the run. Asked again
            # when the next trial completes.
            log.warning("GetEarlyStoppingRules failed (%s): %s; keeping the previous rules", exc.code, exc)
            self.note(f"early stopping rules unavailable ({exc}); keeping the previous ones")
            return
        if rules == self.rules:
            return
        self.rules = rules
        self.note("early stopping rules: " + (", ".join(map(describe_rule, rules)) or "none"))
        for trial in list(running):
            if trial.early_stop is not None:
                continue
            trial.watch = self.watch()
            if trial.watch is None:
                continue
            # What the trial reported so far, from the store, judged by the new rules.
            logs = self.store.get(trial.name)
            trial.pushed = len(logs)
            trial.judge(_metrics(logs))

    def watch_pushed(self, running: Iterable[RunningTrial]) -> None:
        """Push trials report straight to the DBManager: their new store logs go to their watch."""
        if not self.rules:
            return
        for trial in list(running):
            if trial.watch is None or trial.early_stop is not None:
                continue
            logs = self.store.get(trial.name)
            fresh, trial.pushed = logs[trial.pushed:], len(logs)
            trial.judge(_metrics(fresh))


def _metrics(logs: Iterable[MetricLog]) -> Iterable[tuple[str, float | str]]:
    points = (log_.as_point() for log_ in logs)
    return ((p.name, p.value) for p in points if p is not None)
