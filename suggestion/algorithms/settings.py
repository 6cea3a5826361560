"""Typed algorithm settings: declared once per algorithm, parsed once, errors name the setting."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suggestion.algorithms.base import InvalidSettings

__all__ = ["NONE_TEXT", "Setting", "as_choice", "as_float", "as_int", "parse_settings"]

NONE_TEXT = "None"


@dataclass(frozen=True)
class Setting:
    """One setting: its default, a parser from text, and a check with its allowed range."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    check: Callable[[Any], bool] = lambda _v: True
    allowed: str = ""
    allow_none: bool = False  # Katib's "None" text disables the feature


def as_int(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


def as_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def as_choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return parse


def parse_settings(raw: Mapping[str, str], specs: Sequence[Setting]) -> dict[str, Any]:
    """Resolve every declared setting (defaults filled in); reject unknown names and bad values."""
    by_name = {s.name: s for s in specs}
    for name in raw:
        if name not in by_name:
            raise InvalidSettings(name, raw[name], f"unknown setting; allowed settings: {', '.join(sorted(by_name))}")
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in raw:
            out[spec.name] = spec.default
            continue
        text = str(raw[spec.name]).strip()
        if spec.allow_none and text == NONE_TEXT:
            out[spec.name] = None
            continue
        try:
            value = spec.parse(text)
            ok = spec.check(value)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            allowed = spec.allowed + (' or "None"' if spec.allow_none else "")
            raise InvalidSettings(spec.name, raw[spec.name], f"must be {allowed}")
        out[spec.name] = value
    return out
