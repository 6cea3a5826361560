"""ENAS algorithm settings: Katib's names, defaults and ranges, plus ours.

Katib's ten `controller_*` settings keep their meaning; `random_state`, `search_mode` and
`num_nodes` are kubenas additions. Parsed once per call into a frozen `EnasSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from suggestion.algorithms.base import InvalidSettings
from suggestion.algorithms.encoding import SEARCH_MODES
from suggestion.algorithms.settings import Setting, as_choice, as_float, as_int, parse_settings

__all__ = ["MAX_HIDDEN_SIZE", "MAX_TRAIN_STEPS", "SEARCH_MODES", "SETTINGS", "EnasSettings", "parse_enas_settings"]

# Upper bounds far past any published ENAS configuration (Katib: 64 and 50); beyond them a
# call allocates gigabytes or keeps a core busy for minutes.
MAX_HIDDEN_SIZE = 1024
MAX_TRAIN_STEPS = 1000

SETTINGS: tuple[Setting, ...] = (
    Setting("controller_hidden_size", 64, as_int, lambda v: 1 <= v <= MAX_HIDDEN_SIZE,
            f"an integer in [1, {MAX_HIDDEN_SIZE}]"),
    Setting("controller_temperature", 5.0, as_float, lambda v: v > 0, "a number > 0", allow_none=True),
    Setting("controller_tanh_const", 2.25, as_float, lambda v: v > 0, "a number > 0", allow_none=True),
    Setting("controller_entropy_weight", 1e-5, as_float, lambda v: v > 0, "a number > 0", allow_none=True),
    Setting("controller_baseline_decay", 0.999, as_float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    Setting("controller_learning_rate", 5e-5, as_float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    Setting("controller_skip_target", 0.4, as_float, lambda v: 0 < v < 1, "a number in (0, 1)"),
    Setting("controller_skip_weight", 0.8, as_float, lambda v: v > 0, "a number > 0", allow_none=True),
    Setting("controller_train_steps", 50, as_int, lambda v: 1 <= v <= MAX_TRAIN_STEPS,
            f"an integer in [1, {MAX_TRAIN_STEPS}]"),
    Setting("controller_log_every_steps", 10, as_int, lambda v: v >= 1, "an integer >= 1"),
    Setting("random_state", None, as_int, lambda v: 0 <= v < 2**63, "an integer in [0, 2^63)"),
    Setting("search_mode", "macro", as_choice(*SEARCH_MODES), allowed="one of " + ", ".join(SEARCH_MODES)),
    Setting("num_nodes", 5, as_int, lambda v: 1 <= v <= 64, "an integer in [1, 64]"),
)


@dataclass(frozen=True)
class EnasSettings:
    """Resolved settings; `None` means the feature is off (Katib's "None")."""

    controller_hidden_size: int = 64
    controller_temperature: float | None = 5.0
    controller_tanh_const: float | None = 2.25
    controller_entropy_weight: float | None = 1e-5
    controller_baseline_decay: float = 0.999
    controller_learning_rate: float = 5e-5
    controller_skip_target: float = 0.4
    controller_skip_weight: float | None = 0.8
    controller_train_steps: int = 50
    controller_log_every_steps: int = 10
    random_state: int | None = None
    search_mode: str = "macro"
    num_nodes: int = 5

    def fingerprint(self) -> dict[str, object]:
        """What must match for saved controller state to be reused (all but logging)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.pop("controller_log_every_steps")
        return data


def parse_enas_settings(raw: Mapping[str, str]) -> EnasSettings:
    """Parse wire settings; raises InvalidSettings naming the setting, value and range."""
    values = parse_settings(raw, SETTINGS)
    if "num_nodes" in raw and values["search_mode"] != "micro":
        raise InvalidSettings("num_nodes", raw["num_nodes"], 'only used with search_mode "micro"')
    return EnasSettings(**values)
