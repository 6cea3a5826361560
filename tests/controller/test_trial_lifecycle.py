"""The trial life cycle both runtimes share (controller.logic): final condition and naming."""

from __future__ import annotations

import re

import pytest

from controller.logic import TRIAL_SUFFIX_LENGTH, new_trial_name, suggested_trial_name, trial_condition
from kubenas.trials import Objective, ObjectiveType, TrialCondition

OBJ = Objective(ObjectiveType.MAXIMIZE, "accuracy")
C = TrialCondition


@pytest.mark.parametrize(("exit_code", "observation", "collector", "killed", "early", "expected"), [
    (0, {"accuracy": 0.9}, "StdOut", False, False, C.SUCCEEDED),
    (0, {}, "StdOut", False, False, C.METRICS_UNAVAILABLE),
    (0, {"loss": 0.1}, "File", False, False, C.METRICS_UNAVAILABLE),
    (0, {"accuracy": "text"}, "StdOut", False, False, C.SUCCEEDED),
    # Nothing is collected with collector None: a clean exit is success, not missing metrics.
    (0, {}, "None", False, False, C.SUCCEEDED),
    (1, {}, "None", False, False, C.FAILED),
    (3, {"accuracy": 0.9}, "StdOut", False, False, C.FAILED),
    (None, {}, "StdOut", False, False, C.FAILED),
    (0, {"accuracy": 0.9}, "StdOut", True, False, C.KILLED),
    (-15, {}, "None", True, False, C.KILLED),
    # The early-stopping verdict stands however the workload ended.
    (-15, {"accuracy": 0.2}, "StdOut", True, True, C.EARLY_STOPPED),
    (0, {}, "Push", False, True, C.EARLY_STOPPED),
])
def test_final_condition(exit_code: int | None, observation: dict[str, float | str], collector: str,
                         killed: bool, early: bool, expected: TrialCondition) -> None:
    got = trial_condition(exit_code, observation, OBJ, killed=killed, collector=collector, early_stopped=early)
    assert got is expected


def test_seeded_names_repeat_per_position_and_never_collide() -> None:
    taken: list[str] = []
    for _ in range(50):
        taken.append(new_trial_name("exp", taken, seed=7))
    assert len(set(taken)) == 50
    again: list[str] = []
    for _ in range(50):
        again.append(new_trial_name("exp", again, seed=7))
    assert again == taken
    assert all(re.fullmatch(rf"exp-[a-z]{{{TRIAL_SUFFIX_LENGTH}}}", n) for n in taken)
    assert new_trial_name("exp", [], seed=8) != taken[0]
    assert new_trial_name("other", [], seed=7) != taken[0]


def test_unseeded_names_are_random_and_avoid_taken_ones() -> None:
    names = {new_trial_name("exp", []) for _ in range(20)}
    assert len(names) == 20
    # The seeded draw for position 1 is taken already: the next draw is used instead.
    drawn = new_trial_name("exp", ["placeholder"], seed=1)
    assert new_trial_name("exp", [drawn], seed=1) != drawn


def test_a_suggested_name_is_kept_unless_empty_or_taken() -> None:
    assert suggested_trial_name("exp", "exp-darts", ["exp-other"], seed=1) == "exp-darts"
    # empty or taken: the name drawn for this history, as new_trial_name draws it
    assert suggested_trial_name("exp", "", ["a"], seed=1) == new_trial_name("exp", ["a"], seed=1)
    assert suggested_trial_name("exp", "a", ["a"], seed=1) == new_trial_name("exp", ["a"], seed=1)
