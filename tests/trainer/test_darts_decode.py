"""Genotype decoding from alphas, the mixed op (incl. partial channels) and the cell picture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kubenas.genotype import Genotype
from trainer.darts.decode import decode_cell, decode_genotype, edge_count, node_softmax
from trainer.darts.mixed_op import MixedOp, channel_shuffle
from trainer.darts.plot import plot_genotype
from trainer.darts.supernet import Supernet

pytestmark = pytest.mark.usefixtures("one_thread")

PRIMS = ("none", "separable_convolution_3x3", "max_pooling_3x3", "skip_connection")


def alphas_for(choices: dict[int, tuple[int, float]], num_nodes: int) -> torch.Tensor:
    """Zero alphas with `edge -> (primitive index, value)` set."""
    a = torch.zeros(edge_count(num_nodes), len(PRIMS))
    for edge, (k, value) in choices.items():
        a[edge, k] = value
    return a


def test_hand_set_alphas_decode_to_the_expected_cell() -> None:
    # 3 nodes: edges 0-1 (node 0), 2-4 (node 1), 5-8 (node 2).
    a = alphas_for({0: (1, 3.0), 1: (3, 2.0),
                    2: (2, 1.0), 3: (1, 0.5), 4: (3, 4.0),
                    5: (1, 0.1), 6: (2, 5.0), 7: (3, 0.2), 8: (1, 6.0)}, 3)
    assert decode_cell(a, PRIMS, 3) == [
        ("separable_convolution_3x3", 0), ("skip_connection", 1),
        ("max_pooling_3x3", 0), ("skip_connection", 2),
        ("max_pooling_3x3", 1), ("separable_convolution_3x3", 3),
    ]


def test_none_is_never_chosen_even_where_it_dominates() -> None:
    a = alphas_for({0: (0, 9.0), 1: (0, 9.0), 2: (0, 9.0), 3: (2, 0.3), 4: (0, 9.0)}, 2)
    a[0, 3] = 0.2  # edge 0: none wins overall, skip is the best of the rest
    edges = decode_cell(a, PRIMS, 2)
    assert all(p != "none" for p, _ in edges)
    assert edges[0] == ("skip_connection", 0)
    assert ("max_pooling_3x3", 1) in edges[2:]


def test_decoded_genotype_concatenates_all_nodes_and_round_trips_katib_text() -> None:
    torch.manual_seed(3)
    g = decode_genotype(torch.randn(edge_count(4), 4), torch.randn(edge_count(4), 4), PRIMS, 4)
    assert g.normal_concat == (2, 3, 4, 5) and g.reduce_concat == (2, 3, 4, 5)
    assert Genotype.parse_katib(g.to_katib()) == g
    assert Genotype.from_json(g.to_json()) == g


def test_decode_rejects_alphas_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        decode_cell(torch.zeros(4, 4), PRIMS, 3)


def test_channel_shuffle_is_a_permutation_that_interleaves_groups() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1)
    y = channel_shuffle(x, 4)
    assert y.flatten().tolist() == [0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]


@pytest.mark.parametrize(("stride", "k"), [(1, 1), (2, 1), (1, 4), (2, 4), (2, 2)])
def test_mixed_op_shapes_and_partial_channels_parameter_saving(stride: int, k: int) -> None:
    op = MixedOp(8, stride, PRIMS, partial_channels=k)
    x = torch.randn(2, 8, 7, 7)
    w = torch.softmax(torch.randn(len(PRIMS)), 0)
    y = op(x, w)
    assert y.shape == (2, 8, 4 if stride == 2 else 7, 4 if stride == 2 else 7)
    full = sum(p.numel() for p in MixedOp(8, stride, PRIMS).parameters())
    assert sum(p.numel() for p in op.parameters()) < full or k == 1 or full == 0
    y.sum().backward()


def test_mixed_op_with_only_none_weight_outputs_zero_on_the_sampled_channels() -> None:
    op = MixedOp(4, 1, PRIMS)
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert op(torch.randn(2, 4, 5, 5), w).abs().max() == 0


def test_partial_channels_must_divide_the_channels() -> None:
    with pytest.raises(ValueError, match="must divide"):
        MixedOp(6, 1, PRIMS, partial_channels=4)


@pytest.mark.parametrize("k", [1, 2])
def test_supernet_forward_backward_reaches_weights_and_alphas(k: int) -> None:
    net = Supernet(1, 10, 3, PRIMS[1:], init_channels=4, num_nodes=2, stem_multiplier=1, partial_channels=k)
    logits = net(torch.randn(4, 1, 8, 8))
    assert logits.shape == (4, 10)
    logits.logsumexp(1).sum().backward()
    assert net.alpha_normal.grad is not None and net.alpha_reduce.grad is not None
    assert net.alpha_normal.grad[:, 1:].abs().sum() > 0
    assert all(p.grad is not None for p in net.weights())


def test_cell_picture_is_a_png_of_both_cells(tmp_path: Path) -> None:
    g = Genotype.build([("separable_convolution_3x3", 0), ("skip_connection", 1),
                        ("max_pooling_3x3", 0), ("separable_convolution_3x3", 2)],
                       [("max_pooling_3x3", 0), ("max_pooling_3x3", 1),
                        ("skip_connection", 2), ("max_pooling_3x3", 1)])
    path = plot_genotype(g, tmp_path / "cells.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_node_softmax_normalises_each_nodes_incoming_edges() -> None:
    beta = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5, 3.0, 3.0, 0.0, 1.0])  # 3 nodes: 2 + 3 + 4 edges
    w = node_softmax(beta, 3)
    for start, end in ((0, 2), (2, 5), (5, 9)):
        assert float(w[start:end].sum()) == pytest.approx(1.0)
        torch.testing.assert_close(w[start:end], torch.softmax(beta[start:end], 0))
    with pytest.raises(ValueError, match="does not fit"):
        node_softmax(torch.zeros(8), 3)


def test_hand_set_betas_change_which_edges_a_node_keeps_but_not_their_primitives() -> None:
    # Node 1 (edges 2-4): alphas favour inputs 0 and 1; a strong beta on input 2 brings it in.
    a = alphas_for({0: (1, 3.0), 1: (3, 2.0), 2: (2, 1.0), 3: (1, 0.9), 4: (3, 0.2)}, 2)
    assert decode_cell(a, PRIMS, 2) == [("separable_convolution_3x3", 0), ("skip_connection", 1),
                                        ("max_pooling_3x3", 0), ("separable_convolution_3x3", 1)]
    beta = torch.zeros(edge_count(2))
    assert decode_cell(a, PRIMS, 2, beta) == decode_cell(a, PRIMS, 2)  # uniform betas change nothing
    beta[4] = 3.0
    assert decode_cell(a, PRIMS, 2, beta) == [("separable_convolution_3x3", 0), ("skip_connection", 1),
                                              ("max_pooling_3x3", 0), ("skip_connection", 2)]
    # Betas of another node never compete with node 1's: node 0 keeps both of its two edges.
    beta[0] = -9.0
    assert decode_cell(a, PRIMS, 2, beta)[:2] == [("separable_convolution_3x3", 0), ("skip_connection", 1)]


def test_supernet_with_edge_normalization_trains_betas_and_decodes_with_them() -> None:
    torch.manual_seed(0)
    net = Supernet(1, 10, 3, PRIMS[1:], init_channels=4, num_nodes=2, stem_multiplier=1, partial_channels=2,
                   edge_normalization=True)
    assert net.beta_normal is not None and net.beta_reduce is not None
    assert [n for n in net.named_alphas()] == ["alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce"]
    assert all(p is not net.beta_normal for p in net.weights())
    net(torch.randn(4, 1, 8, 8)).logsumexp(1).sum().backward()
    assert net.beta_normal.grad is not None and net.beta_normal.grad.abs().min() > 0
    assert net.beta_reduce.grad is not None and net.beta_reduce.grad.abs().min() > 0
    with torch.no_grad():
        net.alpha_normal.zero_()
        net.alpha_normal[:, 3] = 1.0  # skip_connection everywhere
        net.beta_normal.copy_(torch.tensor([0.0, 0.0, 5.0, -5.0, 5.0]))
    assert net.genotype().normal == (("skip_connection", 0), ("skip_connection", 1),
                                     ("skip_connection", 0), ("skip_connection", 2))
    plain = Supernet(1, 10, 3, PRIMS[1:], init_channels=4, num_nodes=2, partial_channels=2)
    assert plain.beta_normal is None and len(plain.alphas()) == 2
