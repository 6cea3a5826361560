"""NAS encodings: the choice-vector view of a nasConfig, one per `search_mode`.

`nas_encoding(nas, settings)` picks the encoding named by the `search_mode` setting:
`macro` (Katib's ENAS rows, the default), `micro` (ENAS cells as a Genotype, `num_nodes`
nodes, default 5) or `nb201` (the NAS-Bench-201 cell string). Every NAS-capable
algorithm adds `NAS_SETTINGS` to its settings and searches over the encoding's vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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
from suggestion.algorithms.settings import Setting, as_choice, as_int

__all__ = [
    "ARCHITECTURE",
    "CHOICE_KINDS",
    "DEFAULT_NUM_NODES",
    "DEFAULT_SEARCH_MODE",
    "ENCODINGS",
    "NAS_SETTINGS",
    "NN_CONFIG",
    "NUM_NODES",
    "SEARCH_MODE",
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

DEFAULT_SEARCH_MODE = "macro"
DEFAULT_NUM_NODES = 5

# The one place that knows every mode: name -> builder from (nasConfig, num_nodes).
ENCODINGS: dict[str, Callable[[NasConfig, int], NasEncoding]] = {
    "macro": lambda nas, _nodes: MacroEncoding(nas),
    "micro": MicroEncoding,
    "nb201": lambda nas, _nodes: Nb201Encoding(nas),
}
SEARCH_MODES: tuple[str, ...] = tuple(ENCODINGS)

# Both default to None ("not given") so that a num_nodes given with a mode that has no
# nodes is refused; `nas_encoding` resolves None to the documented defaults.
SEARCH_MODE = Setting(
    "search_mode", None, as_choice(*SEARCH_MODES), allowed="one of " + ", ".join(SEARCH_MODES)
)
NUM_NODES = Setting("num_nodes", None, as_int, lambda v: 1 <= v <= 64, "an integer in [1, 64]")
NAS_SETTINGS: tuple[Setting, ...] = (SEARCH_MODE, NUM_NODES)


def nas_encoding(nas: NasConfig, settings: Mapping[str, Any]) -> NasEncoding:
    """The encoding for `settings` (the parsed settings dict holding NAS_SETTINGS).

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
    """InvalidSettings when NAS_SETTINGS are given for a space without a nasConfig."""
    if space.nas_config is not None:
        return
    for setting in NAS_SETTINGS:
        if settings.get(setting.name) is not None:
            raise InvalidSettings(setting.name, settings[setting.name], "only used with a nasConfig (NAS search)")
