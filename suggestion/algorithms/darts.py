"""DARTS: one search trial that trains a supernet; the suggestion only hands out its inputs.

Every call returns the same three assignments for each requested trial (Katib's names):
`algorithm-settings` (every setting resolved, JSON with numbers as numbers), `search-space`
(JSON list of cell primitive names, see `kubenas.space.primitive_names`) and `num-layers`.
Nothing is remembered between calls, so any number of calls from any number of servers
return the same answer — Katib's service kept this in locals set only on the first call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from kubenas.space import SpaceError, primitive_names
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.settings import Setting, as_choice, as_float, as_int, parse_settings

__all__ = ["ALGORITHM_SETTINGS", "NUM_LAYERS", "SEARCH_SPACE", "SETTINGS", "Darts"]

ALGORITHM_SETTINGS = "algorithm-settings"
SEARCH_SPACE = "search-space"
NUM_LAYERS = "num-layers"

_DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _switch(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "true", "false"):
        raise ValueError(text)
    return value


def _non_negative(name: str, default: float) -> Setting:
    return Setting(name, default, as_float, lambda v: v >= 0, "a number >= 0")


def _at_least_one(name: str, default: int) -> Setting:
    return Setting(name, default, as_int, lambda v: v >= 1, "an integer >= 1")


# Katib's settings, defaults and rules first, then ours. The trainer resolves the same
# names in trainer/darts/settings.py (it may not import this package).
SETTINGS: tuple[Setting, ...] = (
    Setting("num_epochs", 50, as_int, lambda v: v > 0, "an integer > 0"),
    _non_negative("w_lr", 0.025),
    _non_negative("w_lr_min", 0.001),
    _non_negative("w_momentum", 0.9),
    _non_negative("w_weight_decay", 3e-4),
    _non_negative("w_grad_clip", 5.0),
    _non_negative("alpha_lr", 3e-4),
    _non_negative("alpha_weight_decay", 1e-3),
    # Katib lets batch_size be "None"; the trainer then uses the whole half-split per step.
    Setting("batch_size", 128, as_int, lambda v: v >= 1, "an integer >= 1", allow_none=True),
    Setting("num_workers", 4, as_int, lambda v: v >= 0, "an integer >= 0"),
    _at_least_one("init_channels", 16),
    _at_least_one("print_step", 50),
    _at_least_one("num_nodes", 4),
    _at_least_one("stem_multiplier", 3),
    Setting("order", "second", as_choice("first", "second"), allowed='one of "first", "second"'),
    Setting("partial_channels", 1, as_int, lambda v: v >= 1, "an integer >= 1 (1 = off, k > 1 = PC-DARTS 1/k channels)"),
    # PC-DARTS' learned edge weights; "auto" turns them on exactly when partial_channels > 1.
    Setting("edge_normalization", "auto", _switch, allowed='"auto" (on when partial_channels > 1), "true" or "false"'),
    Setting("dataset", "cifar10", str, lambda v: bool(_DATASET_NAME.fullmatch(v)), "a dataset name (lower-case letters, digits, '-', '_')"),
    Setting("random_state", None, as_int, lambda v: v >= 0, "an integer >= 0", allow_none=True),
)


class Darts(Algorithm):
    """Differentiable architecture search (Liu et al. 2019); PC-DARTS via `partial_channels`."""

    name = "darts"
    supports_hpo = False
    supports_nas = True
    description = "DARTS supernet search (first/second order, partial channels) in one trial"

    def validate(self, problem: Problem) -> None:
        self._resolve(problem)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, primitives, num_layers = self._resolve(problem)
        assignments = {
            ALGORITHM_SETTINGS: json.dumps(settings),
            SEARCH_SPACE: json.dumps(primitives),
            NUM_LAYERS: str(num_layers),
        }
        return [Suggestion(dict(assignments)) for _ in range(n)]

    @staticmethod
    def _resolve(problem: Problem) -> tuple[dict[str, Any], list[str], int]:
        nas = problem.space.nas_config
        if nas is None:
            raise InvalidSettings("nasConfig", None, "darts searches a nasConfig (graphConfig.numLayers and operations); parameters are not supported")
        settings = parse_settings(problem.settings, SETTINGS)
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
