"""The NAS-Bench-201 network: wiring of the cell, the skeleton's sizes, parsing of trial assignments."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from trainer.enas.model import ArchitectureError
from trainer.nb201.model import Nb201Cell, Nb201Network, ReductionBlock, build_nb201, parse_nb201
from trainer.train import count_params

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def uniform(op: str) -> Cell201:
    return Cell201((op,) * 6)


def only(edges: dict[int, str]) -> Cell201:
    """A cell with `none` everywhere except the given edge indices (string order)."""
    return Cell201(tuple(edges.get(e, "none") for e in range(6)))


CELLS = {
    "best": Cell201.from_string(BEST),
    "all-skip": uniform("skip_connect"),
    "all-none": uniform("none"),
    "all-conv3x3": uniform("nor_conv_3x3"),
    "pool-and-1x1": Cell201(("avg_pool_3x3", "nor_conv_1x1", "avg_pool_3x3", "none", "skip_connect", "nor_conv_1x1")),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_every_cell_runs_forward_and_backward_on_a_cpu_batch(name: str) -> None:
    torch.manual_seed(0)
    model = Nb201Network(CELLS[name], 3, 7, num_layers=2, init_channels=4)
    x = torch.randn(4, 3, 8, 8)
    y = model(x)
    assert y.shape == (4, 7) and torch.isfinite(y).all()
    y.logsumexp(1).sum().backward()
    stem_grad = model.stem[0].weight.grad
    assert model.classifier.weight.grad is not None
    if name == "all-none":
        # Nothing reaches the output from the input: the stem never gets a gradient.
        assert stem_grad is None or stem_grad.abs().sum() == 0
    else:
        assert stem_grad is not None and stem_grad.abs().sum() > 0


def test_all_none_network_gives_the_same_output_for_every_input() -> None:
    torch.manual_seed(0)
    model = Nb201Network(uniform("none"), 3, 5, num_layers=1, init_channels=4).eval()
    a, b = model(torch.randn(2, 3, 8, 8)), model(torch.randn(2, 3, 8, 8) * 5)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[0], model.classifier.bias.detach())


def test_cell_nodes_sum_their_incoming_edges() -> None:
    x = torch.randn(2, 3, 5, 5)
    # Only 3<-0 is an edge: the cell is the identity.
    torch.testing.assert_close(Nb201Cell(only({3: "skip_connect"}), 3)(x), x)
    # 1<-0, 2<-0, 2<-1 and 3<-2 skips: node1 = x, node2 = x + x, node3 = node2.
    torch.testing.assert_close(Nb201Cell(only({0: "skip_connect", 1: "skip_connect", 2: "skip_connect",
                                               5: "skip_connect"}), 3)(x), 2 * x)
    # Every edge a skip: node1 = x, node2 = 2x, node3 = x + x + 2x.
    torch.testing.assert_close(Nb201Cell(uniform("skip_connect"), 3)(x), 4 * x)
    # The output node unreachable: zero, although earlier nodes hold values.
    assert Nb201Cell(only({0: "skip_connect", 1: "skip_connect"}), 3)(x).abs().max() == 0


def test_none_edges_build_no_module_and_convs_build_one_each() -> None:
    cell = Nb201Cell(CELLS["pool-and-1x1"], 8)
    assert sorted(cell.edges) == ["1_0", "2_0", "2_1", "3_1", "3_2"]
    convs = [m for m in cell.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (1, 1)]


def test_skeleton_has_three_stages_with_residual_reductions() -> None:
    model = Nb201Network(CELLS["best"], 3, 10, num_layers=5, init_channels=16)
    layers = list(model.layers)
    assert len(layers) == 5 + 1 + 5 + 1 + 5
    assert [type(m).__name__ for m in layers].count("ReductionBlock") == 2
    assert isinstance(layers[5], ReductionBlock) and isinstance(layers[11], ReductionBlock)
    assert model.classifier.in_features == 64
    feats = torch.randn(1, 3, 32, 32)
    sizes = []
    h = model.stem(feats)
    for layer in layers:
        h = layer(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes[4] == (16, 32, 32) and sizes[10] == (32, 16, 16) and sizes[16] == (64, 8, 8)


def test_parameter_count_matches_the_benchmark() -> None:
    # NATS-Bench (topology space = NAS-Bench-201) reports 0.802426 M parameters on CIFAR-10 for
    # this cell at C=16, N=5 (github.com/D-X-Y/NATS-Bench/issues/36, the value the fixed API returns).
    cell = Cell201.from_string("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert count_params(Nb201Network(cell, 3, 10, 5, 16)) == 802_426


def test_parameters_grow_with_conv_edges_and_all_none_is_only_the_skeleton() -> None:
    counts = {name: count_params(Nb201Network(cell, 3, 10, 5, 16)) for name, cell in CELLS.items()}
    assert counts["all-none"] == counts["all-skip"] < counts["pool-and-1x1"] < counts["best"] < counts["all-conv3x3"]
    none = Nb201Network(uniform("none"), 3, 10, 5, 16)
    cells = [m for m in none.layers if isinstance(m, Nb201Cell)]
    assert len(cells) == 15 and sum(count_params(c) for c in cells) == 0
    skeleton = sum(count_params(m) for m in (none.stem, none.lastact, none.classifier,
                                              *[m for m in none.layers if isinstance(m, ReductionBlock)]))
    assert counts["all-none"] == skeleton
    # One 3x3 ReLU-conv-BN edge in all 15 cells: 9C^2 + 2C per cell at C, 2C, 4C (C = 16), five cells each.
    one_conv = count_params(Nb201Network(only({3: "nor_conv_3x3"}), 3, 10, 5, 16))
    assert one_conv - counts["all-none"] == 5 * sum(9 * c * c + 2 * c for c in (16, 32, 64))


@pytest.mark.parametrize(("side", "expected"), [(28, 7), (7, 2), (1, 1)])
def test_odd_map_sizes_work_in_the_reduction_shortcut(side: int, expected: int) -> None:
    model = Nb201Network(CELLS["best"], 1, 10, num_layers=1, init_channels=4)
    h = model.layers(model.stem(torch.randn(2, 1, side, side)))
    assert h.shape[-1] == expected


NN_CONFIG = ("{'num_layers': 2, 'input_sizes': [8, 8, 1], 'output_sizes': [10], 'search_mode': 'nb201', "
             "'primitives': " + str(list(NB201_PRIMITIVES)) + "}")


def test_parse_accepts_katib_quotes_and_builds_the_cell() -> None:
    spec = parse_nb201(f'"{BEST}"', f'"{NN_CONFIG}"')
    assert spec.cell.to_string() == BEST and spec.cell.table_key() == "333132"
    assert (spec.input_shape, spec.num_classes, spec.num_layers, spec.init_channels) == ((1, 8, 8), 10, 2, 16)
    assert spec.primitives == NB201_PRIMITIVES
    assert parse_nb201(BEST, NN_CONFIG, init_channels=8).init_channels == 8
    model = build_nb201(spec)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize(("architecture", "config", "field"), [
    ("|nor_conv_3x3~0|", NN_CONFIG, "architecture"),
    ("not a cell", NN_CONFIG, "architecture"),
    (BEST.replace("nor_conv_1x1", "sep_conv_3x3"), NN_CONFIG, "architecture (edge 3<-2)"),
    (BEST, NN_CONFIG.replace("'nor_conv_1x1', ", ""), "architecture (edge 3<-2)"),
    # Without nn_config.primitives the op registry is the judge, when the network is built.
    (BEST.replace("nor_conv_1x1", "sep_conv_3x3"), "{'num_layers': 1, 'input_sizes': [8, 8, 1], 'output_sizes': [10]}",
     "architecture (edge 3<-2)"),
    (BEST, NN_CONFIG.replace("'nb201'", "'macro'"), "nn_config.search_mode"),
    (BEST, NN_CONFIG.replace("[8, 8, 1]", "[8]"), "nn_config.input_sizes"),
    (BEST, NN_CONFIG.replace("'num_layers': 2", "'num_layers': 0"), "nn_config.num_layers"),
    (BEST, NN_CONFIG.replace("[10]", "[]"), "nn_config.output_sizes"),
    (BEST, "{'num_layers': 2", "nn_config"),
    (BEST, "[1, 2]", "nn_config"),
    (BEST, NN_CONFIG.replace("'primitives': [", "'primitives': [3, "), "nn_config.primitives"),
])
def test_bad_assignments_raise_one_error_naming_the_field(architecture: str, config: str, field: str) -> None:
    with pytest.raises(ArchitectureError) as info:
        build_nb201(parse_nb201(architecture, config))
    assert info.value.field == field
    assert str(info.value).startswith(field)
