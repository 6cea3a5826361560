"""cmaes: converges on a quadratic, replays its state from the history, Katib's settings and rules."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest

from kubenas.space import SearchSpace, SpaceError
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.cmaes import CmaEs, RestartPolicy, _replay
from tests.suggestion.contract import OBJECTIVE, param
from tests.suggestion.model_based import NB201, QUADRATIC, quadratic, round_trip, search, trial


def test_converges_on_a_quadratic_far_better_than_random() -> None:
    seeds = range(3)
    cma = [search("cmaes", QUADRATIC, {}, quadratic, 60, 6, s)[-1] for s in seeds]
    rnd = [search("random", QUADRATIC, {}, quadratic, 60, 6, s)[-1] for s in seeds]
    # The optimum is 0 at (1.5, -2) in [-5, 5]^2; 60 random points land ~0.5 away on average.
    assert max(cma) > -0.05 and statistics.mean(cma) > -0.05, cma
    assert statistics.mean(cma) > statistics.mean(rnd), (cma, rnd)


@pytest.mark.parametrize("strategy", ["ipop", "bipop"])
def test_restart_strategies_still_converge(strategy: str) -> None:
    best = [search("cmaes", QUADRATIC, {"restart_strategy": strategy}, quadratic, 60, 6, s)[-1] for s in range(2)]
    assert statistics.mean(best) > -0.1, best


def test_a_flat_objective_stops_the_run_and_ipop_restarts_with_twice_the_population() -> None:
    rng = random.Random(0)
    units = [[rng.random(), rng.random()] for _ in range(600)]
    flat = [1.0] * len(units)
    plain = _replay(2, units, flat, 1 / 6, None, 0, 1)
    restarted = _replay(2, units, flat, 1 / 6, "ipop", 0, 1)
    assert plain.population_size == 6  # 4 + floor(3 ln 2)
    assert restarted.population_size > 6 and restarted.population_size % 6 == 0


def test_ipop_doubles_and_bipop_alternates_with_small_runs() -> None:
    rng = random.Random(3)
    ipop = RestartPolicy("ipop", 6, 0.2)
    assert [ipop.next_run(rng)[0] for _ in range(3)] == [12, 24, 48]
    bipop = RestartPolicy("bipop", 6, 0.2)
    bipop.spent(60)  # the first (large) run used 60 trials
    small, sigma = bipop.next_run(rng)  # the small regime has used fewer: its turn
    assert 6 <= small <= 12 and sigma <= 0.2 and not bipop.in_large
    bipop.spent(100)
    assert bipop.next_run(rng) == (12, 0.2) and bipop.in_large  # the first large restart: 2 x 6


def test_the_proposals_follow_from_the_history_alone() -> None:
    problem = Problem("exp", QUADRATIC, OBJECTIVE, {"random_state": "4"})
    history = []
    while len(history) < 18:
        for s in CmaEs().suggest(problem, history, 6):
            history.append(trial(f"t-{len(history):03d}", s.assignments, quadratic(s.assignments), when=len(history)))
    # A fresh instance (a restarted server) answers the same; the batch has no repeats.
    first = [dict(s.assignments) for s in CmaEs().suggest(problem, history, 6)]
    assert first == [dict(s.assignments) for s in CmaEs().suggest(problem, history, 6)]
    assert len({tuple(sorted(a.items())) for a in first}) == 6
    # Three generations told: the distribution has moved towards (1.5, -2) from the centre.
    xs = np.array([[float(a["x"]), float(a["y"])] for a in first])
    assert np.linalg.norm(xs.mean(axis=0) - [1.5, -2]) < np.linalg.norm([1.5, -2])


def check_refused(space: SearchSpace, settings: dict[str, str], setting: str, value: object, allowed: str) -> None:
    with pytest.raises((InvalidSettings, SpaceError)) as info:
        CmaEs().validate(Problem("exp", space, OBJECTIVE, settings))
    err = info.value
    named = err.setting if isinstance(err, InvalidSettings) else err.field
    assert (named, err.value) == (setting, value), str(err)
    assert allowed in str(err)


def test_katibs_rule_at_least_two_int_or_double_parameters() -> None:
    one = SearchSpace(parameters=(param("lr", "double", lo="0.01", hi="0.1"),
                                  param("opt", "categorical", values=("sgd", "adam")),
                                  param("bs", "discrete", values=("16", "32"))))
    check_refused(one, {}, "parameters", ["lr"], "at least 2 int or double parameters")
    two = SearchSpace(parameters=(*one.parameters, param("layers", "int", lo="1", hi="4")))
    CmaEs().validate(Problem("exp", two, OBJECTIVE, {}))


def test_nas_spaces_are_refused_by_name() -> None:
    check_refused(NB201, {}, "nasConfig", "a NAS search space", "int and double parameters only")


@pytest.mark.parametrize(("settings", "setting", "allowed"), [
    ({"restart_strategy": "sep"}, "restart_strategy", '"ipop", "bipop" or "None"'),
    ({"sigma": "0"}, "sigma", "(0, 1]"),
    ({"sigma": "abc"}, "sigma", "(0, 1]"),
    ({"random_state": "-3"}, "random_state", "[0, 4294967295]"),
])
def test_bad_settings_name_the_setting_value_and_range(settings: dict[str, str], setting: str,
                                                       allowed: str) -> None:
    check_refused(QUADRATIC, settings, setting, next(iter(settings.values())), allowed)


@pytest.mark.parametrize("strategy", ["None", "none", "ipop", "bipop"])
def test_katibs_restart_strategy_spellings_are_accepted(strategy: str) -> None:
    CmaEs().validate(Problem("exp", QUADRATIC, OBJECTIVE, {"restart_strategy": strategy, "sigma": "0.3"}))


def test_serves_over_grpc() -> None:
    got = round_trip("cmaes", QUADRATIC, {"random_state": "2"}, [], 3, ("restart_strategy", "sep"))
    assert len(got) == 3 and all(-5 <= float(a["x"]) <= 5 for a in got)
