"""Macro mode (Katib's ENAS): one op per layer plus skip connections to earlier layers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubenas.space import MacroArchitecture, NasConfig, SpaceError, nn_config
from suggestion.algorithms.enas.mode import Decisions, SearchMode

if TYPE_CHECKING:
    import torch

    from suggestion.algorithms.enas.controller import LstmPolicy
    from suggestion.algorithms.enas.settings import EnasSettings

__all__ = ["MacroMode"]


class MacroMode(SearchMode):
    """`architecture` rows [op_id, skip_0..skip_{i-1}] over Katib's expanded op list."""

    def __init__(self, nas: NasConfig, settings: EnasSettings) -> None:
        super().__init__(nas, settings)
        self.ops = nas.expanded()
        self.num_layers = nas.graph_config.num_layers

    def fingerprint(self) -> dict[str, Any]:
        graph = self.nas.graph_config
        return {
            "mode": "macro",
            "num_layers": graph.num_layers,
            "ops": [op.to_json() for op in self.ops],
        }

    def new_controller(self, generator: torch.Generator) -> LstmPolicy:
        from suggestion.algorithms.enas.controller import MacroController

        s = self.settings
        return MacroController(
            self.num_layers,
            len(self.ops),
            s.controller_hidden_size,
            s.controller_temperature,
            s.controller_tanh_const,
            s.controller_skip_target,
            generator,
        )

    def decode(self, assignments: Mapping[str, str]) -> Decisions:
        if "architecture" not in assignments:
            raise SpaceError("architecture", None, "the trial has no architecture assignment")
        arch = MacroArchitecture.from_json(assignments["architecture"])
        if len(arch.rows) != self.num_layers:
            raise SpaceError("architecture", assignments["architecture"], f"must have {self.num_layers} rows (numLayers)")
        L = self.num_layers
        decisions: Decisions = []
        for i, row in enumerate(arch.rows):
            if row[0] >= len(self.ops):
                raise SpaceError(f"architecture[{i}][0]", row[0], f"op ids are in [0, {len(self.ops) - 1}]")
            decisions.append(list(row) + [0] * (L - i))
        return decisions

    def encode(self, decisions: Decisions) -> dict[str, str]:
        rows = tuple(tuple(int(x) for x in d[: i + 1]) for i, d in enumerate(decisions))
        arch = MacroArchitecture(rows)
        config = nn_config(self.nas.graph_config, self.ops, arch.op_ids)
        return {"architecture": arch.to_json(), "nn_config": json.dumps(config)}
