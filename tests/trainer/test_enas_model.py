"""ENAS child networks: random architectures from Katib's spaces build and train a step;
malformed assignments are rejected with one error naming the field."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubenas.genotype import Genotype
from kubenas.space import GraphConfig, MacroArchitecture, expand_operations, nn_config
from tests.trainer.spaces import DARTS_MACRO_OPERATIONS, KATIB_EXAMPLE_ARCHITECTURE, katib_enas_gpu
from trainer.enas.model import ArchitectureError, build_child, parse_child, plan_macro

CELL_PRIMITIVES = ["separable_convolution_3x3", "separable_convolution_5x5", "dilated_convolution_3x3",
                   "dilated_convolution_5x5", "max_pooling_3x3", "avg_pooling_3x3", "skip_connection",
                   "convolution_3x3", "depthwise_convolution_3x3"]


def _assignments(rows: list[list[int]], graph: GraphConfig, operations=None) -> tuple[str, str]:
    ops = expand_operations(operations or katib_enas_gpu().operations)
    arch = MacroArchitecture(tuple(tuple(r) for r in rows))
    return arch.to_json(), json.dumps(nn_config(graph, ops, arch.op_ids))


@st.composite
def macro_rows(draw, num_ops: int, max_layers: int) -> list[list[int]]:
    n = draw(st.integers(1, max_layers))
    return [[draw(st.integers(0, num_ops - 1))] + [draw(st.integers(0, 1)) for _ in range(i)] for i in range(n)]


def _forward_backward(model: torch.nn.Module, shape: tuple[int, int, int], classes: int) -> None:
    """Gradients reach both ends (build the model without dropout: an all-skip child has a
    one-feature classifier, and dropout zeroing both images' feature leaves no gradient)."""
    model.train()
    x = torch.randn(2, *shape)
    logits = model(x)
    assert logits.shape == (2, classes)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    # Cells whose edges never read an input leave that input (even a whole earlier cell)
    # unused, so only the ends of the network must always receive gradients.
    first = next(n for n in grads if n.endswith("weight"))
    assert grads[first] is not None and grads[first].abs().sum() > 0
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)
    assert grads["classifier.weight"].abs().sum() > 0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=macro_rows(106, 8))
def test_random_katib_enas_gpu_architectures_build_or_are_rejected_for_shape(rows: list[list[int]]) -> None:
    # 16×16×3 keeps the test fast while still allowing four stride-2 layers.
    graph = GraphConfig(len(rows), (16, 16, 3), (10,))
    spec = parse_child(*_assignments(rows, graph))
    try:
        plan = plan_macro(spec)
    except ArchitectureError as exc:
        assert "cannot downsample" in exc.allowed or "does not fit" in exc.allowed
        return
    model = build_child(spec, dropout=0.0)
    _forward_backward(model, (3, 16, 16), 10)
    assert plan[-1].out_hw[0] >= 1


@settings(max_examples=15, deadline=None)
@given(rows=macro_rows(len(expand_operations(DARTS_MACRO_OPERATIONS)), 5))
def test_random_darts_vocabulary_macro_architectures(rows: list[list[int]]) -> None:
    graph = GraphConfig(len(rows), (8, 8, 1), (10,))
    spec = parse_child(*_assignments(rows, graph, DARTS_MACRO_OPERATIONS))
    _forward_backward(build_child(spec, dropout=0.0), (1, 8, 8), 10)


def test_katib_example_architecture_layers_and_skip_inputs() -> None:
    graph = GraphConfig(8, (32, 32, 3), (10,))
    spec = parse_child(*_assignments(KATIB_EXAMPLE_ARCHITECTURE, graph))
    plan = plan_macro(spec)
    assert [p.out_hw[0] for p in plan] == [16, 8, 8, 4, 4, 4, 2, 1]
    # Layer 2 ([22, 1, 0]) reads layer 1 and, by Katib's indexing, the network input.
    assert plan[2].inputs == (2, 0) and plan[2].in_channels == 128 + 3
    assert plan[6].inputs == (6, 1, 2, 4, 5)
    _forward_backward(build_child(spec, dropout=0.0), (3, 32, 32), 10)


@st.composite
def genotypes(draw, nodes: int) -> Genotype:
    def cell() -> list[list]:
        return [[draw(st.sampled_from(CELL_PRIMITIVES)), draw(st.integers(0, n + 1))] for n in range(nodes) for _ in (0, 1)]
    return Genotype.from_dict({"normal": cell(), "reduce": cell()})


@settings(max_examples=10, deadline=None)
@given(genotype=genotypes(3), layers=st.integers(1, 3))
def test_random_micro_genotypes_build_cell_networks(genotype: Genotype, layers: int) -> None:
    config = {"search_mode": "micro", "num_layers": layers, "num_nodes": 3, "input_sizes": [8, 8, 1],
              "output_sizes": [10], "primitives": CELL_PRIMITIVES, "init_channels": 4}
    spec = parse_child(genotype.to_json(), json.dumps(config))
    assert spec.mode == "micro"
    _forward_backward(build_child(spec, dropout=0.0), (1, 8, 8), 10)


def test_micro_is_detected_from_an_object_architecture_with_katib_quotes() -> None:
    g = Genotype.build([("skip_connection", 0), ("max_pooling_3x3", 1)], [("avg_pooling_3x3", 0), ("skip_connection", 1)])
    text = json.dumps(g.to_dict()).replace('"', "'")
    spec = parse_child(text, "{'num_layers': 3, 'input_sizes': [8, 8, 1], 'output_sizes': [10]}")
    assert spec.genotype == g and spec.num_layers == 3


def test_katib_single_quoted_strings_and_wrapping_quotes_are_accepted() -> None:
    graph = GraphConfig(2, (8, 8, 1), (10,))
    arch, config = _assignments([[0], [3, 1]], graph)
    katib_config = config.replace('"', "'").replace("3,", "'3',")
    spec = parse_child(f'"{arch}"', f'"{katib_config}"')
    assert spec.embedding[0].opt_params["filter_size"] == 3 and spec.num_layers == 2


GOOD_CONFIG = {"num_layers": 2, "input_sizes": [8, 8, 1], "output_sizes": [10],
               "embedding": {"0": {"opt_id": 0, "opt_type": "convolution",
                                   "opt_params": {"filter_size": 3, "num_filter": 8, "stride": 2}}}}


def _with(**changes) -> str:
    return json.dumps({**GOOD_CONFIG, **changes})


@pytest.mark.parametrize(
    ("architecture", "config", "field", "hint"),
    [
        ("[[0], [0, 1", _with(), "architecture", "must be JSON"),
        ("[[0], [0, 1]]", "{'num_layers': ", "nn_config", "must be JSON"),
        ("[[0], [0, 1]]", "[1, 2]", "nn_config", "JSON object"),
        ("[[0], [0, 1, 1]]", _with(), "architecture[1]", "skip bits"),
        ("[[0], [0, 2]]", _with(), "architecture[1]", "0 or 1"),
        ("[[0]]", _with(), "architecture", "num_layers=2"),
        ("[[0], [7, 0]]", _with(), "architecture[1][0]", "embedding"),
        ("[['a'], [0, 0]]", _with(), "architecture", "integer rows"),
        ("[[0], [0, 0]]", _with(input_sizes=[8, -8, 1]), "nn_config.input_sizes", "positive"),
        ("[[0], [0, 0]]", _with(output_sizes="ten"), "nn_config.output_sizes", "positive"),
        ("[[0], [0, 0]]", _with(num_layers="two"), "nn_config.num_layers", ">= 1"),
        ("[[0], [0, 0]]", _with(embedding=[]), "nn_config.embedding", "op ids"),
        ("{'normal': [['skip_connection', 5]]}", _with(), "architecture.normal", "pairs"),
    ],
)
def test_malformed_assignments_name_the_field(architecture: str, config: str, field: str, hint: str) -> None:
    with pytest.raises(ArchitectureError) as info:
        build_child(parse_child(architecture, config))
    assert info.value.field == field, str(info.value)
    assert hint in str(info.value)


def test_unknown_op_type_is_rejected_naming_the_embedding_entry() -> None:
    config = json.loads(_with())
    config["embedding"]["0"]["opt_type"] = "transformer"
    with pytest.raises(ArchitectureError) as info:
        build_child(parse_child("[[0], [0, 1]]", json.dumps(config)))
    assert info.value.field == "nn_config.embedding['0'].opt_type" and "convolution" in info.value.allowed


def test_too_many_stride_two_layers_for_an_8x8_input() -> None:
    config = _with(num_layers=4)
    with pytest.raises(ArchitectureError) as info:
        build_child(parse_child("[[0], [0, 0], [0, 0, 0], [0, 0, 0, 0]]", config))
    assert info.value.field.startswith("architecture[3] (convolution")
    assert "stride-2 op cannot downsample a 1x1" in str(info.value)


def test_too_many_reduction_cells_for_the_input() -> None:
    g = Genotype.build([("skip_connection", 0), ("skip_connection", 1)], [("max_pooling_3x3", 0), ("skip_connection", 1)])
    config = {"search_mode": "micro", "num_layers": 3, "input_sizes": [1, 1, 1], "output_sizes": [10]}
    with pytest.raises(ArchitectureError) as info:
        build_child(parse_child(g.to_json(), json.dumps(config)))
    assert info.value.field == "nn_config.num_layers" and "cannot halve a 1x1" in str(info.value)


def test_unknown_cell_primitive_names_the_edge() -> None:
    g = {"normal": [["sep_conv_3x3", 0], ["skip_connection", 1]], "reduce": [["skip_connection", 0], ["none", 1]]}
    config = {"search_mode": "micro", "num_layers": 2, "input_sizes": [8, 8, 1], "output_sizes": [10]}
    with pytest.raises(ArchitectureError) as info:
        build_child(parse_child(json.dumps(g), json.dumps(config)))
    assert info.value.field == "architecture.normal[0]" and "separable_convolution" in info.value.allowed
