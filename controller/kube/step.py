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

from controller.grpc_clients import SuggestionServerError
from controller.kube import status
from controller.kube.context import API, Context, experiment_selector
from controller.kube.experiment import reconcile_experiment
from controller.kube.suggestion import reconcile_suggestion
from controller.kube.trial import reconcile_trial
from kubenas.trials import TrialCondition

__all__ = ["CountingApi", "Step", "experiment_step", "next_step"]

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

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._api, attr)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                self.writes += attr in self._WRITES
            return target(*args, **kwargs)

        return counted


class ListedWorkloads:
    """The Api, but the experiment's Jobs and pods are listed once per step (on first use) and
    each trial's `get` of its Job and `list_pods` are answered from those listings: two calls
    per step instead of two per trial. Everything else goes to the API server."""

    def __init__(self, api: Any, namespace: str, experiment: str) -> None:
        self._api = api
        self._namespace = namespace
        self._selector = experiment_selector(experiment)
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] | None = None
        self._pods: list[dict[str, Any]] | None = None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._api, attr)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if (api_version, kind) != ("batch/v1", "Job") or namespace != self._namespace:
            return self._api.get(api_version, kind, namespace, name)  # type: ignore[no-any-return]
        with self._lock:
            if self._jobs is None:
                listed = self._api.list_objects("batch/v1", "Job", namespace, self._selector)
                self._jobs = {j["metadata"]["name"]: j for j in listed}
            return self._jobs.get(name)

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        if namespace != self._namespace:
            return self._api.list_pods(namespace, label_selector)  # type: ignore[no-any-return]
        with self._lock:
            if self._pods is None:
                self._pods = self._api.list_pods(namespace, self._selector)
        label, _, value = label_selector.partition("=")
        return [p for p in self._pods if (p["metadata"].get("labels") or {}).get(label) == value]


def _active(trial: Mapping[str, Any]) -> bool:
    return status.latest_condition((trial.get("status") or {}).get("conditions")) not in _FINISHED_TRIAL


def _reconcile_trials(ctx: Context, trials: list[dict[str, Any]], listed: bool,
                      pool: ThreadPoolExecutor | None) -> None:
    if pool is None:
        for trial in trials:
            reconcile_trial(ctx, trial, listed)
    else:
        for done in [pool.submit(reconcile_trial, ctx, t, listed) for t in trials]:
            done.result()


def experiment_step(ctx: Context, namespace: str, name: str, interval: float,
                    pool: ThreadPoolExecutor | None = None) -> Step:
    """Reconcile experiment `namespace/name`, its Suggestion and each active Trial once.

    In the order that lets one step finish a round: running Trials first (the finished ones
    are collected), then the Experiment (status, requests), the Suggestion (new suggestions),
    and the Experiment again with its new Trials' workloads. `interval`: seconds until the
    next look while trials run (their logs are read for live observations and early
    stopping). `pool` reconciles Trials side by side (each is independent of the others).
    """
    api = CountingApi(ctx.api)
    step_ctx = dataclasses.replace(ctx, api=api)
    experiment = api.get(API, "Experiment", namespace, name)
    if experiment is None or experiment["metadata"].get("deletionTimestamp"):
        return Step(delay=interval, calls=api.calls)
    selector = experiment_selector(name)
    everything = api.list_objects(API, "Trial", namespace, selector)
    active = [t for t in everything if _active(t)]
    trial_ctx = dataclasses.replace(step_ctx, api=ListedWorkloads(api, namespace, name))
    _reconcile_trials(trial_ctx, active, True, pool)
    trials = api.list_objects(API, "Trial", namespace, selector) if active else everything
    made = reconcile_experiment(step_ctx, experiment, listed=True, trials=trials)
    waiting = _suggest(step_ctx, experiment, trials, made)
    # New Trials get their workloads (their bodies are as the API server just returned them).
    _reconcile_trials(step_ctx, [t for t in made if _active(t)], True, pool)
    finished = status.is_finished((experiment.get("status") or {}).get("conditions"))
    return next_step(interval, api.writes, api.calls, waiting, idle=finished and not active)


def _suggest(ctx: Context, experiment: Mapping[str, Any], trials: list[dict[str, Any]],
             made: list[dict[str, Any]]) -> str | None:
    """The Suggestion step, then, when it brought new suggestions, the Experiment step again
    to make their Trials now, not a step later (appended to `made`). Returns what the
    experiment waits for, or None."""
    namespace, name = experiment["metadata"]["namespace"], experiment["metadata"]["name"]
    suggestion = ctx.api.get(API, "Suggestion", namespace, name)
    if suggestion is None:
        return None
    recorded = status.suggestion_count(suggestion.get("status") or {})
    try:
        if not reconcile_suggestion(ctx, suggestion, listed=True, experiment=experiment, trials=trials + made):
            return "the suggestion Deployment to be ready"
    except SuggestionServerError as exc:
        return f"the suggestion server ({exc.code.name if exc.code else 'error'}: {exc})"
    fresh = ctx.api.get(API, "Suggestion", namespace, name)
    if fresh is not None and status.suggestion_count(fresh.get("status") or {}) > recorded:
        again = ctx.api.get(API, "Experiment", namespace, name)
        if again is not None:
            made.extend(reconcile_experiment(ctx, again, listed=True, trials=trials + made))
    return None


def next_step(interval: float, writes: int, calls: int, waiting: str | None, idle: bool) -> Step:
    """When to step again: at once after a write (it may have enabled more), soon while the
    suggestion Deployment starts, after a back-off while its server cannot be reached, rarely
    for a finished experiment with nothing active (an edit of its budget arrives as an event),
    else after `interval`."""
    if writes:
        return Step(delay=0.0, writes=writes, calls=calls, waiting=waiting)
    if waiting is not None:
        return Step(delay=READY_POLL_S if "Deployment" in waiting else max(interval, 5.0), calls=calls, waiting=waiting)
    return Step(delay=max(interval, 60.0) if idle else interval, calls=calls)
