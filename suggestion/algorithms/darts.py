"""DARTS: one search trial that trains a supernet; the suggestion only hands out its inputs.

Every call returns the same three assignments for each requested trial (Katib's names):
`algorithm-settings` (every setting resolved, JSON with numbers as numbers), `search-space`
(JSON list of cell primitive names, see `kubenas.space.primitive_names`) and `num-layers`.
Nothing is remembered between calls, so any number of calls from any number of servers
return the same answer — Katib's service kept this in locals set only on the first call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.darts import DartsSettings
from kubenas.space import SpaceError, primitive_names
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion

__all__ = ["ALGORITHM_SETTINGS", "NUM_LAYERS", "SEARCH_SPACE", "Darts"]

ALGORITHM_SETTINGS = "algorithm-settings"
SEARCH_SPACE = "search-space"
NUM_LAYERS = "num-layers"


class Darts(Algorithm):
    """Differentiable architecture search (Liu et al. 2019); PC-DARTS via `partial_channels`."""

    name = "darts"
    supports_hpo = False
    supports_nas = True
    description = "DARTS supernet search (first/second order, partial channels) in one trial"
    # The trainer (kubenas-train darts) parses the resolved settings with the same model.
    settings_model = DartsSettings

    def validate(self, problem: Problem) -> None:
        self._resolve(problem)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, primitives, num_layers = self._resolve(problem)
        assignments = {
            ALGORITHM_SETTINGS: json.dumps(settings.model_dump()),
            SEARCH_SPACE: json.dumps(primitives),
            NUM_LAYERS: str(num_layers),
        }
        return [Suggestion(dict(assignments)) for _ in range(n)]

    @staticmethod
    def _resolve(problem: Problem) -> tuple[DartsSettings, list[str], int]:
        nas = problem.space.nas_config
        if nas is None:
            raise InvalidSettings("nasConfig", None, "darts searches a nasConfig (graphConfig.numLayers and operations); parameters are not supported")
        settings = parse_settings(problem.settings, DartsSettings)
        if nas.graph_config.num_layers < 1:
            raise InvalidSettings("nasConfig.graphConfig.numLayers", nas.graph_config.num_layers, "must be an integer >= 1")
        try:
            primitives = primitive_names(nas.operations)
        except SpaceError as exc:
            raise InvalidSettings(f"nasConfig.{exc.field}", exc.value, exc.allowed) from None
        primitives = [p for p in primitives if p != "none"]
        if not primitives:
            raise InvalidSettings("nasConfig.operations", [op.operation_type for op in nas.operations], "must name at least one primitive besides none")
        return settings, primitives, nas.graph_config.num_layers
