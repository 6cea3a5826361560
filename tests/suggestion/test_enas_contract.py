"""The shared algorithm contract for ENAS micro mode (macro mode runs in test_contract.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from kubenas.genotype import Genotype
from kubenas.space import SearchSpace, primitive_names
from suggestion.algorithms.base import Suggestion
from tests.suggestion.contract import AlgorithmContract


class TestEnasMicroContract(AlgorithmContract):
    @pytest.fixture
    def algorithm_name(self) -> str:
        return "enas"

    @pytest.fixture
    def base_settings(self) -> dict[str, str]:
        return {"search_mode": "micro", "num_nodes": "3", "controller_train_steps": "5"}

    def check(self, space: SearchSpace, suggestions: Sequence[Suggestion], n: int) -> None:
        assert isinstance(suggestions, list) and len(suggestions) == n
        nas = space.nas_config
        assert nas is not None
        allowed = {p for p in primitive_names(nas.operations) if p != "none" and not p.endswith("_2x2")}
        for s in suggestions:
            assert set(s.assignments) == {"architecture", "nn_config"}
            genotype = Genotype.from_json(s.assignments["architecture"])
            assert genotype.num_nodes == 3 and genotype.primitives <= allowed
            config = json.loads(s.assignments["nn_config"])
            assert config["search_mode"] == "micro" and config["num_layers"] == nas.graph_config.num_layers
