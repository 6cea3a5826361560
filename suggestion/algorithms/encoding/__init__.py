"""NAS encodings: the choice-vector view of a nasConfig, one per `search_mode`.

`nas_encoding(nas, settings)` picks the encoding named by the `search_mode` setting:
`macro` (Katib's ENAS rows, the default), `micro` (ENAS cells as a Genotype, `num_nodes`
nodes, default 5) or `nb201` (the NAS-Bench-201 cell string). Every NAS-capable
algorithm's settings extend `EncodedSearchSettings` (`search_mode`, `num_nodes`) and it
searches over the encoding's vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubenas.algorithm_settings.common import (
    DEFAULT_NUM_NODES,
    DEFAULT_SEARCH_MODE,
    SEARCH_MODES,
    EncodedSearchSettings,
    SeededSettings,
)
from kubenas.registry import Registry
from kubenas.space import NasConfig, SearchSpace, SpaceError
from suggestion.algorithms.base import InvalidSettings
from suggestion.algorithms.encoding.base import (
    ARCHITECTURE,
    CHOICE_KINDS,
    NN_CONFIG,
    Choice,
    NasEncoding,
    Vector,
    as_vector,
    compact,
)
from suggestion.algorithms.encoding.macro import MacroEncoding, macro_assignments, rows_key
from suggestion.algorithms.encoding.micro import MicroEncoding, loose_ends, usable_in_cell
from suggestion.algorithms.encoding.nb201 import Nb201Encoding

__all__ = [
    "ARCHITECTURE",
    "CHOICE_KINDS",
    "DEFAULT_NUM_NODES",
    "DEFAULT_SEARCH_MODE",
    "ENCODINGS",
    "NAS_SETTING_NAMES",
    "NN_CONFIG",
    "SEARCH_MODES",
    "Choice",
    "MacroEncoding",
    "MicroEncoding",
    "NasEncoding",
    "Nb201Encoding",
    "Vector",
    "as_vector",
    "check_hpo_settings",
    "compact",
    "loose_ends",
    "macro_assignments",
    "nas_encoding",
    "rows_key",
    "usable_in_cell",
]

# The one place that builds every mode (names: SEARCH_MODES): name -> builder from (nasConfig, num_nodes).
ENCODINGS: Registry[Callable[[NasConfig, int], NasEncoding]] = Registry("search mode", [
    ("macro", lambda nas, _nodes: MacroEncoding(nas)),
    ("micro", MicroEncoding),
    ("nb201", lambda nas, _nodes: Nb201Encoding(nas)),
])
# The settings that only a NAS search uses.
NAS_SETTING_NAMES: tuple[str, ...] = tuple(
    name for name in EncodedSearchSettings.model_fields if name not in SeededSettings.model_fields)


def nas_encoding(nas: NasConfig, settings: Mapping[str, Any]) -> NasEncoding:
    """The encoding for `settings` (`search_mode` and `num_nodes` of parsed settings, as a mapping).

    Raises InvalidSettings naming the setting (`num_nodes` without micro) or the
    nasConfig field (`nasConfig.operations`, ...) when the space does not fit the mode.
    """
    mode = settings.get("search_mode") or DEFAULT_SEARCH_MODE
    num_nodes = settings.get("num_nodes")
    if num_nodes is not None and mode != "micro":
        raise InvalidSettings("num_nodes", num_nodes, 'only used with search_mode "micro"')
    if mode not in ENCODINGS:
        raise InvalidSettings("search_mode", mode, "must be one of " + ", ".join(SEARCH_MODES))
    try:
        nas.check()
        return ENCODINGS[mode](nas, DEFAULT_NUM_NODES if num_nodes is None else num_nodes)
    except SpaceError as err:
        field = err.field if err.field.startswith("nasConfig") else f"nasConfig.{err.field}"
        raise InvalidSettings(field, err.value, err.allowed) from None


def check_hpo_settings(space: SearchSpace, settings: Mapping[str, Any]) -> None:
    """InvalidSettings when NAS settings are given for a space without a nasConfig."""
    if space.nas_config is not None:
        return
    for name in NAS_SETTING_NAMES:
        if settings.get(name) is not None:
            raise InvalidSettings(name, settings[name], "only used with a nasConfig (NAS search)")
