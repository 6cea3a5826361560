"""Cross-boundary contract: what the ENAS suggestion emits, the ENAS trainer builds.

The algorithm is called in-process (no gRPC needed for the format); every architecture
it suggests over Katib's enas-gpu space — macro and micro — must parse and build, or be
rejected only for an impossible shape with a message naming the layer.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from kubenas.space import GraphConfig, NasConfig, SearchSpace, primitive_names
from kubenas.trials import Objective, ObjectiveType
from suggestion.algorithms import base, registry
from tests.trainer.spaces import KATIB_ENAS_OPERATIONS
from trainer.enas.model import ArchitectureError, build_child, parse_child
from trainer.ops import primitive_op


def _suggest(mode: str, graph: GraphConfig, n: int) -> list[dict[str, str]]:
    problem = base.Problem(
        experiment="contract",
        space=SearchSpace(nas_config=NasConfig(graph, KATIB_ENAS_OPERATIONS)),
        objective=Objective(ObjectiveType.MAXIMIZE, "Validation-Accuracy"),
        settings={"search_mode": mode, "random_state": "3"},
    )
    algorithm = registry.algorithm_class("enas")()
    algorithm.validate(problem)
    return [dict(s.assignments) for s in algorithm.suggest(problem, [], n)]


@pytest.mark.parametrize("mode", ["macro", "micro"])
def test_enas_suggestions_build_as_child_networks(mode: str) -> None:
    graph = GraphConfig(4 if mode == "macro" else 2, (16, 16, 3), (10,))
    built = 0
    for assignment in _suggest(mode, graph, 6):
        spec = parse_child(assignment["architecture"], assignment["nn_config"])
        assert spec.mode == mode
        # Keep cell networks narrow; the genotype, not the width, is under test.
        spec = replace(spec, init_channels=4)
        try:
            model = build_child(spec)
        except ArchitectureError as exc:
            assert mode == "macro" and exc.field.startswith("architecture[")
            continue
        logits = model(torch.randn(2, 3, 16, 16))
        logits.sum().backward()
        assert logits.shape == (2, 10)
        built += 1
    assert built >= 3


def test_every_micro_primitive_of_katibs_space_builds() -> None:
    names = [n for n in primitive_names(KATIB_ENAS_OPERATIONS) if not n.endswith(("2x2",))]
    assert "separable_convolution_7x7" in names and "max_pooling_3x3" in names
    x = torch.randn(2, 4, 8, 8)
    for name in names:
        for stride in (1, 2):
            assert primitive_op(name, 4, stride)(x).shape == (2, 4, 8 // stride, 8 // stride)
