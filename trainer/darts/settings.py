"""The DARTS trainer's inputs: Katib's `--algorithm-settings` JSON and `--search-space` list.

Katib's suggestion service passes user overrides through as strings ("3") and writes
single quotes; ours writes JSON numbers. Both resolve to the same typed `DartsSettings`.
The names, defaults and rules match suggestion/algorithms/darts.py (which this package may
not import), so a setting the suggestion accepts is one the trainer accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from kubenas.errors import InvalidValue
from kubenas.space import SpaceError, loads_lenient

__all__ = ["EDGE_NORMALIZATION_VALUES", "ConfigError", "DartsSettings", "parse_algorithm_settings", "parse_num_layers", "parse_search_space"]


EDGE_NORMALIZATION_VALUES = ("auto", "true", "false")


class ConfigError(InvalidValue):
    """A flag or setting the trainer cannot use; the entry point prints it and exits 2."""


@dataclass(frozen=True)
class DartsSettings:
    num_epochs: int = 50
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    w_grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_weight_decay: float = 1e-3
    batch_size: int | None = 128  # None: the whole half-split in one step (Katib allows it)
    num_workers: int = 4  # accepted for Katib; data is resident on the device, no loader workers
    init_channels: int = 16
    print_step: int = 50
    num_nodes: int = 4
    stem_multiplier: int = 3
    order: str = "second"
    partial_channels: int = 1
    edge_normalization: str = "auto"  # auto: on exactly when partial_channels > 1 (PC-DARTS)
    dataset: str = "cifar10"
    random_state: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def uses_edge_normalization(self) -> bool:
        """Whether the supernet learns PC-DARTS edge weights (betas)."""
        if self.edge_normalization == "auto":
            return self.partial_channels > 1
        return self.edge_normalization == "true"


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _switch(value: Any) -> str:
    """"auto", or a boolean as JSON (true/false) or text ("true"/"false", any case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if text not in EDGE_NORMALIZATION_VALUES:
        raise ValueError(value)
    return text


def _integer(value: Any) -> int:
    number = _number(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


_Rule = tuple[Callable[[Any], Any], Callable[[Any], bool], str, bool]
_NON_NEGATIVE: _Rule = (_number, lambda v: v >= 0, "a number >= 0", False)
_AT_LEAST_ONE: _Rule = (_integer, lambda v: v >= 1, "an integer >= 1", False)
_RULES: dict[str, _Rule] = {
    "num_epochs": (_integer, lambda v: v > 0, "an integer > 0", False),
    "w_lr": _NON_NEGATIVE,
    "w_lr_min": _NON_NEGATIVE,
    "w_momentum": _NON_NEGATIVE,
    "w_weight_decay": _NON_NEGATIVE,
    "w_grad_clip": _NON_NEGATIVE,
    "alpha_lr": _NON_NEGATIVE,
    "alpha_weight_decay": _NON_NEGATIVE,
    "batch_size": (_integer, lambda v: v >= 1, "an integer >= 1", True),
    "num_workers": (_integer, lambda v: v >= 0, "an integer >= 0", False),
    "init_channels": _AT_LEAST_ONE,
    "print_step": _AT_LEAST_ONE,
    "num_nodes": _AT_LEAST_ONE,
    "stem_multiplier": _AT_LEAST_ONE,
    "order": (str, lambda v: v in ("first", "second"), 'one of "first", "second"', False),
    "partial_channels": (_integer, lambda v: v >= 1, "an integer >= 1 (1 = off)", False),
    "edge_normalization": (_switch, lambda v: True,
                           '"auto" (on when partial_channels > 1), true or false', False),
    "dataset": (str, lambda v: bool(re.fullmatch(r"[a-z0-9][a-z0-9_-]*", v)), "a dataset name", False),
    "random_state": (_integer, lambda v: v >= 0, "an integer >= 0", True),
}


def parse_algorithm_settings(text: str) -> DartsSettings:
    """Resolve `--algorithm-settings` (JSON object, `"` or `'`) over the defaults."""
    raw = _lenient(text, "--algorithm-settings")
    if not isinstance(raw, Mapping):
        raise ConfigError("--algorithm-settings", text, "must be a JSON object of DARTS settings")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _RULES:
            raise ConfigError(f"--algorithm-settings.{name}", value, f"unknown setting; allowed: {', '.join(sorted(_RULES))}")
        parse, check, allowed, allow_none = _RULES[name]
        if value is None or value == "None":
            if not allow_none:
                raise ConfigError(f"--algorithm-settings.{name}", value, f"must be {allowed}")
            values[name] = None
            continue
        try:
            parsed = parse(value)
            ok = check(parsed)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"--algorithm-settings.{name}", value, f"must be {allowed}")
        values[name] = parsed
    return DartsSettings(**values)


def parse_search_space(text: str) -> tuple[str, ...]:
    """`--search-space`: a non-empty JSON list of primitive names; `none` is the trainer's own."""
    raw = _lenient(text, "--search-space")
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise ConfigError("--search-space", text, "must be a JSON list of primitive names such as [\"separable_convolution_3x3\", \"skip_connection\"]")
    names = tuple(dict.fromkeys(p for p in raw if p != "none"))
    if not names:
        raise ConfigError("--search-space", text, "must name at least one primitive besides none")
    return names


def parse_num_layers(text: str) -> int:
    try:
        value = _integer(_lenient(text, "--num-layers"))
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise ConfigError("--num-layers", text, "must be an integer >= 1")
    return value


def _lenient(text: str, what: str) -> Any:
    # Katib's templates quote the value inside the argument (--x="[...]") and no shell strips it.
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        stripped = stripped[1:-1]
    try:
        return loads_lenient(stripped, what)
    except SpaceError as exc:
        raise ConfigError(what, text, exc.allowed) from None
