"""Every registry of the project is a `kubenas.registry.Registry`: duplicates are refused when it
is built, and an unknown name is answered with the names it knows."""

from __future__ import annotations

import pytest

from kubenas.op_shapes import OP_SHAPES
from kubenas.registry import Registry, UnknownName
from suggestion.algorithms.enas.algorithm import MODES
from suggestion.algorithms.encoding import ENCODINGS
from suggestion.algorithms.registry import ALGORITHMS, UnknownAlgorithm
from suggestion.early_stopping.registry import EARLY_STOPPING, UnknownEarlyStopping
from trainer.cli import TRAINERS
from trainer.data import DATASETS
from trainer.ops import BUILDERS

REGISTRIES: dict[str, Registry[object]] = {
    "algorithms": ALGORITHMS, "early stopping": EARLY_STOPPING, "trainers": TRAINERS,  # type: ignore[dict-item]
    "op shapes": OP_SHAPES, "op builders": BUILDERS, "datasets": DATASETS, "encodings": ENCODINGS, "enas modes": MODES,  # type: ignore[dict-item]
}


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_each_registry_is_one_registry_answering_unknown_names_with_the_known(name: str) -> None:
    registry = REGISTRIES[name]
    assert isinstance(registry, Registry) and len(registry) >= 1
    with pytest.raises(UnknownName) as info:
        registry["no-such-entry"]
    assert info.value.known == sorted(registry) and registry.kind in str(info.value)


def test_algorithm_registries_raise_their_own_errors() -> None:
    with pytest.raises(UnknownAlgorithm, match="algorithm 'nope' is not known; available: bayesian, "):
        ALGORITHMS["nope"]
    with pytest.raises(UnknownEarlyStopping, match="available: medianstop"):
        EARLY_STOPPING["nope"]
