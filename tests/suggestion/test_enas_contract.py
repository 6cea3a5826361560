"""ENAS micro mode on a Katib macro nasConfig (2x2 poolings dropped) under the shared contract.

The registry-wide contract (test_contract.py) runs ENAS on every contract space, micro
and nb201 included; this adds the micro mode with a small controller on the spaces
whose operations are not all cell primitives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import ClassVar

import pytest

from kubenas.genotype import Genotype
from kubenas.space import SearchSpace, primitive_names
from suggestion.algorithms.base import Suggestion
from tests.suggestion.contract import CONTRACT_SPACES, AlgorithmContract


class TestEnasMicroContract(AlgorithmContract):
    spaces: ClassVar[dict[str, SearchSpace]] = {"nas_macro": CONTRACT_SPACES["nas_macro"]}

    algorithms: ClassVar[tuple[str, ...]] = ("enas",)

    @pytest.fixture
    def base_settings(self) -> dict[str, str]:
        return {"search_mode": "micro", "num_nodes": "3", "controller_train_steps": "5"}

    def check(self, space: SearchSpace, suggestions: Sequence[Suggestion], n: int,
              settings: Mapping[str, str] | None = None) -> None:
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
