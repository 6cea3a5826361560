"""ENAS settings: the model is `kubenas.algorithm_settings.enas.EnasSettings`; this adds the
rule that needs to know what the user gave (not only the resolved values)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.enas import EnasSettings
from suggestion.algorithms.base import InvalidSettings

__all__ = ["EnasSettings", "parse_enas_settings"]

E = TypeVar("E", bound=EnasSettings)


def parse_enas_settings(raw: Mapping[str, str], model: type[E]) -> E:
    """Parse wire settings; raises InvalidSettings naming the setting, value and range."""
    settings = parse_settings(raw, model)
    # The resolved settings always hold num_nodes (the trainers read them), so only a
    # num_nodes the user wrote can be refused here.
    if "num_nodes" in raw and settings.search_mode != "micro":
        raise InvalidSettings("num_nodes", raw["num_nodes"], 'only used with search_mode "micro"')
    return settings
