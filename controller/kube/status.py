"""Pure status logic for the custom resources: conditions, observations, experiment status.

Shapes follow Katib v1beta1 so `kubectl get`, the Katib UI and the Katib SDK read them:
conditions are `{type, status, reason, message, lastUpdateTime, lastTransitionTime}` with the
most recent change last; trial observations are `{metrics: [{name, min, max, latest}]}` with
values as strings and the objective metric first. The experiment state machine itself is
`controller.logic`, shared with `kubenas run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from controller.kube.gjson import condition_met
from controller.logic import Outcome, count_trials, optimal_trial, trial_condition
from kubenas.metrics import UNAVAILABLE, MetricPoint
from kubenas.trials import MetricStrategy, Objective, ObjectiveType, TrialCondition, TrialRecord

__all__ = [
    "JOB_FAILURE_CONDITION",
    "JOB_SUCCESS_CONDITION",
    "TRIAL_LIST_LIMIT",
    "experiment_conditions",
    "experiment_status",
    "has_condition",
    "is_finished",
    "latest_condition",
    "objective_from_spec",
    "observation_from_points",
    "set_condition",
    "suggestion_count",
    "suggestion_history",
    "trial_outcome",
    "trial_record",
    "trial_status",
    "workload_finished",
]

# Katib's defaults for a batch/v1 Job trial (GJSON, evaluated on the Job).
JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'

_TRIAL_REASONS = {c: f"Trial{c.value}" for c in TrialCondition}


def set_condition(
    conditions: Sequence[Mapping[str, Any]], type_: str, status: bool, reason: str, message: str, now: str
) -> list[dict[str, Any]]:
    """A new condition list with `type_` set. An unchanged condition stays where it is; a
    changed one moves to the end, so the last entry is always the latest change."""
    text = "True" if status else "False"
    out = [dict(c) for c in conditions]
    for i, cond in enumerate(out):
        if cond.get("type") != type_:
            continue
        if cond.get("status") == text and cond.get("reason") == reason and cond.get("message") == message:
            return out
        transition = cond.get("lastTransitionTime", now) if cond.get("status") == text else now
        del out[i]
        break
    else:
        transition = now
    out.append({"type": type_, "status": text, "reason": reason, "message": message,
                "lastUpdateTime": now, "lastTransitionTime": transition})
    return out


def latest_condition(conditions: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The type of the most recent condition whose status is True."""
    for cond in reversed(list(conditions or [])):
        if cond.get("status") == "True":
            return str(cond.get("type"))
    return None


def has_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or [])


def is_finished(conditions: Sequence[Mapping[str, Any]] | None) -> bool:
    """True once an Experiment (or Suggestion) has a Succeeded or Failed condition."""
    return has_condition(conditions, "Succeeded") or has_condition(conditions, "Failed")


def objective_from_spec(objective: Mapping[str, Any]) -> Objective:
    """The domain Objective of a CR's `objective` block (already schema-checked)."""
    strategies = {s["name"]: MetricStrategy(s["value"]) for s in objective.get("metricStrategies", [])
                  if s.get("value")}
    goal = objective.get("goal")
    return Objective(
        type=ObjectiveType(objective.get("type", "maximize")),
        metric_name=objective.get("objectiveMetricName", ""),
        goal=None if goal is None else float(goal),
        additional_metric_names=tuple(objective.get("additionalMetricNames", [])),
        strategies=strategies,
    )


def observation_from_points(objective: Objective, points: Iterable[MetricPoint]) -> dict[str, Any]:
    """Katib's trial observation from a metric log: min, max and latest per metric, as strings.

    A metric with a text value (a genotype) cannot be ordered: min, max and latest are all
    its latest value."""
    seen: dict[str, list[MetricPoint]] = {}
    for point in points:
        if point.name in objective.metric_names:
            seen.setdefault(point.name, []).append(point)
    metrics = []
    for name in objective.metric_names:
        if name not in seen:
            continue
        logged = seen[name]
        latest = logged[-1].stored_value()
        numbers = [p.value for p in logged if not isinstance(p.value, str)]
        if len(numbers) < len(logged):
            metrics.append({"name": name, "min": latest, "max": latest, "latest": latest})
        else:
            metrics.append({"name": name, "min": repr(min(numbers)), "max": repr(max(numbers)), "latest": latest})
    return {"metrics": metrics}


def _values(objective: Objective, observation: Mapping[str, Any] | None) -> dict[str, float | str]:
    """One value per objective metric of a Trial's observation, per the metric strategies;
    a value that is no number (other than Katib's "unavailable") is a text metric."""
    out: dict[str, float | str] = {}
    pick = {MetricStrategy.MIN: "min", MetricStrategy.MAX: "max", MetricStrategy.LATEST: "latest"}
    for metric in (observation or {}).get("metrics", []):
        name = metric.get("name")
        if name not in objective.metric_names:
            continue
        raw = metric.get(pick[objective.strategy(name)])
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = repr(float(raw))  # a hand-edited status may hold a bare number
        if not isinstance(raw, str):
            continue
        try:
            number = float(raw)
        except ValueError:
            # Katib writes "unavailable" when a collector found nothing
            if raw.strip() and raw.strip() != UNAVAILABLE:
                out[name] = raw
            continue
        out[name] = number
    return out


def trial_record(trial: Mapping[str, Any], objective: Objective) -> TrialRecord:
    """What the algorithms and `controller.logic` see of a Trial resource."""
    status = trial.get("status") or {}
    latest = latest_condition(status.get("conditions"))
    condition = TrialCondition(latest) if latest in TrialCondition._value2member_map_ else TrialCondition.CREATED
    spec = trial.get("spec", {})
    return TrialRecord.from_observation(
        trial["metadata"]["name"],
        {a["name"]: a.get("value", "") for a in spec.get("parameterAssignments", [])},
        condition,
        _values(objective, status.get("observation")),
        labels=dict(spec.get("labels", {})),
        completion_time=status.get("completionTime"),
    )


def suggestion_history(
    trials: Sequence[Mapping[str, Any]], recorded: Sequence[Mapping[str, Any]], objective: Objective,
) -> list[TrialRecord]:
    """Everything already suggested, as the next GetSuggestions call must carry it: every Trial,
    plus every assignment recorded in the Suggestion's status whose Trial is not made yet, as a
    Created trial. Seeded stateless algorithms derive their draws from the history; without
    the recorded ones, a call made before those Trials exist repeats the previous call's draws."""
    records = [trial_record(t, objective) for t in trials]
    made = {r.name for r in records}
    for item in recorded:
        if item["name"] in made:
            continue
        made.add(item["name"])
        records.append(TrialRecord(
            name=item["name"],
            assignments={a["name"]: a.get("value", "") for a in item.get("parameterAssignments", [])},
            labels=dict(item.get("labels") or {})))
    return records


def suggestion_count(suggestion_status: Mapping[str, Any]) -> int:
    """How many suggestions the Suggestion has received in all. Its `suggestions` list holds only
    those whose Trial is not made yet, so the count is kept apart (an older status, which kept
    every suggestion in the list, has the two equal)."""
    recorded = len(suggestion_status.get("suggestions") or [])
    return max(int(suggestion_status.get("suggestionCount") or 0), recorded)


def workload_finished(run: Mapping[str, Any], success_condition: str | None, failure_condition: str | None) -> bool:
    """True once the trial's workload meets its failure or success condition."""
    return condition_met(run, failure_condition or JOB_FAILURE_CONDITION) or \
        condition_met(run, success_condition or JOB_SUCCESS_CONDITION)


def trial_outcome(
    run: Mapping[str, Any],
    success_condition: str | None,
    failure_condition: str | None,
    observation: Mapping[str, Any] | None,
    objective: Objective,
    collector: str = "StdOut",
) -> TrialCondition | None:
    """The final condition of a trial given its workload object, or None while it runs.

    Failure is checked first (as Katib does); then `controller.logic.trial_condition`
    decides, as it does for a local process (so collector None with success is Succeeded).
    """
    if condition_met(run, failure_condition or JOB_FAILURE_CONDITION):
        return trial_condition(1, _values(objective, observation), objective, collector=collector)
    if condition_met(run, success_condition or JOB_SUCCESS_CONDITION):
        return trial_condition(0, _values(objective, observation), objective, collector=collector)
    return None


def trial_status(
    status: Mapping[str, Any] | None, condition: TrialCondition, message: str, now: str,
    observation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Trial status after moving to `condition` (Running also keeps Created True)."""
    old = dict(status or {})
    conditions = old.get("conditions") or []
    if not conditions:
        conditions = set_condition([], "Created", True, _TRIAL_REASONS[TrialCondition.CREATED], "Trial is created", now)
    if condition is not TrialCondition.CREATED:
        if condition.finished and has_condition(conditions, "Running"):
            conditions = set_condition(conditions, "Running", False, _TRIAL_REASONS[condition], message, now)
        conditions = set_condition(conditions, condition.value, True, _TRIAL_REASONS[condition], message, now)
    out: dict[str, Any] = {**old, "conditions": conditions}
    out.setdefault("startTime", now)
    if condition.finished:
        out.setdefault("completionTime", now)
    if observation is not None:
        out["observation"] = dict(observation)
    return out


_LISTS = {
    TrialCondition.CREATED: ("pendingTrialList", "trialsPending"),
    TrialCondition.UNKNOWN: ("pendingTrialList", "trialsPending"),
    TrialCondition.RUNNING: ("runningTrialList", "trialsRunning"),
    TrialCondition.SUCCEEDED: ("succeededTrialList", "trialsSucceeded"),
    TrialCondition.FAILED: ("failedTrialList", "trialsFailed"),
    TrialCondition.KILLED: ("killedTrialList", "trialsKilled"),
    TrialCondition.EARLY_STOPPED: ("earlyStoppedTrialList", "trialsEarlyStopped"),
    TrialCondition.METRICS_UNAVAILABLE: ("metricsUnavailableTrialList", "trialMetricsUnavailable"),
}


#: At most this many names in each list of finished trials of an Experiment's status (the
#: most recently completed ones): one object must stay far below etcd's 1.5 MiB however many
#: trials run. The counts are always exact; `kubectl get trials -l` lists them all.
TRIAL_LIST_LIMIT = 500


def experiment_status(objective: Objective, trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts, per-condition trial lists and currentOptimalTrial from the Trial resources.
    Lists of finished trials hold the TRIAL_LIST_LIMIT most recently completed names."""
    records = sorted((trial_record(t, objective) for t in trials), key=lambda r: r.name)
    by_name = {t["metadata"]["name"]: t for t in trials}
    out: dict[str, Any] = {"trials": len(records)}
    for list_key, count_key in set(_LISTS.values()):
        out[list_key], out[count_key] = [], 0
    finished: dict[str, list[TrialRecord]] = {}
    for record in records:
        list_key, count_key = _LISTS[record.condition]
        out[count_key] += 1
        if record.condition.finished:
            finished.setdefault(list_key, []).append(record)
        else:
            out[list_key].append(record.name)
    for list_key, done in finished.items():
        if len(done) > TRIAL_LIST_LIMIT:
            done = sorted(done, key=lambda r: (r.completion_time or "", r.name))[-TRIAL_LIST_LIMIT:]
        out[list_key] = sorted(r.name for r in done)
    counts = count_trials(records)
    assert counts.total == len(records)
    best = optimal_trial(objective, records)
    if best is not None:
        observation = (by_name[best.name].get("status") or {}).get("observation", {"metrics": []})
        out["currentOptimalTrial"] = {
            "bestTrialName": best.name,
            "parameterAssignments": [{"name": k, "value": v} for k, v in best.assignments.items()],
            "observation": observation,
        }
    return out


def experiment_conditions(
    conditions: Sequence[Mapping[str, Any]] | None, outcome: Outcome | None, now: str,
    failure: str | None = None,
) -> list[dict[str, Any]]:
    """Experiment conditions: Created, then Running, then Succeeded or Failed (Katib's reasons).

    `failure` (a validation or suggestion error message) wins over everything else.
    """
    out: list[dict[str, Any]] = [dict(c) for c in conditions or []]
    if not out:
        out = set_condition(out, "Created", True, "ExperimentCreated", "Experiment is created", now)
    if failure is not None:
        if has_condition(out, "Running"):
            out = set_condition(out, "Running", False, "ExperimentFailed", failure, now)
        return set_condition(out, "Failed", True, "ExperimentFailed", failure, now)
    if outcome is None:
        # An edited budget can reopen a finished experiment (resumePolicy LongRunning/FromVolume).
        if has_condition(out, "Succeeded"):
            out = set_condition(out, "Succeeded", False, "ExperimentRestarting", "budget raised; running again", now)
        return set_condition(out, "Running", True, "ExperimentRunning", "Experiment is running", now)
    out = set_condition(out, "Running", False, outcome.reason.value, outcome.message, now)
    return set_condition(out, "Succeeded" if outcome.succeeded else "Failed", True,
                         outcome.reason.value, outcome.message, now)
