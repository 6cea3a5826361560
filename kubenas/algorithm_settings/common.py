"""Settings several algorithms share: the seed, the NAS encoding, a dataset name."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from kubenas.algorithm_settings.model import AlgorithmSettings, Int, setting

__all__ = ["DEFAULT_NUM_NODES", "DEFAULT_SEARCH_MODE", "SEARCH_MODES", "DatasetName", "EncodedSearchSettings",
           "SearchModeName", "SeededSettings"]

# The NAS encodings (`suggestion.algorithms.encoding.ENCODINGS` builds one per name).
SearchModeName = Literal["macro", "micro", "nb201"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchModeName)
DEFAULT_SEARCH_MODE = "macro"
DEFAULT_NUM_NODES = 5

DatasetName = Annotated[str, setting(
    "the trainer's dataset; the trainer's --dataset flag overrides it",
    pattern=r"^[a-z0-9][a-z0-9_-]*$", allowed="a dataset name (lower-case letters, digits, '-', '_')")]


class SeededSettings(AlgorithmSettings):
    """Every model-free and model-based search takes Katib's seed."""

    # numpy-style seeds are non-negative 32-bit integers.
    random_state: Annotated[Int | None, setting(
        "seed; the same seed and history give the same suggestions (unset: fresh entropy)",
        ge=0, le=2**32 - 1)] = None


class EncodedSearchSettings(SeededSettings):
    """A search over HPO parameters or any NAS encoding (`search_mode`)."""

    # Both default to None ("not given"), so that num_nodes given with a mode that has no
    # nodes is refused; the encoding resolves None to DEFAULT_SEARCH_MODE / DEFAULT_NUM_NODES.
    search_mode: Annotated[SearchModeName | None, setting(
        "NAS only: the architecture encoding searched (unset: macro)")] = None
    num_nodes: Annotated[Int | None, setting(
        "NAS, micro only: intermediate nodes per cell (unset: 5)", ge=1, le=64)] = None
