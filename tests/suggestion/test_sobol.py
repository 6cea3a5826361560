"""sobol: point i of the Sobol sequence for trial i; deterministic, stateless, evenly spread."""

from __future__ import annotations

import pytest

from kubenas.space import SearchSpace
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.sobol import Sobol
from tests.suggestion.contract import OBJECTIVE, param
from tests.suggestion.model_based import NB201, NB201_SETTINGS, QUADRATIC, trial

UNIT = SearchSpace(parameters=(param("a", "double", lo="0", hi="1"), param("b", "double", lo="0", hi="1")))


def ask(space: SearchSpace, settings: dict[str, str], done: int, n: int) -> list[dict[str, str]]:
    """n proposals after `done` finished trials (their values do not matter to sobol)."""
    problem = Problem("exp", space, OBJECTIVE, settings)
    algo = Sobol()
    history = []
    while len(history) < done:
        for s in algo.suggest(problem, history, 1):
            history.append(trial(f"t-{len(history):03d}", s.assignments, 0.0, when=len(history)))
    return [dict(s.assignments) for s in algo.suggest(problem, history, n)]


@pytest.mark.parametrize("settings", [{}, {"random_state": "5"}])
def test_the_ith_trial_gets_the_ith_point_whatever_the_batching(settings: dict[str, str]) -> None:
    at_once = ask(QUADRATIC, settings, 0, 8)
    one_by_one = [ask(QUADRATIC, settings, i, 1)[0] for i in range(8)]
    assert at_once == one_by_one
    assert ask(QUADRATIC, settings, 3, 2) == at_once[3:5]


@pytest.mark.parametrize("settings", [{}, {"random_state": "11"}])
def test_sixteen_points_put_one_in_each_cell_of_a_4x4_grid(settings: dict[str, str]) -> None:
    # Sobol's first 2^m points form a (0, m, 2)-net: every 1/4 x 1/4 cell holds exactly one,
    # plain or Owen-scrambled. 16 random points fill all 16 cells with odds 16!/16^16 ~ 1e-6.
    cells = {(int(float(p["a"]) * 4), int(float(p["b"]) * 4)) for p in ask(UNIT, settings, 0, 16)}
    assert len(cells) == 16


def test_unseeded_is_the_plain_sequence_and_a_seed_scrambles_it() -> None:
    plain = ask(UNIT, {}, 0, 4)
    assert [(float(p["a"]), float(p["b"])) for p in plain] == [(0.0, 0.0), (0.5, 0.5), (0.75, 0.25), (0.25, 0.75)]
    assert ask(UNIT, {"random_state": "1"}, 0, 4) != plain
    assert ask(UNIT, {"random_state": "1"}, 0, 4) == ask(UNIT, {"random_state": "1"}, 0, 4)
    assert ask(UNIT, {"random_state": "1"}, 0, 4) != ask(UNIT, {"random_state": "2"}, 0, 4)


def test_grid_values_get_equal_shares_and_tried_points_are_not_repeated() -> None:
    space = SearchSpace(parameters=(param("n", "int", lo="1", hi="4"), param("opt", "categorical",
                                                                           values=("sgd", "adam"))))
    points = ask(space, {}, 0, 8)
    assert len({(p["n"], p["opt"]) for p in points}) == 8  # the whole space, once each


def test_nas_spaces_are_searched_by_their_choice_vectors() -> None:
    archs = [p["architecture"] for p in ask(NB201, NB201_SETTINGS, 0, 16)]
    assert len(set(archs)) == 16


def test_only_random_state_and_the_nas_settings_are_known() -> None:
    with pytest.raises(InvalidSettings) as info:
        Sobol().validate(Problem("exp", QUADRATIC, OBJECTIVE, {"scramble": "true"}))
    assert info.value.setting == "scramble" and "random_state" in str(info.value)
