"""ENAS with parameter sharing: one trial searches; the suggestion only hands out its inputs.

Every call returns, for each requested trial, the same two assignments: `algorithm-settings`
(every setting resolved, JSON with numbers as numbers and Katib's "None" as null) and
`search-space` (the whole space as an `nn_config`: for macro, `embedding` holds every
expanded op; for micro, `primitives` every cell primitive, with `search_mode` and
`num_nodes`). `kubenas-train enas-search` (trainer/enas_search) reads both, the settings
with the same model (`kubenas.algorithm_settings.enas.EnasOneshotSettings`). Nothing is kept
between calls, so any number of calls from any number of servers agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from kubenas.algorithm_settings.enas import EnasOneshotSettings
from kubenas.space import nn_config
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.enas.settings import parse_enas_settings
from suggestion.algorithms.enas.space_checks import checked_nas_config
from suggestion.algorithms.encoding import nas_encoding

__all__ = ["ALGORITHM_SETTINGS", "SEARCH_SPACE", "EnasOneshot"]

ALGORITHM_SETTINGS = "algorithm-settings"
SEARCH_SPACE = "search-space"


class EnasOneshot(Algorithm):
    """One-shot ENAS (parameter sharing) and its random-sampling ablation (`sampler: random`)."""

    name: ClassVar[str] = "enas-oneshot"
    supports_hpo: ClassVar[bool] = False
    supports_nas: ClassVar[bool] = True
    description: ClassVar[str] = "ENAS with parameter sharing in one trial (kubenas-train enas-search); macro or micro"
    settings_model = EnasOneshotSettings

    def validate(self, problem: Problem) -> None:
        self._resolve(problem)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, space = self._resolve(problem)
        assignments = {ALGORITHM_SETTINGS: json.dumps(settings.model_dump()), SEARCH_SPACE: json.dumps(space)}
        return [Suggestion(dict(assignments)) for _ in range(n)]

    @staticmethod
    def _resolve(problem: Problem) -> tuple[EnasOneshotSettings, dict[str, Any]]:
        settings = parse_enas_settings(problem.settings, EnasOneshotSettings)
        nas = checked_nas_config(problem)
        sizes = nas.graph_config.input_sizes
        if len(sizes) not in (2, 3):
            raise InvalidSettings("nasConfig.graphConfig.inputSizes", list(sizes), "must be [H, W, C] or [H, W]")
        mode = settings.search_mode
        encoding = nas_encoding(nas, {"search_mode": mode, "num_nodes": settings.num_nodes if mode == "micro" else None})
        if mode == "micro":
            space = encoding.nn_config(())
        else:
            ops = nas.expanded()
            space = nn_config(nas.graph_config, ops, range(len(ops)))
        return settings, space
