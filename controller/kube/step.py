"""One step of an experiment: the Experiment, its Suggestion and its active Trials, in order.

The operator runs one step at a time per experiment (never two at once, so no two
GetSuggestions calls for one Suggestion overlap), in a worker thread so that the event loop,
and with it the liveness probe, always answers. A step that wrote anything is followed by
another at once: new suggestions become Trials, new Trials get their Jobs, without waiting
for a timer. Otherwise the next step comes on an event (a Trial or Job changed) or after
`Step.delay` seconds, whichever is first.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from controller.kube import render, status
from controller.kube.reconcile import (
    API,
    Context,
    reconcile_experiment,
    reconcile_suggestion,
    reconcile_trial,
)
from controller.local_suggestion import SuggestionServerError
from kubenas.trials import TrialCondition

__all__ = ["CountingApi", "Step", "experiment_step"]

log = logging.getLogger(__name__)

_FINISHED_TRIAL = {c.value for c in TrialCondition if c.finished}
#: How soon to look again while the suggestion server starts (a Deployment event is not watched).
READY_POLL_S = 1.0


@dataclass(frozen=True)
class Step:
    """What a step did: API writes made, and how long until the next step unless an event comes.
    `waiting` names what the experiment waits for (logged at INFO: a wait is no error)."""

    delay: float
    writes: int = 0
    calls: int = 0
    waiting: str | None = None


class CountingApi:
    """The Api with a count of calls and of writes (create, patch, delete) made through it."""

    _WRITES = frozenset({"create", "delete", "patch_status", "patch_spec"})

    def __init__(self, api: Any) -> None:
        self._api = api
        self._lock = threading.Lock()
        self.calls = 0
        self.writes = 0
        self.trial_writes = 0  # writes of a Trial (or its status) so far

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._api, attr)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                self.writes += attr in self._WRITES
                self.trial_writes += attr in self._WRITES and "Trial" in args[:2]
            return target(*args, **kwargs)

        return counted


def _active(trial: Mapping[str, Any]) -> bool:
    return status.latest_condition((trial.get("status") or {}).get("conditions")) not in _FINISHED_TRIAL


def experiment_step(ctx: Context, namespace: str, name: str, interval: float,
                    pool: ThreadPoolExecutor | None = None) -> Step:
    """Reconcile experiment `namespace/name`, its Suggestion and each active Trial once.

    `interval`: seconds until the next look while trials run (their logs are read for live
    observations and early stopping). `pool` reconciles Trials side by side (each Trial is
    independent of the others); without one they go one after another.
    """
    api = CountingApi(ctx.api)
    step_ctx = dataclasses.replace(ctx, api=api)
    experiment = api.get(API, "Experiment", namespace, name)
    if experiment is None or experiment["metadata"].get("deletionTimestamp"):
        return Step(delay=interval, calls=api.calls)
    # One listing serves the whole step: the Suggestion's status records what this step's
    # Experiment pass makes, so the history stays complete without a second read.
    trials = api.list_objects(API, "Trial", namespace, f"{render.EXPERIMENT_LABEL}={name}")
    made = reconcile_experiment(step_ctx, experiment, listed=True, trials=trials)
    # The Experiment pass wrote Trials only to kill some: then the listed bodies are stale.
    listed = api.trial_writes == 0
    waiting = None
    suggestion = api.get(API, "Suggestion", namespace, name)
    if suggestion is not None:
        try:
            if not reconcile_suggestion(step_ctx, suggestion, listed=True, experiment=experiment, trials=trials):
                waiting = "the suggestion Deployment to be ready"
        except SuggestionServerError as exc:
            waiting = f"the suggestion server ({exc.code.name if exc.code else 'error'}: {exc})"
    active = [t for t in trials + made if _active(t)]
    if pool is None:
        for trial in active:
            reconcile_trial(step_ctx, trial, listed)
    else:
        for done in [pool.submit(reconcile_trial, step_ctx, t, listed) for t in active]:
            done.result()
    if api.writes:
        return Step(delay=0.0, writes=api.writes, calls=api.calls, waiting=waiting)
    if waiting is not None:
        return Step(delay=READY_POLL_S if "Deployment" in waiting else max(interval, 5.0),
                    calls=api.calls, waiting=waiting)
    finished = status.is_finished((experiment.get("status") or {}).get("conditions"))
    # A finished experiment has nothing to poll; an edit of its budget arrives as an event.
    return Step(delay=max(interval, 60.0) if finished and not active else interval, calls=api.calls)
