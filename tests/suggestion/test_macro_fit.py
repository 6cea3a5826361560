"""Macro architectures that cannot take their input are never handed out.

A macro nasConfig may hold more shrinking ops (2x2 poolings, strided convolutions) than the
input allows: eight layers of which five pool a 28x28 image leave no map for the fifth.
Katib's ENAS hands such a child out and its trial crashes. Here the encoding knows each
op's shape (kubenas.op_shapes), the ENAS controller redraws a misfit, random sampling only
picks ops with a fitting continuation, and a space where nothing fits is refused up front.
Every suggested architecture is built by the real `trainer.enas` and run forward.
"""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from kubenas.op_shapes import first_misfit
from kubenas.space import GraphConfig, NasConfig, Operation, SearchSpace
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.enas import Enas
from suggestion.algorithms.enas.macro import MacroMode
from suggestion.algorithms.enas.session import new_session
from suggestion.algorithms.enas.settings import EnasSettings
from suggestion.algorithms.encoding.macro import MacroEncoding
from suggestion.algorithms.random_search import RandomSearch
from tests.suggestion.test_enas_spaces import ACCURACY, cat
from trainer.enas.model import build_child, parse_child

CONV = Operation("convolution", (cat("filter_size", "3"), cat("num_filter", "4")))
POOLS = Operation("reduction", (cat("reduction_type", "max_pooling", "avg_pooling"), cat("pool_size", "2")))


def _space(layers: int, side: int, ops: tuple[Operation, ...] = (CONV, POOLS)) -> SearchSpace:
    return SearchSpace(nas_config=NasConfig(GraphConfig(layers, (side, side, 1), (10,)), ops))


def _runs(assignments: dict[str, str], side: int) -> bool:
    net = build_child(parse_child(assignments["architecture"], assignments["nn_config"]))
    return net(torch.randn(2, 1, side, side)).shape == (2, 10)


def _op_ids(encoding: MacroEncoding, assignments: dict[str, str]) -> list[int]:
    return [row[0] for row in encoding.rows(encoding.decode(assignments))]


# 8 layers on an 8x8 input: two of the three ops halve the map, so at most three may be
# poolings; an untrained controller (uniform-ish over ops) draws more in most children.
SPACE, SIDE = _space(8, 8), 8


def test_the_untrained_controller_draws_misfits_in_this_space() -> None:
    """The premise of the next test: without redrawing, most children would not fit."""
    mode = MacroMode(SPACE.nas_config, EnasSettings(random_state=5))  # type: ignore[arg-type]
    session = new_session(mode, 3.5e-4, "fp", 5)
    with torch.no_grad():
        drawn = session.controller(40, generator=session.generator).decisions.tolist()
    assert sum(not mode.fits(d) for d in drawn) > 20


def test_enas_hands_out_only_architectures_that_fit_and_the_trainer_builds_them() -> None:
    problem = Problem("fit", SPACE, ACCURACY, {"random_state": "5", "controller_train_steps": "2"})
    encoding = MacroEncoding(SPACE.nas_config)  # type: ignore[arg-type]
    suggestions = Enas().suggest(problem, [], 30)
    assert len(suggestions) == 30
    for s in suggestions:
        assert first_misfit(encoding.ops, (SIDE, SIDE), _op_ids(encoding, dict(s.assignments))) is None
        assert _runs(dict(s.assignments), SIDE)


@pytest.mark.parametrize("seed", range(4))
def test_random_search_hands_out_only_architectures_that_fit(seed: int) -> None:
    problem = Problem("fit", SPACE, ACCURACY, {"random_state": str(seed)})
    encoding = MacroEncoding(SPACE.nas_config)  # type: ignore[arg-type]
    suggestions = RandomSearch().suggest(problem, [], 25)
    pools = [sum(op != 0 for op in _op_ids(encoding, dict(s.assignments))) for s in suggestions]
    assert max(pools) == 3  # it still reaches the deepest pooling the input allows
    for s in suggestions[:5]:
        assert _runs(dict(s.assignments), SIDE)


@pytest.mark.parametrize("side", [2, 5, 8, 28])
@pytest.mark.parametrize("layers", [1, 3, 6])
def test_random_draws_reach_exactly_the_architectures_that_fit(side: int, layers: int) -> None:
    """Every op sequence a random draw can produce fits, and every fitting one can be drawn
    (brute force over all op sequences of a conv / 2x2 pooling / strided conv space)."""
    strided = Operation("convolution", (cat("filter_size", "3"), cat("num_filter", "4"), cat("stride", "2")))
    space = _space(layers, side, (CONV, POOLS, strided))
    encoding = MacroEncoding(space.nas_config)  # type: ignore[arg-type]
    fitting = {ids for ids in itertools.product(range(len(encoding.ops)), repeat=layers)
               if first_misfit(encoding.ops, (side, side), ids) is None}
    drawn = {tuple(row[0] for row in encoding.rows(encoding.random_vector(random.Random(seed)))) for seed in range(600)}
    assert drawn <= fitting
    if layers <= 3:  # deeper, some fitting sequences are too unlikely (uniform per decision) to see
        assert drawn == fitting


def test_random_vectors_are_unchanged_where_every_child_fits() -> None:
    """Seeds drawn before this rule draw the same architectures where nothing can misfit."""
    encoding = MacroEncoding(_space(4, 32).nas_config)  # type: ignore[arg-type]
    ops = len(encoding.ops)
    for seed in range(5):
        plain, rng = random.Random(seed), random.Random(seed)
        expected: list[int] = []
        for i in range(4):
            expected.append(plain.randrange(ops))
            expected.extend(plain.randrange(2) for _ in range(i))
        assert encoding.random_vector(rng) == tuple(expected)


@pytest.mark.parametrize("algorithm", [Enas, RandomSearch])
def test_a_space_where_nothing_fits_is_refused_naming_num_layers(algorithm: type) -> None:
    space = _space(4, 8, (POOLS,))  # 8 -> 4 -> 2 -> 1: the fourth pooling cannot fit
    with pytest.raises(InvalidSettings) as info:
        algorithm().validate(Problem("fit", space, ACCURACY, {}))
    assert info.value.setting == "nasConfig.graphConfig.numLayers"
    assert info.value.value == 4 and "at most 3 layers" in info.value.allowed
    algorithm().validate(Problem("fit", _space(3, 8, (POOLS,)), ACCURACY, {}))
