"""ENAS with parameter sharing: one trial searches; the suggestion only hands out its inputs.

Every call returns, for each requested trial, the same two assignments: `algorithm-settings`
(every setting resolved, JSON with numbers as numbers and Katib's "None" as null) and
`search-space` (the whole space as an `nn_config`: for macro, `embedding` holds every
expanded op; for micro, `primitives` every cell primitive, with `search_mode` and
`num_nodes`). `kubenas-train enas-search` (trainer/enas_search) reads both; it repeats
the setting rules below because trainers may not import this package. Nothing is kept
between calls, so any number of calls from any number of servers agree.

Settings: the `enas` algorithm's declarations (Katib's ten `controller_*`, `random_state`,
`search_mode`, `num_nodes`) with one-shot defaults where ENAS's paper differs from Katib's
multi-trial ones, `search_mode` limited to macro and micro, then the shared-weights ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from kubenas.space import nn_config
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.enas.settings import SETTINGS as ENAS_SETTINGS
from suggestion.algorithms.enas.space_checks import checked_nas_config
from suggestion.algorithms.encoding import nas_encoding
from suggestion.algorithms.settings import Setting, as_choice, as_float, as_int, parse_settings

__all__ = ["ALGORITHM_SETTINGS", "SEARCH_SPACE", "SETTINGS", "EnasOneshot"]

ALGORITHM_SETTINGS = "algorithm-settings"
SEARCH_SPACE = "search-space"

ONESHOT_MODES = ("macro", "micro")

# ENAS (Pham et al. 2018) trains its controller from a reward per validation minibatch:
# its learning rate, baseline decay, entropy weight and tanh constant, and one Adam step
# per controller step, replace Katib's defaults tuned for a reward per trained trial.
_ONESHOT_DEFAULTS: dict[str, Any] = {
    "controller_tanh_const": 2.5,
    "controller_entropy_weight": 1e-4,
    "controller_baseline_decay": 0.99,
    "controller_learning_rate": 3.5e-4,
    "controller_train_steps": 1,
}


def _controller_settings() -> tuple[Setting, ...]:
    out = []
    for s in ENAS_SETTINGS:
        if s.name == "search_mode":
            s = Setting("search_mode", "macro", as_choice(*ONESHOT_MODES), allowed="one of " + ", ".join(ONESHOT_MODES))
        elif s.name in _ONESHOT_DEFAULTS:
            s = replace(s, default=_ONESHOT_DEFAULTS[s.name])
        out.append(s)
    return tuple(out)


def _int_range(name: str, default: int, low: int, high: int) -> Setting:
    return Setting(name, default, as_int, lambda v: low <= v <= high, f"an integer in [{low}, {high}]")


def _dataset(text: str) -> str:
    if not text or not text.replace("-", "").replace("_", "").isalnum() or not text.islower():
        raise ValueError(text)
    return text


SETTINGS: tuple[Setting, ...] = (
    *_controller_settings(),
    Setting("num_epochs", 10, as_int, lambda v: v >= 1, "an integer >= 1"),
    Setting("batch_size", 64, as_int, lambda v: v >= 1, "an integer >= 1"),
    Setting("child_lr", 0.05, as_float, lambda v: 0 < v <= 10, "a number in (0, 10]"),
    Setting("child_lr_min", 0.0005, as_float, lambda v: v >= 0, "a number >= 0"),
    Setting("child_lr_schedule", "cosine", as_choice("cosine", "constant"), allowed="one of cosine, constant"),
    Setting("child_momentum", 0.9, as_float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    Setting("child_weight_decay", 1e-4, as_float, lambda v: v >= 0, "a number >= 0"),
    Setting("child_grad_clip", 5.0, as_float, lambda v: v > 0, "a number > 0"),
    _int_range("init_channels", 16, 1, 1024),
    Setting("controller_steps_per_epoch", 20, as_int, lambda v: v >= 1, "an integer >= 1"),
    _int_range("controller_children_per_step", 4, 1, 1024),
    _int_range("final_children", 16, 1, 10_000),
    Setting("sampler", "enas", as_choice("enas", "random"), allowed="one of enas, random"),
    Setting("dataset", "cifar10", _dataset, allowed="a dataset name (lower-case letters, digits, '-', '_')"),
)


class EnasOneshot(Algorithm):
    """One-shot ENAS (parameter sharing) and its random-sampling ablation (`sampler: random`)."""

    name: ClassVar[str] = "enas-oneshot"
    supports_hpo: ClassVar[bool] = False
    supports_nas: ClassVar[bool] = True
    description: ClassVar[str] = "ENAS with parameter sharing in one trial (kubenas-train enas-search); macro or micro"

    def validate(self, problem: Problem) -> None:
        self._resolve(problem)

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, space = self._resolve(problem)
        assignments = {ALGORITHM_SETTINGS: json.dumps(settings), SEARCH_SPACE: json.dumps(space)}
        return [Suggestion(dict(assignments)) for _ in range(n)]

    @staticmethod
    def _resolve(problem: Problem) -> tuple[dict[str, Any], dict[str, Any]]:
        settings = parse_settings(problem.settings, SETTINGS)
        if "num_nodes" in problem.settings and settings["search_mode"] != "micro":
            raise InvalidSettings("num_nodes", problem.settings["num_nodes"], 'only used with search_mode "micro"')
        if settings["child_lr_min"] > settings["child_lr"]:
            raise InvalidSettings("child_lr_min", problem.settings.get("child_lr_min", settings["child_lr_min"]),
                                  f"must be <= child_lr ({settings['child_lr']})")
        nas = checked_nas_config(problem)
        sizes = nas.graph_config.input_sizes
        if len(sizes) not in (2, 3):
            raise InvalidSettings("nasConfig.graphConfig.inputSizes", list(sizes), "must be [H, W, C] or [H, W]")
        mode = settings["search_mode"]
        encoding = nas_encoding(nas, {"search_mode": mode, "num_nodes": settings["num_nodes"] if mode == "micro" else None})
        if mode == "micro":
            space = encoding.nn_config(())
        else:
            ops = nas.expanded()
            space = nn_config(nas.graph_config, ops, range(len(ops)))
        return settings, space
