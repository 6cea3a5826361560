"""multivariate-tpe: Katib's name for Optuna's multivariate TPE, with exactly Katib's settings."""

from __future__ import annotations

import statistics

import pytest

from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.tpe import MultivariateTpe, Tpe
from tests.suggestion.contract import OBJECTIVE
from tests.suggestion.model_based import QUADRATIC, quadratic, random_history, round_trip, search


def test_is_tpe_with_multivariate_on_and_differs_from_the_univariate_one() -> None:
    history = random_history(QUADRATIC, {}, 20, value=lambda i: -float(i % 7))
    katib = {"n_startup_trials": "5", "n_ei_candidates": "30", "random_state": "8"}

    def ask(algo: Tpe, settings: dict[str, str]) -> list[dict[str, str]]:
        return [dict(s.assignments) for s in algo.suggest(Problem("exp", QUADRATIC, OBJECTIVE, settings), history, 3)]

    multivariate = ask(MultivariateTpe(), katib)
    assert multivariate == ask(Tpe(), {**katib, "multivariate": "true"})
    assert multivariate != ask(Tpe(), {**katib, "multivariate": "false"})


def test_beats_random_on_a_quadratic() -> None:
    seeds = range(3)
    tpe = [search("multivariate-tpe", QUADRATIC, {}, quadratic, 30, 3, s)[-1] for s in seeds]
    rnd = [search("random", QUADRATIC, {}, quadratic, 30, 3, s)[-1] for s in seeds]
    assert statistics.mean(tpe) > statistics.mean(rnd), (tpe, rnd)


@pytest.mark.parametrize(("settings", "name", "allowed"), [
    # Katib's multivariate-tpe has no such setting: it is multivariate by its name.
    ({"multivariate": "false"}, "multivariate", "n_ei_candidates, n_startup_trials, num_nodes, random_state"),
    ({"n_startup_trials": "-1"}, "n_startup_trials", "an integer in [0, 100000]"),
    ({"n_ei_candidates": "0"}, "n_ei_candidates", "an integer in [1, 10000]"),
])
def test_bad_settings_name_the_setting_value_and_allowed(settings: dict[str, str], name: str,
                                                         allowed: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        MultivariateTpe().validate(Problem("exp", QUADRATIC, OBJECTIVE, settings))
    assert info.value.setting == name and info.value.value == settings[name], str(info.value)
    assert allowed in str(info.value)


def test_serves_over_grpc() -> None:
    got = round_trip("multivariate-tpe", QUADRATIC, {"random_state": "1"}, random_history(QUADRATIC, {}, 12), 3,
                     ("n_ei_candidates", "zero"))
    assert len(got) == 3
