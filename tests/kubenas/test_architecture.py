"""kubenas.architecture: finding a trial's architecture and rendering it for people, per kind."""

from __future__ import annotations

import json
from pathlib import Path

from kubenas.architecture import describe_op, find_architecture, primitive_word, trial_output_lines
from kubenas.genotype import Genotype
from kubenas.space import ExpandedOp, GraphConfig, nn_config

OPS = [
    ExpandedOp(0, "convolution", {"filter_size": 3, "num_filter": 16, "stride": 1}),
    ExpandedOp(1, "separable_convolution", {"filter_size": 5, "num_filter": 32, "stride": 1, "depth_multiplier": 2}),
    ExpandedOp(2, "reduction", {"reduction_type": "max_pooling", "pool_size": 2}),
]
GRAPH = GraphConfig(3, (8, 8, 1), (10,))
GENOTYPE = Genotype.build([("sep_conv_3x3", 0), ("skip_connection", 1), ("max_pooling_3x3", 2), ("sep_conv_3x3", 0)],
                          [("max_pooling_3x3", 0), ("max_pooling_3x3", 1), ("skip_connection", 2), ("dilated_convolution_3x3", 1)])


def test_cell_primitives_in_short_words() -> None:
    assert [primitive_word(p) for p in ("separable_convolution_5x5", "dilated_convolution_3x3", "convolution_3x3",
                                        "max_pooling_3x3", "avg_pooling_3x3", "skip_connection", "skip_connect",
                                        "nor_conv_3x3", "none", "my_op")] == [
        "sep_conv_5x5", "dil_conv_3x3", "conv_3x3", "max_pool_3x3", "avg_pool_3x3", "skip", "skip",
        "nor_conv_3x3", "none", "my_op"]


def test_ops_read_as_words() -> None:
    assert describe_op(OPS[0]) == "conv 3x3, 16 filters"
    assert describe_op(OPS[1]) == "separable conv 5x5, 32 filters, depth multiplier 2"
    assert describe_op(OPS[2]) == "max pooling 2x2"
    assert describe_op(ExpandedOp(3, "skip_connection")) == "identity"
    assert describe_op(ExpandedOp(4, "my_op", {"k": 1})) == "my_op, k=1"


def test_enas_macro_from_assignments() -> None:
    rows = [[1], [2, 1], [0, 1, 1]]
    config = json.dumps(nn_config(GRAPH, OPS, [0, 1, 2]))
    found = find_architecture({"architecture": json.dumps(rows), "nn_config": config}, {"acc": 0.9})
    assert found is not None and found.kind == "macro"
    assert found.lines() == [
        "ENAS macro network, 3 layers:",
        "  layer 0: separable conv 5x5, 32 filters, depth multiplier 2",
        "  layer 1: max pooling 2x2; skip from input",
        "  layer 2: conv 3x3, 16 filters; skips from input, layer 0",
    ]
    doc = found.to_json()
    assert doc["kind"] == "macro" and doc["nn_config"] == config and doc["source"] == "the trial's assignments"
    assert doc["structure"]["layers"][2]["skips_from"] == ["input", "layer 0"]
    assert json.loads(doc["architecture"]) == rows
    json.dumps(doc)  # results.json takes it as is


def test_cell_genotype_from_a_darts_trials_output(tmp_path: Path) -> None:
    # a DARTS search trial: the settings and space are assignments, the result is printed last
    (tmp_path / "stdout.log").write_text(
        "epoch=1 Validation-Accuracy=0.5\nCurrent-Genotype=Genotype(normal=[('skip_connection',0),('skip_connection',1),"
        "('skip_connection',0),('skip_connection',1)],normal_concat=range(2,4),reduce=[('skip_connection',0),"
        "('skip_connection',1),('skip_connection',0),('skip_connection',1)],reduce_concat=range(2,4))\n"
        f"Best-Genotype={GENOTYPE.to_katib()}\nValidation-Accuracy=0.9\n")
    assignments = {"algorithm-settings": json.dumps({"dataset": "digits", "num_epochs": 8}),
                   "search-space": json.dumps(["sep_conv_3x3", "skip_connection"]), "num-layers": "3"}
    found = find_architecture(assignments, {"Validation-Accuracy": 0.9}, trial_output_lines(tmp_path))
    assert found is not None and found.kind == "cell" and found.genotype == GENOTYPE
    assert found.nn_config is None  # DARTS' search-space is a primitive list, no nn_config
    assert dict(found.hints) == {"dataset": "digits", "num_layers": 3}
    assert found.lines() == [
        "normal cell (output: concat of nodes 0, 1):",
        "  node 0 = sep_conv_3x3(c_{k-2}) + skip(c_{k-1})",
        "  node 1 = max_pool_3x3(node 0) + sep_conv_3x3(c_{k-2})",
        "reduction cell (output: concat of nodes 0, 1):",
        "  node 0 = max_pool_3x3(c_{k-2}) + max_pool_3x3(c_{k-1})",
        "  node 1 = skip(node 0) + dil_conv_3x3(c_{k-1})",
    ]
    assert "Best-Genotype" in found.source
    assert Genotype.from_json(found.architecture) == GENOTYPE


def test_genotype_collected_as_a_text_metric() -> None:
    # Katib's DARTS examples make Best-Genotype the objective, a text metric
    found = find_architecture({"num-layers": "8"}, {"Best-Genotype": GENOTYPE.to_katib()})
    assert found is not None and found.genotype == GENOTYPE and "Best-Genotype" in found.source


def test_enas_oneshot_macro_output_with_its_nn_config(tmp_path: Path) -> None:
    config = nn_config(GRAPH, OPS, [0, 2])
    (tmp_path / "stdout.log").write_text("Best-Architecture=[[0],[2,0],[0,1,1]]\n")
    # the result may be in a rotated part: the newest part wins
    (tmp_path / "stdout.log.1").write_text(f"Best-Architecture=[[0],[0,1],[2,0,0]]\nBest-NN-Config={json.dumps(config)}\n")
    found = find_architecture({"search-space": json.dumps(nn_config(GRAPH, OPS, [0, 1, 2]))}, {},
                              trial_output_lines(tmp_path))
    assert found is not None and found.kind == "macro"
    assert json.loads(found.nn_config or "") == config
    assert found.lines()[1:] == ["  layer 0: conv 3x3, 16 filters", "  layer 1: conv 3x3, 16 filters; skip from input",
                                 "  layer 2: max pooling 2x2"]


def test_enas_micro_assignment_is_a_genotype_object() -> None:
    config = json.dumps({"search_mode": "micro", "num_layers": 2, "input_sizes": [8, 8, 1], "output_sizes": [10]})
    found = find_architecture({"architecture": GENOTYPE.to_json(), "nn_config": config})
    assert found is not None and found.kind == "cell" and found.nn_config == config


def test_nb201_cell() -> None:
    cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    found = find_architecture({"architecture": cell, "nn_config": json.dumps({"search_mode": "nb201"})})
    assert found is not None and found.kind == "nb201"
    assert found.lines() == [
        "NAS-Bench-201 cell (node 0 is the input, node 3 the output):",
        "  node 1 = nor_conv_3x3(node 0)",
        "  node 2 = skip(node 1)",
        "  node 3 = avg_pool_3x3(node 2)",
    ]
    assert found.to_json()["structure"]["cell"] == cell
    empty = find_architecture({"architecture": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"})
    assert empty is not None and empty.lines()[1] == "  node 1 = zero (every edge is none)"


def test_hpo_and_unreadable_trials_have_none(tmp_path: Path) -> None:
    assert find_architecture({"lr": "0.1"}, {"acc": 0.5}) is None
    assert find_architecture({"architecture": "[[1], [2]]"}) is None  # row 1 lacks its skip bit
    assert find_architecture({"architecture": "not json"}) is None
    (tmp_path / "stdout.log").write_text("Best-Genotype=Genotype(broken\n")
    assert find_architecture({}, {}, trial_output_lines(tmp_path)) is None
    assert list(trial_output_lines(tmp_path / "missing")) == []
