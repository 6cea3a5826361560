"""The Experiment: its status from the Trials, its Suggestion asked for what is missing, Trials
made from the Suggestion's recorded assignments, and the end as resumePolicy says.

Level-based and idempotent: every step recomputes from what the API server holds, so a
controller restart resumes each experiment where it was. What to do is one pure function,
`plan_experiment` (over `controller.logic`, which `kubenas run` decides with too);
`reconcile_experiment` reads, plans and writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.kube import render, status
from controller.kube.context import (
    API,
    Context,
    experiment_selector,
    fresh,
    load_experiment,
    ns_name,
)
from controller.kube.suggestion import delete_server, failure_message, release_server, reopen
from controller.kube.trial import kill_trials, new_trial
from controller.logic import (
    Outcome,
    active_limit,
    count_trials,
    experiment_outcome,
    trials_to_request,
)
from controller.template import TemplateError
from kubenas.experiment import Experiment, SpecError
from kubenas.trials import TrialRecord

__all__ = ["CLUSTER_COLLECTORS", "ExperimentPlan", "cluster_problem", "plan_experiment", "reconcile_experiment"]

log = logging.getLogger(__name__)

#: Collectors the cluster runtime implements; others fail the experiment with a message.
CLUSTER_COLLECTORS = ("StdOut", "Push", "None")


# --- decisions -----------------------------------------------------------------------

@dataclass(frozen=True)
class ExperimentPlan:
    """What one reconcile of a running (or just ended) experiment does, in this order."""

    outcome: Outcome | None               # how it ended; None while it runs
    kill: int = 0                         # the newest active trials to stop ...
    kill_message: str = ""                # ... with this message
    release_server: bool = False          # ended in this step: free the suggestion server
    requests: int | None = None           # the Suggestion's spec.requests; None: make no trials now


def cluster_problem(exp: Experiment) -> str | None:
    """What the cluster runtime cannot run in an otherwise valid experiment, or None."""
    kind = exp.spec.metrics_collector_spec.collector.kind.value
    if kind not in CLUSTER_COLLECTORS:
        return (f"spec.metricsCollectorSpec.collector.kind: invalid value {kind!r}: "
                f"the kubenas controller collects {', '.join(CLUSTER_COLLECTORS)}")
    return None


def plan_experiment(exp: Experiment, records: Sequence[TrialRecord], *, exhausted: bool,
                    was_finished: bool) -> ExperimentPlan | None:
    """The plan from the Trials, whether the algorithm said it has no more suggestions, and
    whether the experiment had already ended. None: it stays as it is (Katib restarts only
    LongRunning and FromVolume experiments when an edit raises the budget).

    An experiment that ends now stops its active trials and releases its server; one whose
    parallelTrialCount or maxTrialCount was lowered stops the active trials beyond the limit
    first; otherwise the Suggestion is to hold every trial so far plus the free slots."""
    outcome = experiment_outcome(exp.objective(), exp.max_trial_count, exp.max_failed_trial_count, records,
                                 suggestions_exhausted=exhausted)
    if was_finished and outcome is None and exp.resume_policy == "Never":
        return None
    counts = count_trials(records)
    if outcome is not None:
        if was_finished:
            return ExperimentPlan(outcome)
        return ExperimentPlan(outcome, kill=counts.active, kill_message=f"experiment finished: {outcome.reason.value}",
                              release_server=True)
    surplus = counts.active - active_limit(exp.parallel_trial_count, exp.max_trial_count, counts.completed)
    if surplus > 0:
        return ExperimentPlan(None, kill=surplus, kill_message="parallelTrialCount or maxTrialCount lowered")
    _, total = trials_to_request(exp.parallel_trial_count, exp.max_trial_count, counts.completed, counts.active)
    return ExperimentPlan(None, requests=total)


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a status patch would change anything (skips a write per timer tick)."""
    return any(old.get(key) != value for key, value in new.items())


# --- reconcile -----------------------------------------------------------------------

def reconcile_experiment(ctx: Context, body: Mapping[str, Any], listed: bool = False,
                         trials: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Status from the trials; the Suggestion asked for what is missing; Trials made from its reply.
    `listed`: the body was just read from the API server, so it is used as is; so were
    `trials` (the experiment's Trials) when given. Returns the Trials it made."""
    experiment = body if listed else fresh(ctx, "Experiment", body)
    if experiment is None or status.has_condition(_conditions(experiment), "Failed"):
        return []
    exp = _runnable(ctx, experiment)
    if exp is None:
        return []
    ns, name = ns_name(experiment)
    if trials is None:
        trials = ctx.api.list_objects(API, "Trial", ns, experiment_selector(name))
    objective = exp.objective()
    records = [status.trial_record(t, objective) for t in trials]
    suggestion = ctx.api.get(API, "Suggestion", ns, name)
    if _suggestion_failed(ctx, experiment, exp, suggestion):
        return []
    plan = plan_experiment(exp, records, exhausted=bool(((suggestion or {}).get("status") or {}).get("exhausted")),
                           was_finished=status.is_finished(_conditions(experiment)))
    if plan is None:
        return []
    _write_status(ctx, experiment, exp, trials, plan.outcome)
    if plan.kill:
        kill_trials(ctx, trials, records, plan.kill, plan.kill_message)
    if plan.release_server:
        release_server(ctx, experiment, exp.resume_policy, exp.algorithm_name)
    if plan.requests is None:
        return []
    return _request(ctx, experiment, exp, suggestion, plan.requests, {t["metadata"]["name"] for t in trials})


def _conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    return (obj.get("status") or {}).get("conditions")


def _runnable(ctx: Context, experiment: Mapping[str, Any]) -> Experiment | None:
    """The Experiment, or None with the experiment Failed: its spec breaks the rules, or asks
    for what the cluster runtime does not do."""
    try:
        exp = load_experiment(experiment)
    except SpecError as exc:
        _fail(ctx, experiment, "; ".join(exc.lines()))
        return None
    problem = cluster_problem(exp)
    if problem:
        _fail(ctx, experiment, problem)
        return None
    return exp


def _suggestion_failed(ctx: Context, experiment: Mapping[str, Any], exp: Experiment,
                       suggestion: Mapping[str, Any] | None) -> bool:
    """A failed Suggestion fails the experiment and frees its server (the Suggestion stays, to show why)."""
    message = failure_message(suggestion)
    if message is None:
        return False
    _fail(ctx, experiment, message)
    ns, name = ns_name(experiment)
    delete_server(ctx, ns, render.suggestion_service_name(name, exp.algorithm_name))
    return True


def _fail(ctx: Context, experiment: Mapping[str, Any], message: str) -> None:
    ns, name = ns_name(experiment)
    old = experiment.get("status") or {}
    conditions = status.experiment_conditions(old.get("conditions"), None, ctx.now(), failure=message)
    ctx.api.patch_status("Experiment", ns, name, {"conditions": conditions, "completionTime": ctx.now()})
    log.warning("experiment %s/%s failed: %s", ns, name, message)


def _write_status(ctx: Context, experiment: Mapping[str, Any], exp: Experiment, trials: Sequence[Mapping[str, Any]],
                  outcome: Outcome | None) -> None:
    """Counts, trial lists, the best trial and the conditions; written only when they changed."""
    ns, name = ns_name(experiment)
    old = experiment.get("status") or {}
    now = ctx.now()
    new = {**status.experiment_status(exp.objective(), trials),
           "conditions": status.experiment_conditions(old.get("conditions"), outcome, now),
           "startTime": old.get("startTime", now)}
    new["completionTime"] = (old.get("completionTime") or now) if outcome is not None else None
    if _changed(old, new):
        ctx.api.patch_status("Experiment", ns, name, {**new, "lastReconcileTime": now})


def _request(ctx: Context, experiment: Mapping[str, Any], exp: Experiment, suggestion: Mapping[str, Any] | None,
             requests: int, existing: set[str]) -> list[dict[str, Any]]:
    """The Suggestion made, or reopened and raised to `requests`; a Trial for every assignment
    it recorded that has none yet (a template that cannot take one fails the experiment)."""
    if suggestion is None:
        ctx.api.create(render.render_suggestion(experiment, requests))
        return []
    sugg_status = suggestion.get("status") or {}
    if status.has_condition(sugg_status.get("conditions"), "Succeeded"):
        reopen(ctx, suggestion)
    if requests > int(suggestion["spec"].get("requests", 0)):
        ns, name = ns_name(experiment)
        ctx.api.patch_spec("Suggestion", ns, name, {"requests": requests})
    made = []
    for assignment in sugg_status.get("suggestions", []):
        if assignment["name"] in existing:
            continue
        try:
            made.append(ctx.api.create(new_trial(ctx, experiment, exp, assignment, sugg_status.get("earlyStoppingRules"))))
        except TemplateError as exc:
            _fail(ctx, experiment, str(exc))
            break
    return made
