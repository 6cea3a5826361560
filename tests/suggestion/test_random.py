"""Random search: each distribution's shape and bounds, step grids, repeats avoided, seeding."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter

import pytest

from kubenas.genotype import Genotype
from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.space import GraphConfig, NasConfig, Operation, SearchSpace
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.grid import GridSearch
from suggestion.algorithms.random_search import RandomSearch
from suggestion.algorithms.sampling import history_rng, nas_assignments
from tests.suggestion.contract import (
    CONTRACT_SPACES,
    OBJECTIVE,
    check_macro_assignments,
    check_micro_assignments,
    check_nb201_assignments,
    param,
)


def draw(space: SearchSpace, n: int, seed: int = 1, history: list[TrialRecord] | None = None) -> list[dict[str, str]]:
    problem = Problem("exp", space, OBJECTIVE, {"random_state": str(seed)})
    return [dict(s.assignments) for s in RandomSearch().suggest(problem, history or [], n)]


def values(space: SearchSpace, name: str, n: int = 2000) -> list[float]:
    return [float(p[name]) for p in draw(space, n)]


def test_log_uniform_is_uniform_in_log_space() -> None:
    xs = values(SearchSpace(parameters=(param("lr", "double", lo="0.0001", hi="0.1", dist="logUniform"),)), "lr")
    assert all(1e-4 <= x <= 0.1 for x in xs)
    logs = [math.log10(x) for x in xs]
    # Uniform on [-4, -1]: mean -2.5, a third of the mass per decade.
    assert abs(statistics.mean(logs) + 2.5) < 0.1
    assert all(abs(sum(lo <= v < lo + 1 for v in logs) / len(logs) - 1 / 3) < 0.05 for lo in (-4, -3, -2))


def test_normal_is_centred_with_the_bounds_at_three_sigma() -> None:
    xs = values(SearchSpace(parameters=(param("dropout", "double", lo="0.0", hi="0.6", dist="normal"),)), "dropout")
    assert all(0.0 <= x <= 0.6 for x in xs)
    assert abs(statistics.mean(xs) - 0.3) < 0.01
    within_one_sigma = sum(abs(x - 0.3) <= 0.1 for x in xs) / len(xs)
    assert 0.63 < within_one_sigma < 0.74


def test_log_normal_is_centred_in_log_space() -> None:
    xs = values(SearchSpace(parameters=(param("decay", "double", lo="0.00001", hi="0.1", dist="logNormal"),)), "decay")
    assert all(1e-5 <= x <= 0.1 for x in xs)
    assert abs(statistics.median(math.log10(x) for x in xs) + 3) < 0.1


def test_uniform_int_hits_every_value_including_both_ends_evenly() -> None:
    counts = Counter(p["k"] for p in draw(SearchSpace(parameters=(param("k", "int", lo="1", hi="5"),)), 2500))
    assert set(counts) == {"1", "2", "3", "4", "5"}
    assert all(400 < c < 600 for c in counts.values()), counts


def test_stepped_and_shaped_ints_stay_on_their_grid() -> None:
    space = SearchSpace(parameters=(param("depth", "int", lo="2", hi="20", step="3", dist="normal"),
                                    param("units", "int", lo="1", hi="1000000", dist="logUniform")))
    points = draw(space, 500)
    assert {p["depth"] for p in points} <= {str(v) for v in range(2, 21, 3)}
    units = [int(p["units"]) for p in points]
    assert min(units) >= 1 and max(units) <= 1_000_000
    # Log-uniform: half the mass below sqrt(1 * 1e6); repeats avoided skew it only slightly.
    assert 0.4 < sum(u < 1000 for u in units) / len(units) < 0.6


def test_double_with_step_gives_clean_grid_text() -> None:
    space = SearchSpace(parameters=(param("m", "double", lo="0.1", hi="0.9", step="0.2"),))
    assert {p["m"] for p in draw(space, 200)} == {"0.1", "0.3", "0.5", "0.7", "0.9"}


def test_discrete_and_categorical_values_come_from_the_list() -> None:
    space = SearchSpace(parameters=(param("bs", "discrete", values=("16", "64")),
                                    param("opt", "categorical", values=("sgd", "adam", "rmsprop"))))
    points = draw(space, 300)
    assert {p["bs"] for p in points} == {"16", "64"}
    assert {p["opt"] for p in points} == {"sgd", "adam", "rmsprop"}


def test_a_small_space_is_not_repeated_until_exhausted() -> None:
    space = SearchSpace(parameters=(param("a", "categorical", values=("x", "y")), param("b", "int", lo="0", hi="1")))
    for seed in range(20):
        first = draw(space, 3, seed=seed)
        assert len({json.dumps(p, sort_keys=True) for p in first}) == 3
        history = [TrialRecord(f"t{i}", p, TrialCondition.FAILED) for i, p in enumerate(first)]
        (last,) = draw(space, 1, seed=seed, history=history)
        assert last not in first
        # With every point tried, repeats are the only answer and still come back in full.
        assert len(draw(space, 2, seed=seed, history=history + [TrialRecord("t9", last)])) == 2


def test_seed_and_history_decide_the_draw() -> None:
    space = CONTRACT_SPACES["hpo_continuous"]
    history = [TrialRecord("a", draw(space, 1, seed=3)[0], TrialCondition.SUCCEEDED, {"accuracy": 0.4})]
    assert draw(space, 3, seed=3) == draw(space, 3, seed=3)
    assert draw(space, 3, seed=3) != draw(space, 3, seed=4)
    assert draw(space, 3, seed=3) != draw(space, 3, seed=3, history=history)
    # The controller's trial order is not part of the contract.
    two = history + [TrialRecord("b", draw(space, 1, seed=5)[0])]
    assert draw(space, 2, seed=3, history=two) == draw(space, 2, seed=3, history=two[::-1])


def test_unseeded_draws_differ_between_calls() -> None:
    problem = Problem("exp", CONTRACT_SPACES["hpo_continuous"], OBJECTIVE)
    algo = RandomSearch()
    assert algo.suggest(problem, [], 2) != algo.suggest(problem, [], 2)


def test_nas_draws_use_every_op_and_both_skip_values() -> None:
    space = CONTRACT_SPACES["nas_macro"]
    points = draw(space, 300)
    rows = [json.loads(p["architecture"]) for p in points]
    assert {row[0] for arch in rows for row in arch} == set(range(7))
    assert {bit for arch in rows for row in arch for bit in row[1:]} == {0, 1}
    for p in points[:20]:
        check_macro_assignments(space, p)


# --- extreme spaces (QA) ------------------------------------------------------------------

def test_an_int_over_two_billion_values_is_drawn_without_listing_them() -> None:
    # Before: rng.choice(spec.grid_values()) built a list of 2**31 ints (minutes, ~70 GB).
    import time

    space = SearchSpace(parameters=(param("seed", "int", lo="0", hi="2147483647"),
                                    param("huge", "int", lo="-10" + "0" * 30, hi="1" + "0" * 30, step="7")))
    start = time.monotonic()
    points = draw(space, 200)
    assert time.monotonic() - start < 1
    seeds = [int(p["seed"]) for p in points]
    assert all(0 <= s <= 2147483647 for s in seeds) and len(set(seeds)) == 200
    assert all(space.parameters[1].contains(p["huge"]) and (int(p["huge"]) + 10**31) % 7 == 0 for p in points)


def test_a_stepped_double_with_a_billion_points_is_drawn_without_listing_them() -> None:
    space = SearchSpace(parameters=(param("x", "double", lo="0", hi="1", step="0.000000001"),
                                    param("y", "double", lo="1e-300", hi="1e-200", step="1e-210", dist="logNormal")))
    points = draw(space, 200)
    assert all(0 <= float(p["x"]) <= 1 and len(p["x"]) <= 12 for p in points)
    assert all(1e-300 <= float(p["y"]) <= 1e-200 for p in points)


def test_bounds_near_the_float_limit_give_finite_values() -> None:
    # Before: rng.uniform computed lo + (hi - lo) * u = inf, sent as the text "inf".
    for dist in ("uniform", "normal"):
        space = SearchSpace(parameters=(param("x", "double", lo="-1e308", hi="1e308", dist=dist),
                                        param("z", "double", lo="-1e308", hi="1e308", step="1e307")))
        for p in draw(space, 200):
            assert math.isfinite(float(p["x"])) and -1e308 <= float(p["x"]) <= 1e308
            assert math.isfinite(float(p["z"])) and space.parameters[1].contains(p["z"])


# --- search_mode: micro and nb201 ------------------------------------------------------------

def _nb201_two_ops() -> SearchSpace:
    """64 NB201 cells: two primitives on each of the six edges."""
    return SearchSpace(nas_config=NasConfig(GraphConfig(5, (32, 32, 3), (10,)),
                                            (Operation("none"), Operation("skip_connect"))))


def test_nb201_draws_are_uniform_per_edge_over_the_primitives() -> None:
    space = CONTRACT_SPACES["nas_nb201"]
    problem = Problem("exp", space, OBJECTIVE, {"random_state": "4", "search_mode": "nb201"})
    points = [dict(s.assignments) for s in RandomSearch().suggest(problem, [], 600)]
    assert len({p["architecture"] for p in points}) == 600  # 15,625 cells: no repeats
    for edge in range(6):
        counts = Counter(Cell201.from_string(p["architecture"]).ops[edge] for p in points)
        assert set(counts) == set(NB201_PRIMITIVES) and all(80 < c < 160 for c in counts.values()), counts
    for p in points[:20]:
        check_nb201_assignments(space, p)


def test_nb201_cells_are_not_repeated_while_redraws_find_new_ones() -> None:
    space = _nb201_two_ops()
    settings = {"random_state": "2", "search_mode": "nb201"}
    problem = Problem("exp", space, OBJECTIVE, settings)
    history: list[TrialRecord] = []
    for r in range(7):
        got = RandomSearch().suggest(problem, history, 8)
        history += [TrialRecord(f"r{r}-{i}", dict(s.assignments), TrialCondition.FAILED) for i, s in enumerate(got)]
    # 56 of 64 cells: a new one is found within the redraws every time.
    assert len({t.assignments["architecture"] for t in history}) == 56
    every = [TrialRecord(f"g{i}", dict(s.assignments)) for i, s in enumerate(GridSearch().suggest(problem, [], 64))]
    assert len(RandomSearch().suggest(problem, every, 3)) == 3  # all tried: repeats, still n


def test_micro_draws_are_genotypes_with_num_nodes_nodes() -> None:
    space = CONTRACT_SPACES["nas_micro"]
    problem = Problem("exp", space, OBJECTIVE, {"random_state": "1", "search_mode": "micro", "num_nodes": "2"})
    points = [dict(s.assignments) for s in RandomSearch().suggest(problem, [], 200)]
    genotypes = [Genotype.from_json(p["architecture"]) for p in points]
    assert all(g.num_nodes == 2 for g in genotypes)
    # node 1's inputs range over the two cell inputs and node 0 (genotype index 2).
    assert {i for g in genotypes for _op, i in g.normal[2:]} == {0, 1, 2}
    assert {op for g in genotypes for op, _i in g.reduce} == {"convolution_3x3", "convolution_5x5",
                                                               "separable_convolution_3x3"}
    for p in points[:10]:
        check_micro_assignments(space, p)


def test_macro_output_is_unchanged_by_the_encodings() -> None:
    # Per layer one randrange over the ops, then one per skip bit: what random always drew.
    space = CONTRACT_SPACES["nas_macro"]
    nas = space.nas_config
    assert nas is not None
    rng = history_rng(5, [])
    rows = [[rng.randrange(7), *(rng.randrange(2) for _ in range(i))] for i in range(3)]
    assert draw(space, 1, seed=5)[0] == nas_assignments(nas, nas.expanded(), rows)


def test_search_mode_on_an_hpo_space_is_refused() -> None:
    problem = Problem("exp", CONTRACT_SPACES["hpo_grid"], OBJECTIVE, {"search_mode": "nb201"})
    with pytest.raises(InvalidSettings) as err:
        RandomSearch().validate(problem)
    assert err.value.setting == "search_mode" and "nasConfig" in err.value.allowed
