"""What the ENAS suggestion emits, the ENAS trainer builds: every sampled macro and micro
architecture of a space that fits its input becomes a network that runs forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kubenas.experiment import load_experiment_file
from suggestion.algorithms.base import Problem
from suggestion.algorithms.enas import Enas
from trainer.enas.model import build_child, parse_child

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "enas-digits.yaml"


@pytest.mark.parametrize("settings", [{}, {"search_mode": "micro", "num_nodes": "3"}], ids=["macro", "micro"])
def test_suggested_architectures_build_and_run(settings: dict[str, str]) -> None:
    exp = load_experiment_file(DIGITS)
    space = exp.search_space()
    problem = Problem("interop", space, exp.objective(), {**settings, "random_state": "3",
                                                         "controller_train_steps": "2"})
    graph = space.nas_config.graph_config  # type: ignore[union-attr]
    height, width, channels = graph.input_sizes
    for s in Enas().suggest(problem, [], 6):
        net = build_child(parse_child(s.assignments["architecture"], s.assignments["nn_config"]))
        out = net(torch.randn(2, channels, height, width))
        assert out.shape == (2, graph.output_sizes[0])
