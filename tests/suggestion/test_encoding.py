"""NAS encodings (suggestion.algorithms.encoding): choices, codec round trips, keys, grid
order, wire compatibility with the earlier macro and ENAS micro outputs, and refusals."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.common import EncodedSearchSettings
from kubenas.genotype import Genotype
from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.space import GraphConfig, NasConfig, Operation, SearchSpace, SpaceError
from suggestion.algorithms.base import InvalidSettings
from suggestion.algorithms.encoding import (
    MacroEncoding,
    MicroEncoding,
    NasEncoding,
    Nb201Encoding,
    check_hpo_settings,
    nas_encoding,
)
from suggestion.algorithms.sampling import nas_assignments, nas_size
from tests.suggestion.contract import CONTRACT_SPACES, _katib_like_nas, nb201_nas, param

KATIB_NAS = _katib_like_nas()


def encodings() -> list[NasEncoding]:
    return [
        MacroEncoding(_katib_like_nas(1)),
        MacroEncoding(KATIB_NAS),
        MicroEncoding(KATIB_NAS, 1),
        MicroEncoding(KATIB_NAS, 3),
        Nb201Encoding(nb201_nas()),
    ]


@pytest.fixture(params=encodings(), ids=lambda e: f"{e.mode}-{len(e.choices)}")
def encoding(request: pytest.FixtureRequest) -> NasEncoding:
    return request.param


def test_round_trip_and_keys_for_random_vectors(encoding: NasEncoding) -> None:
    rng = random.Random(3)
    for _ in range(200):
        vector = encoding.random_vector(rng)
        assert all(0 <= v < c.size for v, c in zip(vector, encoding.choices))
        wire = encoding.encode(vector)
        assert set(wire) == {"architecture", "nn_config"}
        assert encoding.decode(wire) == vector
        assert encoding.key(vector) == encoding.assignments_key(wire)
        padded = {**wire, "architecture": f" {wire['architecture']}\n"}
        assert encoding.assignments_key(padded) == encoding.key(vector)
        if encoding.mode == "macro":
            # Whitespace is not identity: Katib prints lists with spaces.
            spaced = {**wire, "architecture": wire["architecture"].replace(",", ",\t ")}
            assert encoding.assignments_key(spaced) == encoding.key(vector)


def test_grid_points_are_every_vector_once_first_choice_slowest(encoding: NasEncoding) -> None:
    # Spaces too large to list are checked on a prefix: the order is what is under test.
    limit = min(encoding.size, 50_000)
    points = list(itertools.islice(encoding.points(), limit + 1))
    assert len(points) == limit + (encoding.size > limit)
    points = points[:limit]
    expected = itertools.product(*(range(c.size) for c in encoding.choices))
    assert [v for _k, v in points] == list(itertools.islice(expected, limit))
    assert len({k for k, _v in points}) == limit
    for key, vector in points[:: max(1, len(points) // 50)]:
        assert key == encoding.key(vector)


def test_out_of_range_vectors_are_refused(encoding: NasEncoding) -> None:
    with pytest.raises(SpaceError):
        encoding.encode((0,) * (len(encoding.choices) + 1))
    bad = [0] * len(encoding.choices)
    bad[-1] = encoding.choices[-1].size
    with pytest.raises(SpaceError) as err:
        encoding.encode(bad)
    assert err.value.field == encoding.choices[-1].name


def test_macro_choices_sizes_and_output_match_the_earlier_macro_format() -> None:
    enc = MacroEncoding(KATIB_NAS)
    ops = KATIB_NAS.expanded()
    assert [c.name for c in enc.choices] == [
        "layer_0.op", "layer_1.op", "layer_1.skip_0", "layer_2.op", "layer_2.skip_0", "layer_2.skip_1"]
    assert [c.kind for c in enc.choices] == ["op", "op", "skip", "op", "skip", "skip"]
    assert enc.size == nas_size(KATIB_NAS) == len(ops) ** 3 * 2**3
    rows = [[4], [6, 1], [0, 0, 1]]
    wire = enc.encode((4, 6, 1, 0, 0, 1))
    assert wire == nas_assignments(KATIB_NAS, ops, rows)
    assert wire["architecture"] == "[[4], [6, 1], [0, 0, 1]]"
    assert set(json.loads(wire["nn_config"])["embedding"]) == {"0", "4", "6"}


def test_macro_draws_in_the_order_random_search_always_drew() -> None:
    # Per layer: one randrange over the ops, then one randrange(2) per skip bit.
    enc = MacroEncoding(KATIB_NAS)
    a, b = random.Random(11), random.Random(11)
    expected = [[a.randrange(7), *(a.randrange(2) for _ in range(i))] for i in range(3)]
    assert enc.rows(enc.random_vector(b)) == expected


def _enas_micro_reference(nas: NasConfig, num_nodes: int, vector: tuple[int, ...]) -> dict[str, str]:
    """What the ENAS micro mode wrote before the shared codec, rebuilt from its rules."""
    primitives = ["convolution_3x3", "convolution_5x5", "separable_convolution_3x3"]
    cells = []
    for c in range(2):
        part = vector[c * 4 * num_nodes : (c + 1) * 4 * num_nodes]
        edges = [(primitives[part[i + 1]], part[i]) for i in range(0, len(part), 2)]
        used = {i for _p, i in edges}
        cells.append((edges, [k for k in range(2, num_nodes + 2) if k not in used]))
    genotype = Genotype.from_dict({"normal": [list(e) for e in cells[0][0]], "normal_concat": cells[0][1],
                                   "reduce": [list(e) for e in cells[1][0]], "reduce_concat": cells[1][1]})
    config = {"search_mode": "micro", "num_layers": nas.graph_config.num_layers, "num_nodes": num_nodes,
              "input_sizes": list(nas.graph_config.input_sizes),
              "output_sizes": list(nas.graph_config.output_sizes), "primitives": primitives}
    return {"architecture": genotype.to_json(), "nn_config": json.dumps(config)}


def test_micro_choices_and_output_match_the_enas_micro_format() -> None:
    enc = MicroEncoding(KATIB_NAS, 2)
    # The 2x2 poolings of the macro space cannot keep a cell's size: not primitives.
    assert enc.primitives == ["convolution_3x3", "convolution_5x5", "separable_convolution_3x3"]
    assert [c.name for c in enc.choices[:4]] == [
        "normal.node_0.input_0", "normal.node_0.op_0", "normal.node_0.input_1", "normal.node_0.op_1"]
    assert [c.size for c in enc.choices[:8]] == [2, 3, 2, 3, 3, 3, 3, 3]
    assert enc.choices[8].name == "reduce.node_0.input_0"
    assert {c.kind for c in enc.choices} == {"input", "op"}
    assert enc.size == (2 * 3 * 2 * 3 * 3 * 3 * 3 * 3) ** 2
    rng = random.Random(5)
    for _ in range(50):
        vector = enc.random_vector(rng)
        assert enc.encode(vector) == _enas_micro_reference(KATIB_NAS, 2, vector)


def test_nb201_choices_string_and_nn_config() -> None:
    enc = Nb201Encoding(nb201_nas())
    assert enc.primitives == list(NB201_PRIMITIVES)
    assert [c.name for c in enc.choices] == ["edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2"]
    assert {c.kind for c in enc.choices} == {"op"} and enc.size == 5**6
    wire = enc.encode((3, 3, 3, 1, 3, 2))
    assert wire["architecture"] == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert Cell201.from_string(wire["architecture"]).table_key() == "333132"
    assert json.loads(wire["nn_config"]) == {
        "num_layers": 5, "input_sizes": [32, 32, 3], "output_sizes": [10], "search_mode": "nb201",
        "primitives": list(NB201_PRIMITIVES)}
    # The vector is the table key when the primitives are the benchmark's.
    vector = enc.decode(wire)
    assert "".join(map(str, vector)) == "333132"


def test_nb201_accepts_other_primitives_on_the_same_cell() -> None:
    nas = NasConfig(GraphConfig(3, (8, 8, 1), (10,)), (
        Operation("skip_connection"),
        Operation("convolution", (param("filter_size", "categorical", values=("3", "5")),)),
    ))
    enc = nas_encoding(nas, {"search_mode": "nb201"})
    assert enc.primitives == ["skip_connection", "convolution_3x3", "convolution_5x5"]  # type: ignore[attr-defined]
    assert enc.size == 3**6
    wire = enc.encode((0, 1, 2, 0, 1, 2))
    assert wire["architecture"].startswith("|skip_connection~0|+|convolution_3x3~0|convolution_5x5~1|")


@pytest.mark.parametrize(
    ("architecture", "field"),
    [
        ("|max_pool~0|+|none~0|none~1|+|none~0|none~1|none~2|", "architecture"),  # unknown primitive
        ("[[0], [1, 0]]", "architecture"),  # a macro architecture
        ("|none~0|+|none~0|none~1|", "architecture"),
    ],
)
def test_nb201_decode_refuses_what_does_not_fit(architecture: str, field: str) -> None:
    enc = Nb201Encoding(nb201_nas())
    with pytest.raises(SpaceError) as err:
        enc.decode({"architecture": architecture, "nn_config": "{}"})
    assert err.value.field == field
    with pytest.raises(SpaceError):
        enc.decode({"nn_config": "{}"})


def test_micro_and_macro_decode_refuse_each_others_architectures() -> None:
    macro, micro = MacroEncoding(KATIB_NAS), MicroEncoding(KATIB_NAS, 2)
    rng = random.Random(1)
    macro_wire, micro_wire = macro.encode(macro.random_vector(rng)), micro.encode(micro.random_vector(rng))
    with pytest.raises(ValueError):
        macro.decode(micro_wire)
    with pytest.raises(ValueError):
        micro.decode(macro_wire)
    with pytest.raises(ValueError):
        MicroEncoding(KATIB_NAS, 3).decode(micro_wire)  # other num_nodes
    with pytest.raises(ValueError):
        MacroEncoding(_katib_like_nas(4)).decode(macro_wire)  # other numLayers


def test_settings_parse_to_none_and_resolve_to_the_documented_defaults() -> None:
    parsed = dict(parse_settings({}, EncodedSearchSettings))
    assert parsed == {"random_state": None, "search_mode": None, "num_nodes": None}
    enc = nas_encoding(KATIB_NAS, parsed)
    assert isinstance(enc, MacroEncoding)
    micro = nas_encoding(KATIB_NAS, dict(parse_settings({"search_mode": "micro"}, EncodedSearchSettings)))
    assert isinstance(micro, MicroEncoding) and micro.num_nodes == 5


@pytest.mark.parametrize(
    ("raw", "setting", "allowed"),
    [
        ({"search_mode": "cell"}, "search_mode", "one of macro, micro, nb201"),
        ({"search_mode": "micro", "num_nodes": "0"}, "num_nodes", "an integer in [1, 64]"),
        ({"search_mode": "micro", "num_nodes": "65"}, "num_nodes", "an integer in [1, 64]"),
        ({"search_mode": "micro", "num_nodes": "two"}, "num_nodes", "an integer in [1, 64]"),
    ],
)
def test_bad_setting_values_name_setting_value_and_range(raw: dict[str, str], setting: str, allowed: str) -> None:
    with pytest.raises(InvalidSettings) as err:
        parse_settings(raw, EncodedSearchSettings)
    assert err.value.setting == setting and err.value.value == raw[setting]
    assert allowed in err.value.allowed


@pytest.mark.parametrize("mode", ["macro", "nb201", None])
def test_num_nodes_without_micro_is_refused(mode: str | None) -> None:
    raw = {"num_nodes": "4"} if mode is None else {"search_mode": mode, "num_nodes": "4"}
    with pytest.raises(InvalidSettings) as err:
        nas_encoding(KATIB_NAS, dict(parse_settings(raw, EncodedSearchSettings)))
    assert err.value.setting == "num_nodes" and "micro" in err.value.allowed


def test_nas_settings_on_an_hpo_space_are_refused() -> None:
    hpo = CONTRACT_SPACES["hpo_grid"]
    check_hpo_settings(hpo, {"search_mode": None, "num_nodes": None})
    check_hpo_settings(SearchSpace(nas_config=KATIB_NAS), {"search_mode": "nb201", "num_nodes": None})
    with pytest.raises(InvalidSettings) as err:
        check_hpo_settings(hpo, {"search_mode": "nb201", "num_nodes": None})
    assert err.value.setting == "search_mode" and "nasConfig" in err.value.allowed


def _nas(*ops: Operation, sizes: tuple[tuple[int, ...], tuple[int, ...]] = ((8, 8, 1), (10,))) -> NasConfig:
    return NasConfig(GraphConfig(2, *sizes), ops)


@pytest.mark.parametrize(
    ("mode", "nas", "field"),
    [
        # Every primitive of a micro cell must keep its size: none and 2x2 are not usable.
        ("micro", _nas(Operation("none"), Operation("max_pool", (param("k", "categorical", values=("2",)),))),
         "nasConfig.operations"),
        ("nb201", _nas(Operation("skip connect")), "nasConfig.operations"),
        ("nb201", _nas(Operation("a|b")), "nasConfig.operations"),
        ("nb201", _nas(Operation("none"), sizes=((), (10,))), "nasConfig.graphConfig.inputSizes"),
        ("nb201", _nas(Operation("none"), sizes=((8,), ())), "nasConfig.graphConfig.outputSizes"),
        ("nb201", _nas(Operation("reduction", (param("reduction_type", "categorical", values=("max",)),))),
         "nasConfig.operations[reduction].parameters"),
        ("macro", NasConfig(GraphConfig(0, (8,), (10,)), (Operation("none"),)), "nasConfig.graphConfig.numLayers"),
        ("nb201", NasConfig(GraphConfig(2, (8,), (10,)), ()), "nasConfig.operations"),
    ],
)
def test_spaces_that_do_not_fit_the_mode_name_the_nasconfig_field(mode: str, nas: NasConfig, field: str) -> None:
    with pytest.raises(InvalidSettings) as err:
        nas_encoding(nas, {"search_mode": mode, "num_nodes": None})
    assert err.value.setting == field, str(err.value)
    assert str(err.value).startswith(f"{field}: invalid value ")


def test_nb201_allows_none_and_the_canonical_space_lists_the_benchmark_primitives() -> None:
    enc = nas_encoding(nb201_nas(), {"search_mode": "nb201"})
    cells = {enc.architecture(v) for v in [(0,) * 6, (1,) * 6]}
    assert "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|" in cells
    assert enc.fingerprint() == {"mode": "nb201", "primitives": list(NB201_PRIMITIVES)}


def test_numpy_integers_encode_like_ints_and_non_integers_are_refused(encoding: NasEncoding) -> None:
    import numpy as np

    vector = encoding.random_vector(random.Random(8))
    assert encoding.encode(np.array(vector, dtype=np.int64)) == encoding.encode(vector)  # type: ignore[arg-type]
    for bad in (0.5, "1", True, None):
        with pytest.raises(SpaceError) as err:
            encoding.encode((bad, *vector[1:]))  # type: ignore[arg-type]
        assert err.value.field == "vector[0]"
