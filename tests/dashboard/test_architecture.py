"""Architectures drawn: ENAS macro rows, cell genotypes, NB201 cells, one-shot search results.

What a trial found is read by the core (kubenas.architecture, as the terminal reads it);
these tests check the placing, the edges and that the words are the core's.
"""

from __future__ import annotations

import json

from dashboard.architecture import draw, find
from kubenas.architecture import find_architecture
from kubenas.genotype import Genotype
from kubenas.nb201 import Cell201

NN_CONFIG = json.dumps({"num_layers": 3, "input_sizes": [8, 8, 1], "output_sizes": [10], "embedding": {
    "0": {"opt_id": 0, "opt_type": "separable_convolution", "opt_params": {"filter_size": "5", "num_filter": "32"}},
    "2": {"opt_id": 2, "opt_type": "reduction", "opt_params": {"reduction_type": "max_pooling", "pool_size": "2"}}}})


def _drawing(assignments, observation=None, output=(), genotype_file=None):  # type: ignore[no-untyped-def]
    found = find(assignments, observation or {}, output, genotype_file)
    return None if found is None else draw(found)


def test_macro_layers_name_their_op_and_skips_by_katibs_indexing() -> None:
    assignments = {"architecture": "[[0], [2, 0], [0, 1, 1]]", "nn_config": NN_CONFIG}
    drawing = _drawing(assignments)
    assert drawing is not None and drawing.kind == "macro"
    # The words are the terminal's, one reading of the trial.
    core = find_architecture(assignments)
    assert core is not None and drawing.lines == [line.strip() for line in core.lines()[1:]]
    assert drawing.lines == ["layer 0: separable conv 5x5, 32 filters", "layer 1: max pooling 2x2",
                                 "layer 2: separable conv 5x5, 32 filters; skips from input, layer 0"]
    [graph] = drawing.graphs
    assert [n.id for n in graph.nodes] == ["input", "layer0", "layer1", "layer2", "output"]
    # Skip bit 0 is the network input, bit 1 layer 0 (layer 1 already feeds layer 2 in the chain).
    assert sorted((e.source, e.target) for e in graph.edges if e.kind == "skip") == \
        [("input", "layer2"), ("layer0", "layer2")]
    assert [(e.source, e.target) for e in graph.edges if e.kind == "chain"] == \
        [("input", "layer0"), ("layer0", "layer1"), ("layer1", "layer2"), ("layer2", "output")]
    assert drawing.summary == "ENAS macro network: 3 layers, 2 skip connections"


def test_katib_quoted_macro_architecture_and_unknown_ops_still_draw() -> None:
    drawing = _drawing({"architecture": "[[7], [7, 1]]", "nn_config": "{'embedding': {}}"})
    assert drawing is not None and drawing.lines == ["layer 0: op 7", "layer 1: op 7; skip from input"]


def test_one_shot_enas_result_is_drawn_from_the_trials_output() -> None:
    """An enas-oneshot trial is given the whole space and prints what it found."""
    output = ["epoch=1 Training-Loss=1.2", "Current-Architecture=[[2], [0, 1]]",
              "Best-Architecture=[[0], [2, 0], [0, 1, 1]]", f"Best-NN-Config={NN_CONFIG}",
              "Validation-Accuracy=0.81"]
    assignments = {"algorithm-settings": "{}", "search-space": "{}"}
    assert _drawing(assignments) is None  # the assignments alone hold no architecture
    drawing = _drawing(assignments, {"Validation-Accuracy": 0.81}, output)
    assert drawing is not None and drawing.kind == "macro" and "Best-Architecture" in drawing.source
    assert drawing.lines[-1] == "layer 2: separable conv 5x5, 32 filters; skips from input, layer 0"


def test_micro_genotype_draws_a_normal_and_a_reduction_cell() -> None:
    genotype = Genotype.build([("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 2), ("sep_conv_5x5", 0)],
                              [("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 2), ("dil_conv_3x3", 1)])
    drawing = _drawing({"architecture": genotype.to_json()})
    assert drawing is not None and drawing.kind == "cells"
    assert [g.title for g in drawing.graphs] == ["normal cell", "reduction cell"]
    core = find_architecture({"architecture": genotype.to_json()})
    assert core is not None and drawing.lines == [line.strip() for line in core.lines()]
    normal = drawing.graphs[0]
    ops = [e for e in normal.edges if e.kind == "op"]
    assert [(e.source, e.target, e.label) for e in ops][:3] == [("c_{k-2}", "0", "sep_conv_3x3"),
                                                               ("c_{k-1}", "0", "skip"),
                                                               ("0", "1", "max_pool_3x3")]
    assert {(e.source, e.target) for e in normal.edges if e.kind == "concat"} == {("0", "c_{k}"), ("1", "c_{k}")}


def test_darts_genotype_is_found_in_output_file_or_observation() -> None:
    genotype = Genotype.build([("skip_connect", 0), ("sep_conv_3x3", 1)], [("max_pool_3x3", 0), ("skip_connect", 1)])
    output = ["epoch=1 Genotype=" + genotype.to_katib(), "noise", "Best-Genotype=" + genotype.to_katib()]
    assignments = {"algorithm-settings": "{}", "num-layers": "3"}
    for observation, lines, file in (({}, output, None), ({}, (), genotype.to_dict()),
                                     ({"Best-Genotype": genotype.to_katib()}, (), None)):
        drawing = _drawing(assignments, observation, lines, file)
        assert drawing is not None and drawing.kind == "cells", (observation, lines, file)
        assert drawing.summary == "cell genotype: normal and reduction cell, 1 nodes each"
        assert [e.label for e in drawing.graphs[0].edges if e.kind == "op"] == ["skip", "sep_conv_3x3"]
    assert _drawing(assignments, {}, (), {"normal": "junk"}) is None


def test_nb201_cell_leaves_out_none_edges() -> None:
    cell = Cell201(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1"))
    drawing = _drawing({"architecture": cell.to_string()})
    assert drawing is not None and drawing.kind == "nb201"
    [graph] = drawing.graphs
    assert [(e.source, e.target, e.label) for e in graph.edges] == [
        ("0", "1", "nor_conv_3x3"), ("1", "2", "skip_connect"), ("0", "3", "avg_pool_3x3"), ("2", "3", "nor_conv_1x1")]
    assert [n.label for n in graph.nodes] == ["input", "node 1", "node 2", "output"]
    assert drawing.lines[0] == "node 1 = nor_conv_3x3(node 0)"


def test_hyperparameter_trials_and_unreadable_architectures_have_no_drawing() -> None:
    assert _drawing({"lr": "0.1"}, {"loss": 0.5}) is None
    assert _drawing({"architecture": "not an architecture"}) is None
    assert _drawing({"architecture": "[[0], [1]]"}) is None  # row 1 lacks its skip bit


def test_markup_in_op_names_stays_text_for_the_browser_to_escape() -> None:
    config = json.dumps({"embedding": {"0": {"opt_id": 0, "opt_type": "<b>x</b>", "opt_params": {}}}})
    drawing = _drawing({"architecture": "[[0]]", "nn_config": config})
    assert drawing is not None and drawing.graphs[0].nodes[1].label == "layer 0: <b>x</b>"
