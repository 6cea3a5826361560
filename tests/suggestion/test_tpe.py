"""TPE (Optuna's sampler from the request history): it learns, a batch and running trials
are not re-proposed, distributions keep our grids without Optuna warnings, seeding,
settings errors, lazy imports, and a gRPC round trip in micro mode."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import warnings
from collections.abc import Mapping

import pytest

from kubenas.genotype import Genotype
from kubenas.space import SearchSpace
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.registry import algorithm_class
from suggestion.algorithms.tpe import Tpe
from tests.suggestion.contract import CONTRACT_SPACES, OBJECTIVE, check_hpo_assignments, param
from tests.suggestion.model_based import (
    NB201,
    NB201_SETTINGS,
    QUADRATIC,
    nb201_reward,
    points_of,
    quadratic,
    random_history,
    round_trip,
    search,
    trial,
)


def test_beats_random_on_a_quadratic_and_on_a_synthetic_nb201_reward() -> None:
    seeds = range(3)
    tpe = [search("tpe", QUADRATIC, {}, quadratic, 30, 1, s)[-1] for s in seeds]
    rnd = [search("random", QUADRATIC, {}, quadratic, 30, 1, s)[-1] for s in seeds]
    assert statistics.mean(tpe) > statistics.mean(rnd), (tpe, rnd)
    tpe = [search("tpe", NB201, NB201_SETTINGS, nb201_reward, 30, 2, s)[-1] for s in seeds]
    rnd = [search("random", NB201, NB201_SETTINGS, nb201_reward, 30, 2, s)[-1] for s in seeds]
    assert statistics.mean(tpe) > statistics.mean(rnd), (tpe, rnd)


@pytest.mark.parametrize("algorithm", ["evolution", "bayesian", "tpe"])
def test_minimising_a_loss_is_maximising_its_negation(algorithm: str) -> None:
    history = [TrialRecord(t.name, t.assignments, t.condition,
                           {"accuracy": quadratic(t.assignments), "loss": -quadratic(t.assignments)},
                           completion_time=t.completion_time)
               for t in random_history(QUADRATIC, {}, 20)]
    settings = {"random_state": "3", **({"n_initial_points": "5"} if algorithm == "bayesian" else {})}

    def ask(objective: Objective) -> list[dict[str, str]]:
        problem = Problem("exp", QUADRATIC, objective, settings)
        return [dict(s.assignments) for s in algorithm_class(algorithm)().suggest(problem, history, 3)]

    maximise = ask(Objective(ObjectiveType.MAXIMIZE, "accuracy"))
    assert ask(Objective(ObjectiveType.MINIMIZE, "loss")) == maximise
    assert ask(Objective(ObjectiveType.MAXIMIZE, "loss")) != maximise


def test_a_batch_and_running_trials_are_not_proposed_again() -> None:
    space = SearchSpace(parameters=(param("opt", "categorical", values=("sgd", "adam", "rmsprop", "lamb")),
                                    param("layers", "int", lo="1", hi="3")))
    history = [trial(f"t-{i}", {"opt": o, "layers": str(k)}, 1.0 if o == "adam" else 0.1 * k, when=i)
               for i, (o, k) in enumerate((o, k) for o in ("sgd", "adam", "rmsprop") for k in (1, 2, 3))]
    history.append(TrialRecord("running", {"opt": "lamb", "layers": "2"}, TrialCondition.RUNNING))
    problem = Problem("exp", space, OBJECTIVE, {"n_startup_trials": "2", "random_state": "0"})
    got = [dict(s.assignments) for s in Tpe().suggest(problem, history, 2)]
    taken = [dict(t.assignments) for t in history]
    # 12 points, 10 taken: the batch is exactly the two left.
    assert sorted(g["layers"] for g in got) == ["1", "3"] and all(g["opt"] == "lamb" for g in got)
    assert not [g for g in got if g in taken]


def test_grids_logs_and_bounds_are_kept_without_optuna_warnings() -> None:
    space = SearchSpace(parameters=(
        param("lr", "double", lo="0.01", hi="0.1", step="0.04"),  # max off the grid: 0.01, 0.05, 0.09
        param("units", "int", lo="8", hi="512", dist="logUniform"),
        param("depth", "int", lo="2", hi="21", step="3", dist="logUniform"),  # no log with a step in Optuna
        param("wd", "double", lo="0.00001", hi="0.01", dist="logNormal"),
        param("batch", "discrete", values=("64", "16", "32")),
    ))
    problem = Problem("exp", space, OBJECTIVE, {"n_startup_trials": "3", "random_state": "5"})
    rng = random.Random(1)
    history: list[TrialRecord] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(6):
            for s in Tpe().suggest(problem, history, 3):
                check_hpo_assignments(space, s.assignments)
                history.append(trial(f"t-{i}-{len(history)}", s.assignments, rng.random(), when=len(history)))
    assert {t.assignments["lr"] for t in history} <= {"0.01", "0.05", "0.09"}
    assert {int(t.assignments["depth"]) for t in history} <= set(range(2, 22, 3))


def test_same_history_in_any_order_gives_the_same_suggestions() -> None:
    history = random_history(NB201, NB201_SETTINGS, 15, value=lambda i: (i * 7 % 5) / 5)
    problem = Problem("exp", NB201, OBJECTIVE, {**NB201_SETTINGS, "random_state": "9"})
    first = [dict(s.assignments) for s in Tpe().suggest(problem, history, 3)]
    shuffled = history[::-1]
    assert [dict(s.assignments) for s in Tpe().suggest(problem, shuffled, 3)] == first
    other = Problem("exp", NB201, OBJECTIVE, {**NB201_SETTINGS, "random_state": "10"})
    assert [dict(s.assignments) for s in Tpe().suggest(other, history, 3)] != first


@pytest.mark.parametrize(("settings", "name", "allowed"), [
    ({"n_startup_trials": "-1"}, "n_startup_trials", "an integer in [0, 100000]"),
    ({"n_ei_candidates": "0"}, "n_ei_candidates", "an integer in [1, 10000]"),
    ({"multivariate": "yes"}, "multivariate", '"true" or "false"'),
    ({"search_mode": "cells"}, "search_mode", "one of macro, micro, nb201"),
])
def test_bad_settings_name_the_setting_value_and_range(settings: dict[str, str], name: str, allowed: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        Tpe().validate(Problem("exp", NB201, OBJECTIVE, settings))
    assert info.value.setting == name and allowed in str(info.value)
    assert str(info.value.value) == settings[name]


def test_optuna_and_scikit_learn_load_only_for_the_algorithms_that_use_them() -> None:
    script = """
import sys
from suggestion.service import make_server
from suggestion.algorithms.base import Problem
from suggestion.algorithms.registry import algorithm_class
from tests.suggestion.contract import CONTRACT_SPACES, OBJECTIVE
server, _ = make_server("random")
problem = Problem("e", CONTRACT_SPACES["hpo_grid"], OBJECTIVE, {})
for name in ("random", "evolution"):
    algorithm_class(name)().suggest(problem, [], 2)
print(sorted(m for m in ("optuna", "sklearn") if m in sys.modules))
algorithm_class("tpe")().suggest(problem, [], 2)
print(sorted(m for m in ("optuna", "sklearn") if m in sys.modules))
server.stop(None)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "['optuna']"], out.stdout + out.stderr


def micro_genotype(assignments: Mapping[str, str]) -> Genotype:
    return Genotype.from_json(assignments["architecture"])


def test_serves_over_grpc_in_micro_mode() -> None:
    space = CONTRACT_SPACES["nas_micro"]
    settings = {"search_mode": "micro", "num_nodes": "3"}
    history = random_history(space, settings, 5, value=lambda i: i / 5)
    got = round_trip("tpe", space, {**settings, "n_startup_trials": "2", "random_state": "1"}, history, 3,
                     ("n_ei_candidates", "0"))
    points = points_of(space, settings)
    assert len(got) == 3
    for a in got:
        assert json.loads(a["nn_config"])["search_mode"] == "micro"
        assert micro_genotype(a).num_nodes == 3 and points.decode(a) is not None
    assert len({a["architecture"] for a in got}) == 3


def test_contract_spaces_all_get_suggestions_after_many_trials() -> None:
    for name, space in CONTRACT_SPACES.items():
        settings = {"search_mode": "micro", "num_nodes": "3"} if name == "nas_micro" else \
            NB201_SETTINGS if name == "nas_nb201" else {}
        history = random_history(space, settings, 30, value=lambda i: (i % 7) / 7)
        got = Tpe().suggest(Problem("exp", space, OBJECTIVE, {**settings, "random_state": "2"}), history, 4)
        points = points_of(space, settings)
        assert len(got) == 4 and all(points.decode(s.assignments) is not None for s in got), name


@pytest.mark.parametrize("algorithm", ["evolution", "bayesian", "tpe"])
def test_bounds_near_the_float_limit_work_without_warnings(algorithm: str) -> None:
    space = SearchSpace(parameters=(param("b", "double", lo="-1.7e308", hi="1.7e308"),
                                    param("c", "double", lo="1e-300", hi="1e300", dist="logUniform")))
    settings = {"random_state": "1", **({"n_initial_points": "3"} if algorithm == "bayesian" else {})}
    problem = Problem("exp", space, OBJECTIVE, settings)
    algo = algorithm_class(algorithm)()
    history: list[TrialRecord] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(8):
            for s in algo.suggest(problem, history, 2):
                check_hpo_assignments(space, s.assignments)
                history.append(trial(f"t-{len(history):02d}", s.assignments, float(len(history) % 5),
                                     when=len(history)))
    assert len({(t.assignments["b"], t.assignments["c"]) for t in history}) == 16
