"""The pure decisions of the reconcile steps, called directly: the experiment plan, the
GetSuggestions round trip, which trials a kill stops, when the next step comes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controller.grpc_clients import SuggestionReply
from controller.kube.context import load_experiment
from controller.kube.experiment import ExperimentPlan, cluster_problem, plan_experiment
from controller.kube.step import READY_POLL_S, next_step
from controller.kube.suggestion import (
    failure_message,
    reply_changes_nothing,
    requests_open,
    status_after_reply,
    suggestion_request,
)
from controller.kube.trial import collector_kind, final_message, newest_active
from controller.logic import OutcomeReason
from kubenas.api.v1beta1 import api_pb2
from kubenas.experiment import Experiment
from kubenas.proto_convert import trial_from_proto
from kubenas.trials import TrialCondition, TrialRecord
from tests.kube.conftest import EXPERIMENT

C = TrialCondition


def _exp(**spec: Any) -> Experiment:
    body = copy.deepcopy(EXPERIMENT)  # parallel 2, max 4, maxFailed 2, goal accuracy 0.99
    body["spec"].update(spec)
    return load_experiment(body)


def _records(*conditions: TrialCondition, accuracy: float = 0.5) -> list[TrialRecord]:
    return [TrialRecord(name=f"t{i}", assignments={}, condition=c,
                        metrics={"accuracy": accuracy} if c is C.SUCCEEDED else {})
            for i, c in enumerate(conditions)]


# --- the experiment plan -------------------------------------------------------------

@pytest.mark.parametrize(("conditions", "requests"), [
    ((), 2),                                  # start: both slots
    ((C.SUCCEEDED, C.RUNNING), 3),            # one finished: its slot again
    ((C.SUCCEEDED, C.SUCCEEDED, C.RUNNING), 4),  # one left in the budget
    ((C.SUCCEEDED, C.FAILED, C.RUNNING, C.CREATED), 4),
])
def test_a_running_experiment_asks_for_every_trial_so_far_plus_the_free_slots(conditions, requests) -> None:
    assert plan_experiment(_exp(), _records(*conditions), exhausted=False, was_finished=False) == \
        ExperimentPlan(None, requests=requests)


def test_an_experiment_that_ends_now_stops_its_active_trials_and_releases_the_server() -> None:
    plan = plan_experiment(_exp(), [*_records(C.RUNNING, C.CREATED), *_records(C.SUCCEEDED, accuracy=0.995)],
                           exhausted=False, was_finished=False)
    assert plan is not None and plan.outcome is not None
    assert plan.outcome.reason is OutcomeReason.GOAL_REACHED
    assert (plan.kill, plan.release_server, plan.requests) == (2, True, None)
    assert plan.kill_message == "experiment finished: ExperimentGoalReached"


def test_an_ended_experiment_only_keeps_its_status() -> None:
    plan = plan_experiment(_exp(), _records(*[C.SUCCEEDED] * 4), exhausted=False, was_finished=True)
    assert plan is not None and plan.outcome is not None
    assert plan.outcome.reason is OutcomeReason.MAX_TRIALS_REACHED
    assert (plan.kill, plan.release_server, plan.requests) == (0, False, None)


def test_failed_trials_over_the_limit_fail_the_experiment() -> None:
    plan = plan_experiment(_exp(), _records(C.FAILED, C.METRICS_UNAVAILABLE, C.RUNNING), exhausted=False,
                           was_finished=False)
    assert plan is not None and plan.outcome is not None
    assert plan.outcome.reason is OutcomeReason.FAILED and not plan.outcome.succeeded
    assert plan.kill == 1


def test_an_exhausted_algorithm_ends_the_experiment_once_nothing_runs() -> None:
    running = plan_experiment(_exp(), _records(C.SUCCEEDED, C.RUNNING), exhausted=True, was_finished=False)
    assert running == ExperimentPlan(None, requests=3)
    done = plan_experiment(_exp(), _records(C.SUCCEEDED, C.SUCCEEDED), exhausted=True, was_finished=False)
    assert done is not None and done.outcome is not None
    assert done.outcome.reason is OutcomeReason.SUGGESTION_END_REACHED


@pytest.mark.parametrize(("policy", "restarts"), [("Never", False), ("LongRunning", True), ("FromVolume", True)])
def test_a_raised_budget_restarts_only_long_running_and_from_volume(policy: str, restarts: bool) -> None:
    exp = _exp(maxTrialCount=6, resumePolicy=policy)
    plan = plan_experiment(exp, _records(*[C.SUCCEEDED] * 4), exhausted=False, was_finished=True)
    assert plan == (ExperimentPlan(None, requests=6) if restarts else None)


@pytest.mark.parametrize(("spec", "conditions", "kill"), [
    ({"parallelTrialCount": 1}, (C.RUNNING, C.RUNNING), 1),           # parallelism lowered
    ({"maxTrialCount": 3}, (C.SUCCEEDED, C.SUCCEEDED, C.RUNNING, C.CREATED), 1),  # budget lowered
    ({"maxTrialCount": 5, "parallelTrialCount": 3}, (C.SUCCEEDED, C.RUNNING, C.RUNNING), 0),
])
def test_active_trials_beyond_a_lowered_limit_are_stopped_first(spec, conditions, kill: int) -> None:
    plan = plan_experiment(_exp(**spec), _records(*conditions), exhausted=False, was_finished=False)
    assert plan is not None and plan.outcome is None and plan.kill == kill
    if kill:
        assert plan.requests is None and plan.kill_message == "parallelTrialCount or maxTrialCount lowered"
    else:
        assert plan.requests == len(conditions) + 1


def test_cluster_problem_names_a_collector_the_cluster_does_not_run() -> None:
    assert cluster_problem(_exp()) is None
    problem = cluster_problem(_exp(metricsCollectorSpec={
        "collector": {"kind": "TensorFlowEvent"}, "source": {"fileSystemPath": {"path": "/log", "kind": "Directory"}}}))
    assert problem is not None
    assert "spec.metricsCollectorSpec.collector.kind" in problem and "'TensorFlowEvent'" in problem
    assert "StdOut, Push, None" in problem


# --- the GetSuggestions round trip ---------------------------------------------------

def _suggestion(requests: int, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "random-demo", "namespace": "team-a"}, "spec": {"requests": requests},
            "status": status}


def _trial(name: str, lr: str, condition: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"parameterAssignments": [{"name": "lr", "value": lr}]},
            "status": {"conditions": [{"type": condition, "status": "True"}]}}


def _recorded(name: str, lr: str) -> dict[str, Any]:
    return {"name": name, "parameterAssignments": [{"name": "lr", "value": lr}]}


@pytest.mark.parametrize(("suggestion", "wanted"), [
    (_suggestion(4), 4),
    (_suggestion(4, suggestionCount=3, suggestions=[_recorded("a", "1")]), 1),
    (_suggestion(4, suggestionCount=4), 0),
    (_suggestion(2, suggestionCount=4), 0),                            # requests lowered: never negative
    (_suggestion(5, suggestions=[_recorded("a", "1"), _recorded("b", "2")]), 3),  # an older status: the list counts
    (_suggestion(9, suggestionCount=2, exhausted=True), 0),            # the algorithm has no more
])
def test_requests_open(suggestion: dict[str, Any], wanted: int) -> None:
    assert requests_open(suggestion) == wanted


def test_the_request_carries_every_trial_and_every_recorded_suggestion_once() -> None:
    exp = _exp()
    suggestion = _suggestion(5, suggestionCount=3, suggestions=[_recorded("b", "0.02"), _recorded("c", "0.03")])
    request = suggestion_request(exp.to_proto(), exp.objective(), suggestion, [_trial("a", "0.01"), _trial("b", "0.02")])
    assert (request.current, request.total) == (2, 5)
    assert request.experiment.name == "random-demo"
    seen = [trial_from_proto(t, exp.objective()) for t in request.history]
    assert [(t.name, t.assignments["lr"]) for t in seen] == [("a", "0.01"), ("b", "0.02"), ("c", "0.03")]
    assert seen[2].condition is C.CREATED  # recorded, its Trial not made yet


def _reply(*names: str, exhausted: bool = False) -> SuggestionReply:
    return SuggestionReply(tuple(
        api_pb2.GetSuggestionsReply.ParameterAssignments(
            assignments=[api_pb2.ParameterAssignment(name="lr", value=f"0.0{i}")], trial_name=name,
            labels={"rung": "1"} if name else {})
        for i, name in enumerate(names)), exhausted=exhausted)


def test_a_reply_is_named_and_recorded_and_the_made_ones_leave_the_status() -> None:
    exp = _exp()
    old = {"suggestionCount": 2, "suggestions": [_recorded("made", "0.5"), _recorded("waiting", "0.6")]}
    patch = status_after_reply(exp, old, _reply("mine", "", "waiting"), {"made", "earlier"}, None)
    names = [s["name"] for s in patch["suggestions"]]
    assert names[:2] == ["waiting", "mine"]  # "made" has its Trial now
    assert len(set(names)) == 4 and names[2].startswith("random-demo-") and names[3].startswith("random-demo-")
    assert patch["suggestions"][1] == {"name": "mine", "parameterAssignments": [{"name": "lr", "value": "0.00"}],
                                       "labels": {"rung": "1"}}
    assert "labels" not in patch["suggestions"][2]
    assert patch["suggestionCount"] == 5 and patch["exhausted"] is False
    # Katib's status.algorithmSettings: only what replies returned (this one returned none)
    assert patch["algorithmSettings"] == []
    assert "earlyStoppingRules" not in patch  # None: the previous rules stay


def test_a_seeded_experiment_names_a_reply_the_same_way_every_time() -> None:
    exp = _exp()
    first = status_after_reply(exp, {}, _reply("", ""), set(), [])
    assert first == status_after_reply(exp, {}, _reply("", ""), set(), [])
    assert first["earlyStoppingRules"] == []
    assert status_after_reply(exp, {}, _reply(exhausted=True), {"x"}, None)["exhausted"] is True


def test_failure_message() -> None:
    assert failure_message(None) is None
    assert failure_message(_suggestion(1, conditions=[{"type": "Running", "status": "True"}])) is None
    failed = _suggestion(1, conditions=[{"type": "Failed", "status": "True", "message": "no image for algorithm x"}])
    assert failure_message(failed) == "no image for algorithm x"


# --- trials and steps ----------------------------------------------------------------

def test_collector_kind_and_final_messages() -> None:
    assert collector_kind({}) == "StdOut"
    assert collector_kind({"metricsCollector": {"collector": {"kind": "Push"}}}) == "Push"
    exp = _exp()
    assert final_message(C.METRICS_UNAVAILABLE, exp.objective()) == "metric 'accuracy' was not reported"
    assert final_message(C.SUCCEEDED, exp.objective()) == "Trial has succeeded"
    assert final_message(C.KILLED, exp.objective()) == "Trial is Killed"


def test_a_kill_stops_the_newest_active_trials() -> None:
    trials = [{"metadata": {"name": n, "creationTimestamp": t}} for n, t in
              [("a", "2026-01-01T00:00:01Z"), ("b", "2026-01-01T00:00:03Z"), ("c", "2026-01-01T00:00:03Z"),
               ("d", "2026-01-01T00:00:09Z")]]
    records = _records(C.RUNNING, C.RUNNING, C.CREATED, C.SUCCEEDED)
    assert [t["metadata"]["name"] for t in newest_active(trials, records, 2)] == ["c", "b"]
    assert [t["metadata"]["name"] for t in newest_active(trials, records, 9)] == ["c", "b", "a"]
    assert newest_active(trials, records, 0) == [] and newest_active(trials, records, -1) == []


@pytest.mark.parametrize(("writes", "waiting", "idle", "delay"), [
    (3, None, False, 0.0),                                       # a write may have enabled more
    (1, "the suggestion Deployment to be ready", False, 0.0),
    (0, "the suggestion Deployment to be ready", False, READY_POLL_S),
    (0, "the suggestion server (UNAVAILABLE: down)", False, 5.0),
    (0, None, True, 60.0),                                       # finished, nothing active
    (0, None, False, 3.0),
])
def test_next_step(writes: int, waiting: str | None, idle: bool, delay: float) -> None:
    step = next_step(3.0, writes, 7, waiting, idle)
    assert (step.delay, step.writes, step.calls, step.waiting) == (delay, writes, 7, waiting)


def test_an_empty_reply_while_trials_run_writes_nothing_unless_it_moves_the_state() -> None:
    old = {"algorithmSettings": [{"name": "current_i", "value": "0"}]}
    assert reply_changes_nothing(old, _reply(), running=2)  # hyperband waits for its rung
    assert not reply_changes_nothing(old, _reply(), running=0)  # nothing runs: the search ended
    assert not reply_changes_nothing(old, _reply(exhausted=True), running=2)
    assert not reply_changes_nothing(old, _reply("x"), running=2)
    moved = SuggestionReply((), exhausted=False, algorithm_settings=(("current_i", "1"),))
    assert not reply_changes_nothing(old, moved, running=2)
    patch = status_after_reply(_exp(), old, moved, set(), None, running=2)
    assert patch["algorithmSettings"] == [{"name": "current_i", "value": "1"}] and patch["exhausted"] is False
    assert status_after_reply(_exp(), old, _reply(), set(), None, running=0)["exhausted"] is True


def test_a_reply_naming_a_trial_outside_kubernetes_names_is_refused() -> None:
    from controller.logic import InvalidTrialName

    with pytest.raises(InvalidTrialName, match="trial_name"):
        status_after_reply(_exp(), {}, _reply("../escape"), set(), None)
