"""Grid search: enumeration order, wire text, identity of tried points, limits, exhaustion."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from kubenas.nb201 import Cell201
from kubenas.space import GraphConfig, NasConfig, Operation, SearchSpace, SpaceError
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem, SearchSpaceExhausted
from suggestion.algorithms.encoding import nas_encoding
from suggestion.algorithms.grid import MAX_GRID_POINTS, GridSearch, grid_size
from tests.suggestion.contract import (
    CONTRACT_SPACES,
    OBJECTIVE,
    check_macro_assignments,
    check_micro_assignments,
    check_nb201_assignments,
    param,
)

HPO = SearchSpace(parameters=(param("lr", "double", lo="0.0", hi="0.3", step="0.1"),
                              param("opt", "categorical", values=("sgd", "adam"))))
TINY_NAS = SearchSpace(nas_config=NasConfig(GraphConfig(2, (8, 8, 1), (10,)),
                                            (Operation("identity"), Operation("conv", (param("k", "int", lo="3", hi="3"),)))))


def suggest(space: SearchSpace, n: int, history: list[TrialRecord] | None = None,
            settings: dict[str, str] | None = None) -> list[dict[str, str]]:
    problem = Problem("exp", space, OBJECTIVE, settings or {})
    return [dict(s.assignments) for s in GridSearch().suggest(problem, history or [], n)]


def test_hpo_order_is_first_parameter_slowest_with_clean_double_text() -> None:
    points = suggest(HPO, 8)
    assert [(p["lr"], p["opt"]) for p in points] == [
        (lr, opt) for lr in ("0.0", "0.1", "0.2", "0.3") for opt in ("sgd", "adam")]


def test_tried_points_are_recognised_in_any_spelling_and_any_condition() -> None:
    history = [TrialRecord("a", {"lr": "0", "opt": "sgd"}, TrialCondition.FAILED),
               TrialRecord("b", {"lr": "0.10", "opt": "sgd"}, TrialCondition.RUNNING),
               TrialRecord("c", {"lr": "1e-1", "opt": "adam"}, TrialCondition.SUCCEEDED, {"accuracy": 0.9}),
               TrialRecord("foreign", {"other": "1"})]
    assert suggest(HPO, 2, history) == [{"lr": "0.0", "opt": "adam"}, {"lr": "0.2", "opt": "sgd"}]


def test_nas_grid_enumerates_every_architecture_once_then_is_exhausted() -> None:
    assert grid_size(TINY_NAS) == 2 * 2 * 2  # 2 ops per layer, one skip bit
    history: list[TrialRecord] = []
    for _ in range(4):
        points = suggest(TINY_NAS, 2, history)
        for p in points:
            check_macro_assignments(TINY_NAS, p)
        history += [TrialRecord(f"t{len(history) + i}", p) for i, p in enumerate(points)]
    archs = [json.loads(t.assignments["architecture"]) for t in history]
    assert archs[:3] == [[[0], [0, 0]], [[0], [0, 1]], [[0], [1, 0]]]
    assert len({json.dumps(a) for a in archs}) == 8
    with pytest.raises(SearchSpaceExhausted) as info:
        suggest(TINY_NAS, 1, history)
    assert (info.value.requested, info.value.remaining) == (1, 0)


def test_katib_printed_architectures_count_as_tried() -> None:
    history = [TrialRecord("k", {"architecture": "[[0], [0,   0]]", "nn_config": "{'num_layers': 2}"})]
    assert json.loads(suggest(TINY_NAS, 1, history)[0]["architecture"]) == [[0], [0, 1]]


def test_fewer_left_than_asked_suggests_nothing_and_says_how_many_remain() -> None:
    history = [TrialRecord(f"t{i}", p) for i, p in enumerate(suggest(HPO, 6))]
    with pytest.raises(SearchSpaceExhausted) as info:
        suggest(HPO, 3, history)
    assert info.value.remaining == 2 and "3 assignments requested, 2 remain" in str(info.value)
    assert len(suggest(HPO, 2, history)) == 2


def test_random_state_is_accepted_and_changes_nothing() -> None:
    assert suggest(HPO, 5, settings={"random_state": "1"}) == suggest(HPO, 5, settings={"random_state": "99"})


def test_a_huge_grid_is_refused_quickly_without_being_built() -> None:
    space = SearchSpace(parameters=(param("n", "int", lo="0", hi="1000000000"),))
    started = time.perf_counter()
    with pytest.raises(SpaceError) as info:
        GridSearch().validate(Problem("exp", space, OBJECTIVE))
    assert time.perf_counter() - started < 0.5
    assert info.value.field == "parameters" and f"at most {MAX_GRID_POINTS}" in info.value.allowed
    assert "n: 1000000001" in str(info.value.value)


def test_a_deep_nas_grid_is_refused_naming_its_size() -> None:
    deep = SearchSpace(nas_config=NasConfig(GraphConfig(8, (8, 8, 1), (10,)), TINY_NAS.nas_config.operations))
    with pytest.raises(SpaceError) as info:
        GridSearch().validate(Problem("exp", deep, OBJECTIVE))
    assert info.value.field == "nasConfig"
    assert "2 operations ^ 8 layers x 2 ^ 28 skip bits" in str(info.value.value)


def test_double_without_step_names_the_parameter() -> None:
    space = SearchSpace(parameters=(param("opt", "categorical", values=("a",)), param("lr", "double", lo="0", hi="1")))
    with pytest.raises(SpaceError) as info:
        GridSearch().validate(Problem("exp", space, OBJECTIVE))
    assert info.value.field == "parameters[1].feasibleSpace.step" and "'lr'" in info.value.allowed


def test_long_history_is_skipped_quickly() -> None:
    space = SearchSpace(parameters=(param("a", "int", lo="1", hi="100"), param("b", "int", lo="1", hi="100")))
    history = [TrialRecord(f"t{i}", p, TrialCondition.SUCCEEDED, {"accuracy": 0.1}) for i, p in enumerate(suggest(space, 1000))]
    started = time.perf_counter()
    nxt = suggest(space, 5, history)
    assert time.perf_counter() - started < 0.5
    assert nxt[0] == {"a": "11", "b": "1"}


def test_a_grid_reaching_the_float_limit_is_finite() -> None:
    # Before: -1e308 + 20 * 1e307 overflowed in the step product and the grid held 'inf'.
    from kubenas.space import SearchSpace
    from suggestion.algorithms.base import Problem
    from tests.suggestion.contract import OBJECTIVE, param

    space = SearchSpace(parameters=(param("z", "double", lo="-1e308", hi="1e308", step="1e307"),))
    points = [s.assignments["z"] for s in GridSearch().suggest(Problem("g", space, OBJECTIVE, {}), [], 21)]
    assert points[0] == "-1e+308" and points[-1] == "1e+308" and len(set(points)) == 21


# --- search_mode: micro and nb201 ------------------------------------------------------------

NB201_TWO_OPS = SearchSpace(nas_config=NasConfig(GraphConfig(5, (32, 32, 3), (10,)),
                                                 (Operation("none"), Operation("skip_connect"))))


def test_nb201_grid_counts_edges_in_string_order_last_edge_fastest() -> None:
    settings = {"search_mode": "nb201"}
    points = suggest(CONTRACT_SPACES["nas_nb201"], 3, settings=settings)
    assert [p["architecture"] for p in points] == [
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|",
    ]
    for p in points:
        check_nb201_assignments(CONTRACT_SPACES["nas_nb201"], p)
    problem = Problem("exp", CONTRACT_SPACES["nas_nb201"], OBJECTIVE, settings)
    assert grid_size(problem.space, nas_encoding(problem.space.nas_config, settings)) == 5**6  # type: ignore[arg-type]


def test_nb201_grid_enumerates_every_cell_once_then_is_exhausted() -> None:
    settings = {"search_mode": "nb201"}
    history: list[TrialRecord] = []
    while len(history) < 64:
        got = suggest(NB201_TWO_OPS, 16, history, settings)
        history += [TrialRecord(f"t{len(history) + i}", p, TrialCondition.FAILED) for i, p in enumerate(got)]
    keys = [Cell201.from_string(t.assignments["architecture"]).table_key(("none", "skip_connect")) for t in history]
    assert keys == ["".join(bits) for bits in itertools.product("01", repeat=6)]
    with pytest.raises(SearchSpaceExhausted) as info:
        suggest(NB201_TWO_OPS, 1, history, settings)
    assert (info.value.requested, info.value.remaining) == (1, 0)


def test_a_small_micro_grid_runs_and_the_default_one_is_refused_naming_search_mode() -> None:
    one_op = SearchSpace(nas_config=NasConfig(GraphConfig(2, (8, 8, 1), (10,)), (Operation("skip_connection"),)))
    points = suggest(one_op, 16, settings={"search_mode": "micro", "num_nodes": "1"})
    assert len({p["architecture"] for p in points}) == 16  # (2 inputs x 2 inputs) per cell, two cells
    for p in points:
        check_micro_assignments(one_op, p)
    with pytest.raises(SearchSpaceExhausted):
        suggest(one_op, 17, settings={"search_mode": "micro", "num_nodes": "1"})
    problem = Problem("exp", CONTRACT_SPACES["nas_micro"], OBJECTIVE, {"search_mode": "micro"})
    with pytest.raises(InvalidSettings) as err:
        GridSearch().validate(problem)
    assert err.value.setting == "search_mode" and err.value.value == "micro"
    assert "about 10^" in err.value.allowed and str(MAX_GRID_POINTS) in err.value.allowed
