"""Genotype codec (kubenas.genotype): JSON <-> Katib's printed `Genotype(...)` form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenas.genotype import GENOTYPE_LINE, Genotype, GenotypeError
from kubenas.metrics import compile_filters, parse_line

PRIMITIVES = ["max_pooling_3x3", "avg_pooling_3x3", "skip_connection", "separable_convolution_3x3",
              "dilated_convolution_5x5"]

# What Python prints for Katib's DARTS namedtuple (spaces after commas, range concat).
KATIB_REPR = (
    "Genotype(normal=[('separable_convolution_3x3', 0), ('skip_connection', 1), "
    "('dilated_convolution_5x5', 2), ('max_pooling_3x3', 0)], normal_concat=range(2, 4), "
    "reduce=[('max_pooling_3x3', 0), ('max_pooling_3x3', 1), ('skip_connection', 2), "
    "('avg_pooling_3x3', 1)], reduce_concat=range(2, 4))"
)


def sample() -> Genotype:
    return Genotype.build(
        normal=[("separable_convolution_3x3", 0), ("skip_connection", 1), ("dilated_convolution_5x5", 2), ("max_pooling_3x3", 0)],
        reduce=[("max_pooling_3x3", 0), ("max_pooling_3x3", 1), ("skip_connection", 2), ("avg_pooling_3x3", 1)],
    )


def test_katib_namedtuple_repr_with_spaces_parses() -> None:
    genotype = Genotype.parse_katib(KATIB_REPR)
    assert genotype == sample()
    assert genotype.normal_concat == (2, 3) and genotype.num_nodes == 2


def test_katib_text_round_trip_has_no_whitespace() -> None:
    text = sample().to_katib()
    assert " " not in text  # the StdOut collector splits on whitespace
    assert text.startswith("Genotype(normal=[('separable_convolution_3x3',0)")
    assert "normal_concat=range(2,4)" in text
    assert Genotype.parse_katib(text) == sample()


def test_json_round_trip() -> None:
    data = json.loads(sample().to_json())
    assert data["normal"][0] == ["separable_convolution_3x3", 0]
    assert data["reduce_concat"] == [2, 3]
    assert Genotype.from_json(sample().to_json()) == sample()


def test_best_genotype_line_matches_katib_metrics_format() -> None:
    line = "Best-Genotype=" + sample().to_katib()
    match = GENOTYPE_LINE.fullmatch(line)
    assert match is not None
    assert match.group(1) == "Best-Genotype"
    assert Genotype.parse_katib(match.group(2)) == sample()
    # Katib's darts example filter compiles as a two-group metricsFormat.
    (pattern,) = compile_filters([r"([\w-]+)=(Genotype.*)"])
    assert pattern.pattern == GENOTYPE_LINE.pattern


def test_genotype_is_not_a_numeric_metric() -> None:
    # The default parser must skip it rather than fail or invent a number.
    assert parse_line("Best-Genotype=" + sample().to_katib(), default_timestamp="t") == []


def test_non_contiguous_concat_is_written_as_a_list() -> None:
    g = Genotype.from_dict({**sample().to_dict(), "normal_concat": [3, 2]})
    assert "normal_concat=[3,2]" in g.to_katib()
    assert Genotype.parse_katib(g.to_katib()) == g


@pytest.mark.parametrize(
    "data, field",
    [
        ({"normal": [], "reduce": []}, "normal"),
        ({"normal": [["a", 0]], "reduce": [["a", 0]]}, "normal"),  # odd: two edges per node
        ({"normal": [["a", 0], ["b", 2]], "reduce": [["a", 0], ["b", 1]]}, "normal[1]"),  # node 0 sees 0..1
        ({"normal": [["a", 0], [1, 1]], "reduce": [["a", 0], ["b", 1]]}, "normal[1]"),
        ({"normal": [["a", 0], ["b", 1]], "reduce": [["a", 0], ["b", 1], ["c", 2], ["d", 0]]}, "reduce"),
        ({"normal": [["a", 0], ["b", 1]], "reduce": [["a", 0], ["b", 1]], "normal_concat": [5]}, "normal_concat"),
    ],
)
def test_bad_genotypes_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(GenotypeError) as info:
        Genotype.from_dict(data)
    assert info.value.field == field


@pytest.mark.parametrize("text", ["Genotype(", "genotype(normal=[])", "Genotype(normal=[('a', 0)] reduce=1)", "[1, 2]"])
def test_unreadable_katib_text(text: str) -> None:
    with pytest.raises(GenotypeError):
        Genotype.parse_katib(text)


@st.composite
def genotypes(draw: st.DrawFn) -> Genotype:
    nodes = draw(st.integers(1, 5))

    def edges() -> list[tuple[str, int]]:
        return [(draw(st.sampled_from(PRIMITIVES)), draw(st.integers(0, i // 2 + 1))) for i in range(2 * nodes)]

    return Genotype.build(edges(), edges())


@given(genotypes())
def test_codecs_round_trip(genotype: Genotype) -> None:
    assert Genotype.parse_katib(genotype.to_katib()) == genotype
    assert Genotype.from_json(genotype.to_json()) == genotype
    assert GENOTYPE_LINE.fullmatch(f"Best-Genotype={genotype.to_katib()}")
