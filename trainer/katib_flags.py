"""Reading the flags Katib's trial templates pass to a one-trial search (DARTS, one-shot ENAS).

`--algorithm-settings` is the suggestion's resolved settings: JSON numbers from ours,
strings in single quotes from Katib's service. Both parse with the algorithm's settings
model (`kubenas.algorithm_settings`), the one the suggestion validated them with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from kubenas.algorithm_settings import AlgorithmSettings, InvalidSettings, parse_settings
from kubenas.errors import InvalidValue
from kubenas.space import SpaceError, loads_lenient

__all__ = ["ConfigError", "lenient_json", "settings_flag"]

S = TypeVar("S", bound=AlgorithmSettings)


class ConfigError(InvalidValue):
    """A flag, setting or search space the trainer cannot use; the entry point prints it and exits 2."""


def lenient_json(text: str, what: str) -> Any:
    """A flag's JSON (`"` or Katib's `'`), with the quotes Katib's templates leave around it."""
    # Katib's templates quote the value inside the argument (--x="[...]") and no shell strips it.
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        stripped = stripped[1:-1]
    try:
        return loads_lenient(stripped, what)
    except SpaceError as exc:
        raise ConfigError(what, text, exc.allowed) from None


def settings_flag(text: str, model: type[S], algorithm: str) -> S:
    """`--algorithm-settings` resolved over `model`'s defaults; ConfigError names the setting."""
    raw = lenient_json(text, "--algorithm-settings")
    if not isinstance(raw, Mapping):
        raise ConfigError("--algorithm-settings", text, f"must be a JSON object of {algorithm} settings")
    try:
        return parse_settings(raw, model)
    except InvalidSettings as exc:
        raise ConfigError(f"--algorithm-settings.{exc.setting}", exc.value, exc.allowed) from None
