"""Regularised evolution: one mutation per child, the aging population, which trials are
parents, settings errors, learning on a synthetic NB201 reward, and a real gRPC round trip.

Shared helpers (`search`, `nb201_reward`, `round_trip`, ...) live in tests/suggestion/model_based.py."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest

from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.evolution import RegularizedEvolution
from suggestion.algorithms.points import PointSpace
from tests.suggestion.contract import CONTRACT_SPACES, OBJECTIVE, SPACE_SETTINGS
from tests.suggestion.model_based import (
    NB201,
    NB201_SETTINGS,
    differences,
    nb201_reward,
    points_of,
    random_history,
    round_trip,
    search,
    trial,
)

ALL_SPACES = sorted(CONTRACT_SPACES)


@pytest.mark.parametrize("space_name", ALL_SPACES)
def test_each_child_is_its_parent_with_one_choice_changed(space_name: str) -> None:
    space = CONTRACT_SPACES[space_name]
    base = SPACE_SETTINGS.get(space_name, {})
    points = points_of(space, base)
    # A tournament over the whole population always picks its best member as the parent.
    settings = {**base, "population_size": "6", "sample_size": "6", "random_state": "3"}
    history = random_history(space, base, 6, value=lambda i: [0.2, 0.9, 0.1, 0.5, 0.3, 0.4][i])
    parent = points.decode(history[1].assignments)
    assert parent is not None
    # Three: the 48-point grid has only 7 neighbours of a point, some of them tried.
    children = RegularizedEvolution().suggest(Problem("exp", space, OBJECTIVE, settings), history, 3)
    assert len(children) == 3
    seen = {points.key(p) for p in (points.decode(t.assignments) for t in history) if p is not None}
    for child in children:
        point = points.decode(child.assignments)
        assert point is not None, child.assignments
        assert differences(point, parent) == 1, (point, parent)
        assert points.key(point) not in seen
        seen.add(points.key(point))


BEST_EVER = (3, 3, 3, 3, 3, 3)
YOUNG = [(1, 1, 1, 1, 1, 1), (2, 2, 2, 2, 2, 2), (4, 4, 4, 4, 4, 2)]


def aging_history(points: PointSpace) -> list[TrialRecord]:
    """An old champion and three younger, weaker trials. Names sort against age ("a-"
    first), so only completion times can order them."""
    history = [trial("z-old", points.assignments(BEST_EVER), 0.99, when=0)]
    return history + [trial(f"a-{i}", points.assignments(p), 0.5 + i / 10, when=10 + i) for i, p in enumerate(YOUNG)]


def test_the_oldest_member_ages_out_even_when_it_is_the_best() -> None:
    points = points_of(NB201, NB201_SETTINGS)
    best_ever, young = BEST_EVER, YOUNG
    history = aging_history(points)
    settings = {**NB201_SETTINGS, "population_size": "3", "sample_size": "3", "random_state": "1"}
    children = RegularizedEvolution().suggest(Problem("exp", NB201, OBJECTIVE, settings), history, 6)
    for child in children:
        point = points.decode(child.assignments)
        assert point is not None
        assert differences(point, young[2]) == 1  # the best of the three youngest
        assert differences(point, best_ever) >= 4

    # With a population of 4 the old champion is still alive and wins every tournament.
    settings["population_size"] = settings["sample_size"] = "4"
    children = RegularizedEvolution().suggest(Problem("exp", NB201, OBJECTIVE, settings), history, 4)
    assert all(differences(points.decode(c.assignments) or (), best_ever) == 1 for c in children)


def test_failed_trials_are_never_parents_and_early_stopped_ones_are() -> None:
    points = points_of(NB201, NB201_SETTINGS)
    vectors = [(0, 0, 0, 0, 0, 0), (1, 1, 1, 1, 1, 1), (2, 2, 2, 2, 2, 2), (4, 4, 4, 4, 4, 4)]
    history = [
        # A failed trial may still carry a metric line; it is not an evaluation.
        trial("failed", points.assignments(vectors[0]), 1.0, TrialCondition.FAILED, when=1),
        trial("unavailable", points.assignments(vectors[1]), None, TrialCondition.METRICS_UNAVAILABLE, when=2),
        trial("early", points.assignments(vectors[2]), 0.8, TrialCondition.EARLY_STOPPED, when=3),
        trial("done", points.assignments(vectors[3]), 0.4, when=4),
    ]
    settings = {**NB201_SETTINGS, "population_size": "2", "sample_size": "2", "random_state": "5"}
    children = RegularizedEvolution().suggest(Problem("exp", NB201, OBJECTIVE, settings), history, 5)
    for child in children:
        assert differences(points.decode(child.assignments) or (), vectors[2]) == 1


def test_random_until_the_population_is_started_counting_running_trials() -> None:
    settings = {**NB201_SETTINGS, "population_size": "5", "sample_size": "2", "random_state": "2"}
    problem = Problem("exp", NB201, OBJECTIVE, settings)
    points = points_of(NB201, NB201_SETTINGS)
    history = random_history(NB201, NB201_SETTINGS, 3, value=lambda i: 0.1 * i)
    running = random_history(NB201, NB201_SETTINGS, 2, seed=9)
    history += [TrialRecord(f"run-{i}", t.assignments, TrialCondition.RUNNING) for i, t in enumerate(running)]
    members = [points.decode(t.assignments) for t in history[:3]]
    # 3 evaluated + 2 running = a started population of 5: every child is a mutation.
    for child in RegularizedEvolution().suggest(problem, history, 6):
        point = points.decode(child.assignments)
        assert min(differences(point or (), m or ()) for m in members) == 1
    # With 2 fewer trials the batch starts with random points (and none repeats a trial).
    early = RegularizedEvolution().suggest(problem, history[:3], 2)
    taken = {t.assignments["architecture"] for t in history}
    assert all(c.assignments["architecture"] not in taken for c in early)


def test_same_history_in_any_order_gives_the_same_children() -> None:
    settings = {**NB201_SETTINGS, "random_state": "11"}
    history = random_history(NB201, NB201_SETTINGS, 25, value=lambda i: (i * 37 % 11) / 10)
    problem = Problem("exp", NB201, OBJECTIVE, settings)
    first = [dict(s.assignments) for s in RegularizedEvolution().suggest(problem, history, 4)]
    shuffled = history[:]
    random.Random(4).shuffle(shuffled)
    assert [dict(s.assignments) for s in RegularizedEvolution().suggest(problem, shuffled, 4)] == first
    other = Problem("exp", NB201, OBJECTIVE, {**settings, "random_state": "12"})
    assert [dict(s.assignments) for s in RegularizedEvolution().suggest(other, history, 4)] != first


def test_hpo_mutation_respects_bounds_grid_and_log_scale() -> None:
    space = CONTRACT_SPACES["hpo_continuous"]
    points = points_of(space, {})
    history = random_history(space, {}, 10, value=lambda i: i / 10)
    # The best trial's lr sits mid-range on the log scale: 10**-2.5 within [1e-4, 0.1].
    parent = {**history[-1].assignments, "lr": "0.0031622776601683794"}
    history[-1] = trial(history[-1].name, parent, 0.9, when=9)
    settings = {"population_size": "10", "sample_size": "10", "random_state": "8"}
    children = RegularizedEvolution().suggest(Problem("exp", space, OBJECTIVE, settings), history, 200)
    changed: dict[str, list[float]] = {}
    for child in children:
        diff = [k for k in parent if child.assignments[k] != parent[k]]
        assert len(diff) == 1, (child.assignments, parent)
        assert points.decode(child.assignments) is not None  # in bounds, on the step grid
        changed.setdefault(diff[0], []).append(float(child.assignments[diff[0]]))
    assert set(changed) == {p.name for p in space.parameters}  # each parameter is mutated
    assert all(int(v) % 2 == 0 for v in changed["depth"])  # step 2 from 2
    # A step is a fraction of lr's log range (3 decades): children spread evenly by
    # factors around the parent. On a linear scale half of them would sit at the 1e-4 bound.
    steps = [math.log10(v / float(parent["lr"])) for v in changed["lr"]]
    assert 0.1 < statistics.median(abs(x) for x in steps) < 0.8, steps
    assert 0.25 < sum(x < 0 for x in steps) / len(steps) < 0.75, steps


@pytest.mark.parametrize(("settings", "name", "allowed"), [
    ({"sample_size": "11"}, "sample_size", "[1, population_size] = [1, 10]"),
    ({"population_size": "4", "sample_size": "5"}, "sample_size", "[1, 4]"),
    ({"population_size": "0"}, "population_size", "an integer in [1, 100000]"),
    ({"sample_size": "two"}, "sample_size", "an integer in [1, 100000]"),
    ({"num_nodes": "3"}, "num_nodes", "micro"),
])
def test_bad_settings_name_the_setting_value_and_range(settings: dict[str, str], name: str, allowed: str) -> None:
    problem = Problem("exp", NB201, OBJECTIVE, {**NB201_SETTINGS, **settings})
    with pytest.raises(InvalidSettings) as info:
        RegularizedEvolution().validate(problem)
    assert info.value.setting == name and allowed in str(info.value)
    assert str(info.value.value) == settings[name]


def test_search_mode_on_an_hpo_space_is_refused() -> None:
    problem = Problem("exp", CONTRACT_SPACES["hpo_grid"], OBJECTIVE, {"search_mode": "nb201"})
    with pytest.raises(InvalidSettings) as info:
        RegularizedEvolution().validate(problem)
    assert info.value.setting == "search_mode" and "nasConfig" in str(info.value)


def test_beats_random_on_a_synthetic_nb201_reward() -> None:
    seeds = range(6)
    evo = [search("evolution", NB201, NB201_SETTINGS, nb201_reward, 60, 2, s)[-1] for s in seeds]
    rnd = [search("random", NB201, NB201_SETTINGS, nb201_reward, 60, 2, s)[-1] for s in seeds]
    # Measured: evolution 5.3 edges on average, random 3.5 (the optimum has 6).
    assert statistics.mean(evo) > statistics.mean(rnd) + 1.0, (evo, rnd)
    assert statistics.mean(evo) >= 4.5, evo


def test_serves_over_grpc() -> None:
    settings = {**NB201_SETTINGS, "population_size": "4", "sample_size": "4", "random_state": "1"}
    history = random_history(NB201, NB201_SETTINGS, 4, value=lambda i: i / 4)
    got = round_trip("evolution", NB201, settings, history, 3, ("sample_size", "9"))
    assert len(got) == 3
    points = points_of(NB201, NB201_SETTINGS)
    best = points.decode(history[-1].assignments)
    for a in got:
        assert json.loads(a["nn_config"])["search_mode"] == "nb201"
        assert differences(points.decode(a) or (), best or ()) == 1


def test_aging_over_grpc_uses_the_wire_completion_time() -> None:
    # Names sort against age, so a server that lost status.completion_time would keep the
    # old champion (its name sorts last) and breed from it.
    points = points_of(NB201, NB201_SETTINGS)
    settings = {**NB201_SETTINGS, "population_size": "3", "sample_size": "3", "random_state": "1"}
    got = round_trip("evolution", NB201, settings, aging_history(points), 4, ("population_size", "0"))
    for a in got:
        assert differences(points.decode(a) or (), YOUNG[2]) == 1
        assert differences(points.decode(a) or (), BEST_EVER) >= 4
