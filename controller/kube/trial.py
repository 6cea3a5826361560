"""The Trial: made from a suggestion and the trialTemplate, its workload followed to an end,
its metrics collected, its status written; early stopping and kills.

The decisions are pure functions (`collector_kind`, `final_message`, `newest_active`, and
`controller.logic.trial_condition` through `status.trial_outcome`); `reconcile_trial` reads,
decides and writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from controller.kube import early_stopping, render, status
from controller.kube.context import Context, delete_workload, fresh, ns_name, trial_selector
from controller.kube.logs import collect_stdout
from controller.template import TemplateError, meta_values, substitute, trial_parameter_values
from kubenas.early_stopping import rules_met
from kubenas.experiment import Experiment
from kubenas.experiment_yaml import YamlBombError, load_yaml_documents
from kubenas.metrics import MetricPoint
from kubenas.trials import Objective, TrialCondition, TrialRecord

__all__ = [
    "collector_kind",
    "final_message",
    "kill_trials",
    "new_trial",
    "newest_active",
    "reconcile_trial",
    "trial_template",
]

log = logging.getLogger(__name__)

_FINISHED = frozenset(c.value for c in TrialCondition if c.finished)


# --- decisions -----------------------------------------------------------------------

def collector_kind(spec: Mapping[str, Any]) -> str:
    """The Trial's metrics collector kind (StdOut when none is named, as in Katib)."""
    return str(((spec.get("metricsCollector") or {}).get("collector") or {}).get("kind", "StdOut"))


def final_message(condition: TrialCondition, objective: Objective) -> str:
    """The message of a Trial's final condition."""
    return {TrialCondition.SUCCEEDED: "Trial has succeeded",
            TrialCondition.FAILED: "Trial has failed",
            TrialCondition.METRICS_UNAVAILABLE: f"metric {objective.metric_name!r} was not reported"}.get(
        condition, f"Trial is {condition.value}")


def newest_active(trials: Sequence[Mapping[str, Any]], records: Sequence[TrialRecord],
                  how_many: int) -> list[Mapping[str, Any]]:
    """The `how_many` most recently created active trials (by creation time, then name): the
    ones a lowered limit or an ended experiment stops first."""
    active = [t for t, r in zip(trials, records) if not r.condition.finished]
    active.sort(key=lambda t: (t["metadata"].get("creationTimestamp") or "", t["metadata"]["name"]), reverse=True)
    return active[:max(how_many, 0)]


# --- making a Trial ------------------------------------------------------------------

def trial_template(ctx: Context, exp: Experiment, namespace: str) -> dict[str, Any]:
    """The experiment's trialSpec, inline or read from its ConfigMap (plain YAML, one mapping)."""
    template = exp.spec.trial_template
    assert template is not None  # the experiment rules require one
    if template.trial_spec is not None:
        return template.trial_spec
    source = template.config_map
    assert source is not None
    data = ctx.api.config_map(source.config_map_namespace or namespace, source.config_map_name) or {}
    if source.template_path not in data:
        raise TemplateError(f"configMap {source.config_map_name}/{source.template_path}",
                            f"the ConfigMap has keys: {', '.join(sorted(data)) or 'none'}")
    try:
        documents = load_yaml_documents(data[source.template_path])
    except (yaml.YAMLError, YamlBombError) as exc:
        raise TemplateError(source.template_path, f"the template is not usable YAML: {exc}") from None
    loaded = documents[0] if len(documents) == 1 else None
    if not isinstance(loaded, dict):
        raise TemplateError(source.template_path, "the template must be one YAML mapping")
    return loaded


def new_trial(ctx: Context, experiment: Mapping[str, Any], exp: Experiment, assignment: Mapping[str, Any],
              rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Trial resource for one recorded suggestion (TemplateError: the template cannot take it)."""
    ns, _ = ns_name(experiment)
    name = assignment["name"]
    pairs = [(a["name"], a.get("value", "")) for a in assignment.get("parameterAssignments", [])]
    labels = dict(assignment.get("labels") or {})
    template = trial_template(ctx, exp, ns)
    kind, api_version = str(template.get("kind", "Job")), str(template.get("apiVersion", "batch/v1"))
    values = trial_parameter_values(exp, dict(pairs), name, ns, kind, api_version, labels)
    run_spec = substitute(template, values, meta_values(name, ns, kind, api_version, labels))
    return render.render_trial(experiment, name, pairs, run_spec, labels, rules or ())


def kill_trials(ctx: Context, trials: Sequence[Mapping[str, Any]], records: Sequence[TrialRecord],
                how_many: int, message: str) -> None:
    """Mark the `how_many` newest active trials Killed and delete their workloads."""
    for trial in newest_active(trials, records, how_many):
        ns, name = ns_name(trial)
        ctx.api.patch_status("Trial", ns, name, status.trial_status(
            trial.get("status"), TrialCondition.KILLED, message, ctx.now()))
        delete_workload(ctx, trial)


# --- following a Trial ---------------------------------------------------------------

def reconcile_trial(ctx: Context, body: Mapping[str, Any], listed: bool = False) -> None:
    """Create the workload; follow it to an end; collect metrics; write the Trial status.
    `listed`: the body was just read from the API server (not a watch cache), so it is used as is.
    The workload and its pods are read through `ctx.api` (a step serves them from one listing)."""
    trial = body if listed else fresh(ctx, "Trial", body)
    if trial is None or status.latest_condition((trial.get("status") or {}).get("conditions")) in _FINISHED:
        return
    ns, name = ns_name(trial)
    spec = trial["spec"]
    run_spec = spec["runSpec"]
    run = ctx.api.get(run_spec.get("apiVersion", "batch/v1"), run_spec.get("kind", "Job"), ns, name)
    if run is None:
        ctx.api.create(render.render_run(trial, ctx.db_manager_address()))
        ctx.api.patch_status("Trial", ns, name, status.trial_status(
            trial.get("status"), TrialCondition.CREATED, "Trial is created", ctx.now()))
    elif status.workload_finished(run, spec.get("successCondition"), spec.get("failureCondition")):
        _complete(ctx, trial, run)
    else:
        _observe(ctx, trial)


def _observe(ctx: Context, trial: Mapping[str, Any]) -> None:
    """While the workload runs, the log so far gives a live observation (kubectl get trials
    shows it) and feeds early stopping; the store is written once, from the whole log, at the end."""
    ns, name = ns_name(trial)
    pods = ctx.api.list_pods(ns, trial_selector(name))
    if not any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        return
    spec, old = trial["spec"], trial.get("status") or {}
    objective = status.objective_from_spec(spec.get("objective") or {})
    so_far = _stdout_points(ctx, trial, objective) if collector_kind(spec) == "StdOut" else None
    if _stop_early(ctx, trial, objective, so_far):
        return
    live = status.observation_from_points(objective, so_far) if so_far is not None else old.get("observation")
    new = status.trial_status(old, TrialCondition.RUNNING, "Trial is running", ctx.now(), live)
    if any(old.get(k) != v for k, v in new.items()):
        ctx.api.patch_status("Trial", ns, name, new)


def _complete(ctx: Context, trial: Mapping[str, Any], run: Mapping[str, Any]) -> None:
    """The workload ended: collect its metrics, write the final condition, delete it unless retained."""
    ns, name = ns_name(trial)
    spec = trial["spec"]
    objective = status.objective_from_spec(spec.get("objective") or {})
    observation = status.observation_from_points(objective, _points(ctx, trial, objective))
    final = status.trial_outcome(run, spec.get("successCondition"), spec.get("failureCondition"),
                                 observation, objective, collector_kind(spec))
    assert final is not None
    ctx.api.patch_status("Trial", ns, name, status.trial_status(
        trial.get("status"), final, final_message(final, objective), ctx.now(), observation))
    if not spec.get("retainRun"):
        delete_workload(ctx, trial)


def _stdout_points(ctx: Context, trial: Mapping[str, Any], objective: Objective) -> list[MetricPoint]:
    ns, name = ns_name(trial)
    spec = trial["spec"]
    source = (spec.get("metricsCollector") or {}).get("source") or {}
    filters = ((source.get("filter") or {}).get("metricsFormat")) or ()
    return collect_stdout(ctx.api, ns, trial_selector(name), spec.get("primaryContainerName"), objective, filters)


def _points(ctx: Context, trial: Mapping[str, Any], objective: Objective) -> list[MetricPoint]:
    """The trial's whole metric log, from the store; StdOut logs are put there first."""
    _, name = ns_name(trial)
    collector = collector_kind(trial["spec"])
    if collector == "None":
        return []
    with ctx.db() as db:
        if collector == "StdOut":
            points = _stdout_points(ctx, trial, objective)
            db.delete(name)  # a retried collection must not double the log
            db.report(name, [(p.name, p.stored_value(), p.timestamp) for p in points])
        logs = db.get(name)
    # Text values (a genotype) count only where the experiment's filters can capture them.
    source = (trial["spec"].get("metricsCollector") or {}).get("source") or {}
    keep_text = bool((source.get("filter") or {}).get("metricsFormat"))
    return [p for p in (m.as_point(keep_text) for m in logs) if p is not None]


def _stop_early(ctx: Context, trial: Mapping[str, Any], objective: Objective,
                so_far: list[MetricPoint] | None) -> bool:
    """Apply the Trial's early-stopping rules to its metrics so far (the StdOut log, or the
    store for Push); on a stop, record the log, delete the workload and mark it EarlyStopped."""
    spec = trial["spec"]
    rules = early_stopping.trial_rules(spec)
    collector = collector_kind(spec)
    if not rules or collector not in ("StdOut", "Push"):
        return False
    ns, name = ns_name(trial)
    if so_far is None:
        with ctx.db() as db:
            so_far = [p for p in (m.as_point() for m in db.get(name)) if p is not None]
    if not rules_met(rules, objective, ((p.name, p.value) for p in so_far)):
        return False
    if collector == "StdOut":
        with ctx.db() as db:  # the observation log so far, as at a normal end
            db.delete(name)
            db.report(name, [(p.name, p.stored_value(), p.timestamp) for p in so_far])
    observation = status.observation_from_points(objective, so_far)
    message = f"Trial is early stopped: {early_stopping.describe(rules)}"
    ctx.api.patch_status("Trial", ns, name,
                         early_stopping.early_stopped_status(trial.get("status"), message, ctx.now(), observation))
    delete_workload(ctx, trial)
    log.info("trial %s/%s stopped early: %s", ns, name, early_stopping.describe(rules))
    return True
