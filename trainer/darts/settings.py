"""The DARTS trainer's inputs: Katib's `--algorithm-settings` JSON, `--search-space` list and `--num-layers`.

The settings model is the `darts` suggestion's (`kubenas.algorithm_settings.darts`), so a
setting the suggestion accepts is one the trainer accepts.
"""

from __future__ import annotations

from kubenas.algorithm_settings.darts import DartsSettings
from trainer.katib_flags import ConfigError, lenient_json, settings_flag

__all__ = ["ConfigError", "DartsSettings", "parse_algorithm_settings", "parse_num_layers", "parse_search_space"]


def parse_algorithm_settings(text: str) -> DartsSettings:
    """Resolve `--algorithm-settings` (JSON object, `"` or `'`) over the defaults."""
    return settings_flag(text, DartsSettings, "DARTS")


def parse_search_space(text: str) -> tuple[str, ...]:
    """`--search-space`: a non-empty JSON list of primitive names; `none` is the trainer's own."""
    raw = lenient_json(text, "--search-space")
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise ConfigError("--search-space", text, "must be a JSON list of primitive names such as [\"separable_convolution_3x3\", \"skip_connection\"]")
    names = tuple(dict.fromkeys(p for p in raw if p != "none"))
    if not names:
        raise ConfigError("--search-space", text, "must name at least one primitive besides none")
    return names


def parse_num_layers(text: str) -> int:
    value = lenient_json(text, "--num-layers")
    if isinstance(value, str):
        value = value.strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not number.is_integer() or number < 1:
        raise ConfigError("--num-layers", text, "must be an integer >= 1")
    return int(number)
