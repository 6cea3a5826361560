"""The one-shot ENAS trainer's inputs: `--algorithm-settings` and the whole-space `--search-space`.

The settings are the `enas-oneshot` suggestion's (suggestion/algorithms/enas_oneshot.py,
which this package may not import): Katib's ENAS controller settings, then the
shared-weights ones. Katib's service passes user values as strings ("3") and may write
single quotes; ours writes JSON numbers; both resolve to the same typed `OneshotSettings`.

`--search-space` is an `nn_config` describing every choice instead of one child: for
macro, `embedding` lists every expanded op; for micro, `primitives` lists every cell
primitive (`search_mode: "micro"`, `num_nodes`). The sizes are Katib's channels-last
`input_sizes` and `output_sizes` (the last is the class count).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from kubenas.errors import InvalidValue
from kubenas.space import ExpandedOp, SpaceError, loads_lenient

__all__ = ["SAMPLERS", "SCHEDULES", "SEARCH_MODES", "ConfigError", "OneshotSettings", "SpaceSpec",
           "parse_algorithm_settings", "parse_search_space"]

SEARCH_MODES = ("macro", "micro")
SAMPLERS = ("enas", "random")
SCHEDULES = ("cosine", "constant")


class ConfigError(InvalidValue):
    """A flag, setting or search space the trainer cannot use; the entry point exits 2."""


@dataclass(frozen=True)
class OneshotSettings:
    """Resolved settings; `None` turns a controller feature off (Katib's "None")."""

    # Katib's ENAS controller settings (one-shot defaults where ENAS's paper differs from
    # Katib's multi-trial ones: a reward per minibatch, not per trained child).
    controller_hidden_size: int = 64
    controller_temperature: float | None = 5.0
    controller_tanh_const: float | None = 2.5
    controller_entropy_weight: float | None = 1e-4
    controller_baseline_decay: float = 0.99
    controller_learning_rate: float = 3.5e-4
    controller_skip_target: float = 0.4
    controller_skip_weight: float | None = 0.8
    controller_train_steps: int = 1  # Adam steps per controller step (on that step's children)
    controller_log_every_steps: int = 10
    random_state: int | None = None
    search_mode: str = "macro"
    num_nodes: int = 5
    # Shared weights and the search loop.
    num_epochs: int = 10
    batch_size: int = 64
    child_lr: float = 0.05
    child_lr_min: float = 0.0005
    child_lr_schedule: str = "cosine"
    child_momentum: float = 0.9
    child_weight_decay: float = 1e-4
    child_grad_clip: float = 5.0
    init_channels: int = 16
    controller_steps_per_epoch: int = 20
    controller_children_per_step: int = 4
    final_children: int = 16
    sampler: str = "enas"
    dataset: str = "cifar10"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _integer(value: Any) -> int:
    number = _number(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(value)
        return value

    return parse


# name -> (parse, check, allowed, None allowed); the same rules as the suggestion's.
_Rule = tuple[Callable[[Any], Any], Callable[[Any], bool], str, bool]


def _int_at_least(low: int) -> _Rule:
    return (_integer, lambda v: v >= low, f"an integer >= {low}", False)


def _positive(allow_none: bool = False) -> _Rule:
    return (_number, lambda v: v > 0, "a number > 0", allow_none)


_RULES: dict[str, _Rule] = {
    "controller_hidden_size": _int_at_least(1),
    "controller_temperature": _positive(True),
    "controller_tanh_const": _positive(True),
    "controller_entropy_weight": _positive(True),
    "controller_baseline_decay": (_number, lambda v: 0 < v <= 1, "a number in (0, 1]", False),
    "controller_learning_rate": (_number, lambda v: 0 < v <= 1, "a number in (0, 1]", False),
    "controller_skip_target": (_number, lambda v: 0 < v < 1, "a number in (0, 1)", False),
    "controller_skip_weight": _positive(True),
    "controller_train_steps": _int_at_least(1),
    "controller_log_every_steps": _int_at_least(1),
    "random_state": (_integer, lambda v: 0 <= v < 2**63, "an integer in [0, 2^63)", True),
    "search_mode": (_choice(*SEARCH_MODES), lambda v: True, "one of " + ", ".join(SEARCH_MODES), False),
    "num_nodes": (_integer, lambda v: 1 <= v <= 64, "an integer in [1, 64]", False),
    "num_epochs": _int_at_least(1),
    "batch_size": _int_at_least(1),
    "child_lr": (_number, lambda v: 0 < v <= 10, "a number in (0, 10]", False),
    "child_lr_min": (_number, lambda v: v >= 0, "a number >= 0", False),
    "child_lr_schedule": (_choice(*SCHEDULES), lambda v: True, "one of " + ", ".join(SCHEDULES), False),
    "child_momentum": (_number, lambda v: 0 <= v < 1, "a number in [0, 1)", False),
    "child_weight_decay": (_number, lambda v: v >= 0, "a number >= 0", False),
    "child_grad_clip": (_number, lambda v: v > 0, "a number > 0", False),
    "init_channels": (_integer, lambda v: 1 <= v <= 1024, "an integer in [1, 1024]", False),
    "controller_steps_per_epoch": _int_at_least(1),
    "controller_children_per_step": (_integer, lambda v: 1 <= v <= 1024, "an integer in [1, 1024]", False),
    "final_children": (_integer, lambda v: 1 <= v <= 10_000, "an integer in [1, 10000]", False),
    "sampler": (_choice(*SAMPLERS), lambda v: True, "one of " + ", ".join(SAMPLERS), False),
    "dataset": (str, lambda v: bool(v) and v.replace("-", "").replace("_", "").isalnum() and v.islower(),
                "a dataset name", False),
}


def _lenient(text: str, what: str) -> Any:
    # Katib's templates quote the value inside the argument (--x="{...}") and no shell strips it.
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        stripped = stripped[1:-1]
    try:
        return loads_lenient(stripped, what)
    except SpaceError as exc:
        raise ConfigError(what, text, exc.allowed) from None


def parse_algorithm_settings(text: str) -> OneshotSettings:
    """Resolve `--algorithm-settings` (a JSON object, `"` or `'`) over the defaults."""
    raw = _lenient(text, "--algorithm-settings")
    if not isinstance(raw, Mapping):
        raise ConfigError("--algorithm-settings", text, "must be a JSON object of enas-oneshot settings")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        field = f"--algorithm-settings.{name}"
        if name not in _RULES:
            raise ConfigError(field, value, f"unknown setting; allowed: {', '.join(sorted(_RULES))}")
        parse, check, allowed, allow_none = _RULES[name]
        if value is None or value == "None":
            if not allow_none:
                raise ConfigError(field, value, f"must be {allowed}")
            values[name] = None
            continue
        try:
            parsed = parse(value)
            ok = check(parsed)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(field, value, f"must be {allowed}")
        values[name] = parsed
    settings = OneshotSettings(**values)
    if settings.child_lr_min > settings.child_lr:
        raise ConfigError("--algorithm-settings.child_lr_min", settings.child_lr_min,
                          f"must be <= child_lr ({settings.child_lr})")
    return settings


@dataclass(frozen=True)
class SpaceSpec:
    """The whole search space: its mode, depth, image and class sizes, and its choices."""

    mode: str
    num_layers: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    ops: tuple[ExpandedOp, ...] = ()  # macro: every expanded op, in opt_id order
    primitives: tuple[str, ...] = ()  # micro: every cell primitive
    num_nodes: int = 0

    def nn_config(self, used_ops: list[int] | None = None, init_channels: int | None = None) -> dict[str, Any]:
        """The `nn_config` of one child (macro: only `used_ops` in the embedding)."""
        c, h, w = self.input_shape
        config: dict[str, Any] = {"num_layers": self.num_layers, "input_sizes": [h, w, c],
                                  "output_sizes": [self.num_classes]}
        if self.mode == "micro":
            config.update(search_mode="micro", num_nodes=self.num_nodes, primitives=list(self.primitives))
            if init_channels is not None:
                config["init_channels"] = init_channels
        else:
            keep = sorted(set(range(len(self.ops)) if used_ops is None else used_ops))
            config["embedding"] = {str(i): self.ops[i].to_json() for i in keep}
        return config


def _sizes(config: Mapping[str, Any], key: str, low: int, high: int, shape: str) -> list[int]:
    raw = config.get(key)
    if not (isinstance(raw, list) and low <= len(raw) <= high
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in raw)):
        raise ConfigError(f"--search-space.{key}", raw, f"must be {shape} of positive integers")
    return [int(v) for v in raw]


def parse_search_space(text: str, search_mode: str) -> SpaceSpec:
    """`--search-space` (a whole-space nn_config) for `search_mode`; ConfigError names the field."""
    config = _lenient(text, "--search-space")
    if not isinstance(config, Mapping):
        raise ConfigError("--search-space", text, "must be a JSON object (the enas-oneshot suggestion's search-space)")
    mode = config.get("search_mode", "macro")
    if mode != search_mode:
        raise ConfigError("--search-space.search_mode", mode, f"must match the search_mode setting ({search_mode!r})")
    layers = config.get("num_layers")
    if not isinstance(layers, int) or isinstance(layers, bool) or not 1 <= layers <= 1000:
        raise ConfigError("--search-space.num_layers", layers, "must be an integer in [1, 1000]")
    sizes = _sizes(config, "input_sizes", 2, 3, "[H, W, C] or [H, W]")
    shape = (sizes[2] if len(sizes) == 3 else 1, sizes[0], sizes[1])
    classes = _sizes(config, "output_sizes", 1, 99, "a non-empty list (the last is the class count)")[-1]
    if mode == "micro":
        primitives = config.get("primitives")
        if not isinstance(primitives, list) or not primitives or not all(isinstance(p, str) and p for p in primitives):
            raise ConfigError("--search-space.primitives", primitives, "must be a non-empty list of cell primitive names")
        nodes = config.get("num_nodes")
        if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= 64:
            raise ConfigError("--search-space.num_nodes", nodes, "must be an integer in [1, 64]")
        return SpaceSpec("micro", layers, shape, classes, primitives=tuple(primitives), num_nodes=nodes)
    embedding = config.get("embedding")
    if not isinstance(embedding, Mapping) or not embedding:
        raise ConfigError("--search-space.embedding", embedding, "must map every op id 0..K-1 to {opt_id, opt_type, opt_params}")
    ops: list[ExpandedOp] = []
    for i in range(len(embedding)):
        entry = embedding.get(str(i))
        if not isinstance(entry, Mapping) or not isinstance(entry.get("opt_type"), str):
            raise ConfigError(f"--search-space.embedding[{i!r}]", entry,
                              f"op ids must be 0..{len(embedding) - 1}, each an object with opt_type and opt_params")
        try:
            ops.append(ExpandedOp.from_json({**entry, "opt_id": i}))
        except (TypeError, ValueError, KeyError):
            raise ConfigError(f"--search-space.embedding[{i!r}]", entry, "opt_params must be an object") from None
    return SpaceSpec("macro", layers, shape, classes, ops=tuple(ops))
