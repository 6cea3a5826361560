"""The one-shot ENAS trainer's inputs: `--algorithm-settings` and the whole-space `--search-space`.

The settings model is the `enas-oneshot` suggestion's
(`kubenas.algorithm_settings.enas.EnasOneshotSettings`): Katib's ENAS controller settings,
then the shared-weights ones. Katib's service passes user values as strings ("3") and may
write single quotes; ours writes JSON numbers; both resolve to the same typed settings.

`--search-space` is an `nn_config` describing every choice instead of one child: for
macro, `embedding` lists every expanded op; for micro, `primitives` lists every cell
primitive (`search_mode: "micro"`, `num_nodes`). The sizes are Katib's channels-last
`input_sizes` and `output_sizes` (the last is the class count).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubenas.algorithm_settings.enas import EnasOneshotSettings
from kubenas.space import ExpandedOp
from trainer.katib_flags import ConfigError, lenient_json, settings_flag

__all__ = ["ConfigError", "EnasOneshotSettings", "SpaceSpec", "parse_algorithm_settings", "parse_search_space"]


def parse_algorithm_settings(text: str) -> EnasOneshotSettings:
    """Resolve `--algorithm-settings` (a JSON object, `"` or `'`) over the defaults."""
    return settings_flag(text, EnasOneshotSettings, "enas-oneshot")


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
    config = lenient_json(text, "--search-space")
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
