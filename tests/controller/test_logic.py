"""controller.logic: Katib's request arithmetic, completion rules, best trial and conditions."""

from __future__ import annotations

import pytest

from controller.logic import (
    InvalidTrialName,
    OutcomeReason,
    active_limit,
    count_trials,
    experiment_outcome,
    may_ask,
    new_trial_name,
    optimal_trial,
    overlay_settings,
    returned_changes,
    suggested_trial_name,
    suggestions_ended,
    trial_condition,
    trial_names,
    trials_to_request,
    wait_past,
)
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord

C = TrialCondition
MIN = Objective(ObjectiveType.MINIMIZE, "loss", goal=0.1)
MAX = Objective(ObjectiveType.MAXIMIZE, "acc", goal=0.9)


def _t(name: str, cond: TrialCondition, **metrics: float) -> TrialRecord:
    return TrialRecord(name=name, assignments={"x": name}, condition=cond, metrics=metrics)


@pytest.mark.parametrize(
    ("parallel", "max_trials", "completed", "active", "expected"),
    [
        (3, 12, 0, 0, (3, 3)),      # start: fill the parallel slots
        (3, 12, 0, 3, (0, 3)),      # all slots busy
        (3, 12, 2, 1, (2, 5)),      # two finished: replace them
        (3, 12, 10, 1, (1, 12)),    # only two left in the budget, one running
        (3, 12, 10, 2, (0, 12)),    # budget fully scheduled
        (3, 12, 12, 0, (0, 12)),    # done
        (3, 12, 11, 3, (0, 14)),    # more active than remaining budget: never negative
        (5, 2, 0, 0, (2, 2)),       # parallel larger than the whole budget
        (2, None, 7, 1, (1, 9)),    # no maxTrialCount: just keep `parallel` running
        (1, 1, 0, 0, (1, 1)),
    ],
)
def test_trials_to_request(parallel, max_trials, completed, active, expected) -> None:
    assert trials_to_request(parallel, max_trials, completed, active) == expected


@pytest.mark.parametrize(
    ("parallel", "max_trials", "completed", "expected"),
    [
        (3, 12, 0, 3),      # the parallel slots
        (3, 12, 10, 2),     # only two left in the budget
        (3, 12, 12, 0),     # budget spent
        (3, 4, 6, 0),       # maxTrialCount lowered below the completed ones: never negative
        (2, None, 50, 2),   # no maxTrialCount
    ],
)
def test_active_limit(parallel, max_trials, completed, expected) -> None:
    assert active_limit(parallel, max_trials, completed) == expected


def test_trial_names_keep_a_free_proposed_name_and_replace_taken_or_empty_ones() -> None:
    names = trial_names("exp", ["mine", "", "old", "mine"], {"old"})
    assert names[0] == "mine"
    assert len(set(names)) == 4 and "old" not in names
    assert all(n.startswith("exp-") and len(n) == len("exp-") + 8 for n in names[1:])


def test_trial_names_are_the_same_on_a_seeded_rerun_and_follow_new_trial_name() -> None:
    taken = {"exp-aaaaaaaa"}
    first = trial_names("exp", ["", ""], taken, seed=7)
    assert first == trial_names("exp", ["", ""], taken, seed=7)
    # One name at a time with the growing set of names: what the local runtime does per assignment.
    assert first[0] == new_trial_name("exp", taken, 7)
    assert first[1] == new_trial_name("exp", taken | {first[0]}, 7)
    assert trial_names("exp", ["", ""], taken, seed=8) != first


def test_trials_to_request_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="parallel"):
        trials_to_request(0, 3, 0, 0)
    with pytest.raises(ValueError, match="completed"):
        trials_to_request(1, 3, -1, 0)


def test_optimal_trial_minimize_and_maximize_ignore_unfinished_and_failed() -> None:
    trials = [
        _t("a", C.SUCCEEDED, loss=0.5, acc=0.5),
        _t("b", C.SUCCEEDED, loss=0.3, acc=0.7),
        _t("c", C.FAILED, loss=0.01, acc=0.99),        # failed: never the best
        _t("d", C.RUNNING, loss=0.001, acc=0.999),     # not finished
        _t("e", C.EARLY_STOPPED, loss=0.4, acc=0.8),
        _t("f", C.SUCCEEDED, loss=0.3, acc=0.1),       # tie on loss: first one kept
        _t("g", C.METRICS_UNAVAILABLE),
    ]
    assert optimal_trial(MIN, trials).name == "b"
    assert optimal_trial(MAX, trials).name == "e"
    assert optimal_trial(MIN, []) is None
    assert optimal_trial(MIN, [_t("x", C.SUCCEEDED, acc=1.0)]) is None


def test_goal_reached_first_then_failed_then_max_trials() -> None:
    done = [_t("a", C.SUCCEEDED, loss=0.05), _t("b", C.FAILED), _t("c", C.FAILED)]
    # the goal wins even though the failure limit is also hit (Katib checks the goal first)
    assert experiment_outcome(MIN, 3, 2, done).reason is OutcomeReason.GOAL_REACHED
    assert experiment_outcome(MIN, 3, 2, done).succeeded
    not_good = [_t("a", C.SUCCEEDED, loss=0.5), _t("b", C.FAILED), _t("c", C.METRICS_UNAVAILABLE)]
    failed = experiment_outcome(MIN, 3, 2, not_good)
    assert failed.reason is OutcomeReason.FAILED and not failed.succeeded
    assert "2 trials failed" in failed.message
    assert experiment_outcome(MIN, 3, 3, not_good).reason is OutcomeReason.MAX_TRIALS_REACHED


def test_goal_equal_counts_as_reached_for_both_directions() -> None:
    assert experiment_outcome(MIN, 10, None, [_t("a", C.SUCCEEDED, loss=0.1)]).reason is OutcomeReason.GOAL_REACHED
    assert experiment_outcome(MAX, 10, None, [_t("a", C.SUCCEEDED, acc=0.9)]).reason is OutcomeReason.GOAL_REACHED
    assert experiment_outcome(MAX, 10, None, [_t("a", C.SUCCEEDED, acc=0.89)]) is None
    no_goal = Objective(ObjectiveType.MAXIMIZE, "acc")
    assert experiment_outcome(no_goal, 10, None, [_t("a", C.SUCCEEDED, acc=1e9)]) is None


def test_running_experiment_has_no_outcome() -> None:
    trials = [_t("a", C.SUCCEEDED, loss=0.5), _t("b", C.RUNNING), _t("c", C.KILLED)]
    assert experiment_outcome(MIN, 3, 3, trials) is None
    # killed trials count as completed for maxTrialCount but not as failures
    trials = [_t("a", C.SUCCEEDED, loss=0.5), _t("b", C.KILLED), _t("c", C.KILLED)]
    assert experiment_outcome(MIN, 3, 1, trials).reason is OutcomeReason.MAX_TRIALS_REACHED


def test_zero_failures_never_trip_the_limit_and_zero_limit_trips_on_first() -> None:
    assert experiment_outcome(MIN, 5, 0, [_t("a", C.SUCCEEDED, loss=0.5)]) is None
    assert experiment_outcome(MIN, 5, 0, [_t("a", C.FAILED)]).reason is OutcomeReason.FAILED


def test_suggestion_end_waits_for_active_trials() -> None:
    trials = [_t("a", C.SUCCEEDED, loss=0.5), _t("b", C.RUNNING)]
    assert experiment_outcome(MIN, 10, None, trials, suggestions_exhausted=True) is None
    trials = [_t("a", C.SUCCEEDED, loss=0.5), _t("b", C.SUCCEEDED, loss=0.4)]
    outcome = experiment_outcome(MIN, 10, None, trials, suggestions_exhausted=True)
    assert outcome.reason is OutcomeReason.SUGGESTION_END_REACHED and outcome.succeeded
    assert experiment_outcome(MIN, 10, None, trials, suggestions_exhausted=False) is None


def test_counts() -> None:
    counts = count_trials([_t("a", C.SUCCEEDED), _t("b", C.FAILED), _t("c", C.RUNNING),
                           _t("d", C.CREATED), _t("e", C.METRICS_UNAVAILABLE), _t("f", C.KILLED),
                           _t("g", C.EARLY_STOPPED)])
    assert (counts.active, counts.completed, counts.total, counts.failed_for_limit) == (2, 5, 7, 2)


@pytest.mark.parametrize(
    ("exit_code", "observation", "killed", "expected"),
    [
        (0, {"loss": 0.2}, False, C.SUCCEEDED),
        (0, {"other": 0.2}, False, C.METRICS_UNAVAILABLE),
        (0, {}, False, C.METRICS_UNAVAILABLE),
        (1, {"loss": 0.2}, False, C.FAILED),
        (-9, {}, False, C.FAILED),
        (None, {}, False, C.FAILED),
        (-15, {"loss": 0.2}, True, C.KILLED),
        (0, {"loss": 0.2}, True, C.KILLED),
    ],
)
def test_trial_condition(exit_code, observation, killed, expected) -> None:
    assert trial_condition(exit_code, observation, MIN, killed=killed) is expected


def test_overlay_settings_updates_in_place_and_appends_new_names_as_katib() -> None:
    spec = {"resource_name": "epochs", "eta": "3", "r_l": "9"}
    returned = [("eta", "3.0"), ("current_s", "2"), ("r_l", "9.0"), ("evaluating_trials", "9")]
    merged = overlay_settings(spec, returned)
    assert list(merged.items()) == [("resource_name", "epochs"), ("eta", "3.0"), ("r_l", "9.0"),
                                    ("current_s", "2"), ("evaluating_trials", "9")]
    assert spec == {"resource_name": "epochs", "eta": "3", "r_l": "9"}  # input not mutated
    # The next reply moves the state on; a name returned twice keeps its first place.
    again = overlay_settings(merged, {"current_s": "1", "evaluating_trials": "0"})
    assert list(again) == list(merged) and again["current_s"] == "1" and again["evaluating_trials"] == "0"
    assert overlay_settings(spec, []) == spec


def test_only_what_a_reply_changes_or_adds_is_kept() -> None:
    sent = {"resource_name": "epochs", "eta": "3", "current_s": "2"}
    assert returned_changes(sent, list(sent.items())) == {}  # an echo keeps nothing
    returned = [("resource_name", "epochs"), ("eta", "3.0"), ("current_s", "1"), ("n", "5")]
    assert returned_changes(sent, returned) == {"eta": "3.0", "current_s": "1", "n": "5"}
    assert returned_changes(sent, []) == {}


@pytest.mark.parametrize(("exhausted", "received", "active", "ended"), [
    (True, 0, 3, True),     # the algorithm says so (OUT_OF_RANGE, nothing remains)
    (False, 0, 0, True),    # nothing, and nothing running that could change the answer
    (False, 0, 2, False),   # nothing while a rung runs: wait for it
    (False, 1, 0, False),
])
def test_suggestions_ended(exhausted: bool, received: int, active: int, ended: bool) -> None:
    assert suggestions_ended(exhausted, received, active) is ended


def test_a_short_reply_waits_for_the_next_completed_trial() -> None:
    assert wait_past(4, 4, 7) is None and may_ask(None, 7)
    waiting = wait_past(9, 3, 7)
    assert waiting == 7
    assert not may_ask(waiting, 7) and may_ask(waiting, 8)


@pytest.mark.parametrize("hostile", ["../x", "a/b", "..", "/abs", "Upper", "-lead", "trail-", "a b", "x\x00",
                                     "a" * 254, "é"])
def test_a_proposed_trial_name_that_no_trial_can_have_is_refused(hostile: str) -> None:
    with pytest.raises(InvalidTrialName) as info:
        suggested_trial_name("exp", hostile, set())
    assert info.value.field.endswith("trial_name") and "Kubernetes object name" in info.value.allowed
    with pytest.raises(InvalidTrialName):
        trial_names("exp", ["exp-fine", hostile], set())


def test_proposed_names_that_are_kubernetes_names_are_kept() -> None:
    assert suggested_trial_name("exp", "exp-a1.b2", set()) == "exp-a1.b2"
    assert suggested_trial_name("exp", "a" * 253, set()) == "a" * 253
    assert suggested_trial_name("exp", "", set()).startswith("exp-")  # none proposed: ours
