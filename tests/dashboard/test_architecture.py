"""Architectures in words and drawings: ENAS macro rows, cell genotypes, NB201 cells."""

from __future__ import annotations

import json

from dashboard.architecture import describe, genotype_from_text, op_words
from kubenas.genotype import Genotype
from kubenas.nb201 import Cell201

NN_CONFIG = json.dumps({"num_layers": 3, "input_sizes": [8, 8, 1], "output_sizes": [10], "embedding": {
    "0": {"opt_id": 0, "opt_type": "separable_convolution", "opt_params": {"filter_size": "5", "num_filter": "32"}},
    "2": {"opt_id": 2, "opt_type": "reduction", "opt_params": {"reduction_type": "max_pooling", "pool_size": "2"}}}})


def test_macro_layers_name_their_op_and_skips() -> None:
    drawing = describe({"architecture": "[[0], [2, 0], [0, 1, 1]]", "nn_config": NN_CONFIG}, {}, {})
    assert drawing is not None and drawing.kind == "macro"
    assert drawing.lines == ["layer 0: separable convolution 5x5, 32 filters",
                             "layer 1: max pooling 2x2",
                             "layer 2: separable convolution 5x5, 32 filters; skips from layer 0, 1"]
    [graph] = drawing.graphs
    assert [n.id for n in graph.nodes] == ["input", "layer0", "layer1", "layer2", "output"]
    assert sorted((e.source, e.target) for e in graph.edges if e.kind == "skip") == \
        [("layer0", "layer2"), ("layer1", "layer2")]
    assert drawing.summary == "ENAS macro network: 3 layers, 2 skip connections"


def test_katib_quoted_macro_architecture_and_unknown_ops_still_draw() -> None:
    drawing = describe({"architecture": "[[7], [7, 1]]", "nn_config": "{'embedding': {}}"}, {}, {})
    assert drawing is not None and drawing.lines == ["layer 0: op 7", "layer 1: op 7; skips from layer 0"]


def test_micro_genotype_draws_a_normal_and_a_reduction_cell() -> None:
    genotype = Genotype.build([("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 2), ("sep_conv_5x5", 0)],
                              [("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 2), ("dil_conv_3x3", 1)])
    drawing = describe({"architecture": genotype.to_json()}, {}, {})
    assert drawing is not None and drawing.kind == "cells"
    assert [g.title for g in drawing.graphs] == ["normal cell", "reduction cell"]
    assert "normal node 0: sep conv 3x3 of c_{k-2} + skip connect of c_{k-1}" in drawing.lines
    assert "normal node 1: max pool 3x3 of 0 + sep conv 5x5 of c_{k-2}" in drawing.lines
    normal = drawing.graphs[0]
    ops = [e for e in normal.edges if e.kind == "op"]
    assert [(e.source, e.target, e.label) for e in ops][:2] == [("c_{k-2}", "0", "sep conv 3x3"),
                                                               ("c_{k-1}", "0", "skip connect")]
    assert {(e.source, e.target) for e in normal.edges if e.kind == "concat"} == {("0", "c_{k}"), ("1", "c_{k}")}


def test_darts_genotype_is_found_in_output_file_or_observation() -> None:
    genotype = Genotype.build([("skip_connect", 0), ("sep_conv_3x3", 1)], [("max_pool_3x3", 0), ("skip_connect", 1)])
    output = f"epoch=1 Genotype={genotype.to_katib()}\nnoise\nBest-Genotype={genotype.to_katib()}\nGenotype=junk\n"
    assert genotype_from_text(output) == genotype
    assert genotype_from_text("no genotype here") is None
    for hints, observation in (({"output": output}, {}), ({"genotype": genotype.to_dict()}, {}),
                               ({}, {"Best-Genotype": genotype.to_katib()})):
        drawing = describe({"algorithm-settings": "{}", "num-layers": "3"}, observation, hints)
        assert drawing is not None and drawing.kind == "cells", (hints, observation)
        assert drawing.summary.startswith("DARTS genotype: normal and reduction cell, 1 nodes")


def test_nb201_cell_leaves_out_none_edges() -> None:
    cell = Cell201(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1"))
    drawing = describe({"architecture": cell.to_string()}, {}, {})
    assert drawing is not None and drawing.kind == "nb201"
    [graph] = drawing.graphs
    assert [(e.source, e.target, e.label) for e in graph.edges] == [
        ("0", "1", "nor conv 3x3"), ("1", "2", "skip connect"), ("0", "3", "avg pool 3x3"), ("2", "3", "nor conv 1x1")]
    assert [n.label for n in graph.nodes] == ["input", "node 1", "node 2", "output"]


def test_hyperparameter_trials_and_unreadable_architectures_have_no_drawing() -> None:
    assert describe({"lr": "0.1"}, {"loss": 0.5}, {}) is None
    assert describe({"architecture": "not an architecture"}, {}, {}) is None
    assert describe({"architecture": "[[0], [1]]"}, {}, {}) is None  # row 1 lacks its skip bit


def test_markup_in_op_names_stays_text_for_the_browser_to_escape() -> None:
    assert op_words("<b>x</b>_3x3") == "<b>x</b> 3x3"
