"""Contract over the NAS mode registries: the encodings (`ENCODINGS`, every NAS algorithm's
wire format) and ENAS's modes (`MODES`) cover exactly the `search_mode` names the settings
models accept, and each builds for a space of its kind and round-trips what it encodes."""

from __future__ import annotations

import random

import pytest

from kubenas.algorithm_settings.common import SEARCH_MODES
from kubenas.algorithm_settings.enas import EnasSettings
from suggestion.algorithms.enas.algorithm import MODES
from suggestion.algorithms.encoding import ENCODINGS
from tests.suggestion.contract import CONTRACT_SPACES

SPACES = {"macro": CONTRACT_SPACES["nas_macro"], "micro": CONTRACT_SPACES["nas_micro"],
          "nb201": CONTRACT_SPACES["nas_nb201"]}


def test_registries_cover_exactly_the_search_modes_settings_accept() -> None:
    assert list(ENCODINGS) == list(MODES) == list(SEARCH_MODES)
    assert set(SPACES) == set(SEARCH_MODES), "a new mode needs a contract space here"


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_each_encoding_builds_and_round_trips(mode: str) -> None:
    nas = SPACES[mode].nas_config
    assert nas is not None
    encoding = ENCODINGS[mode](nas, 3)
    assert encoding.mode == mode and encoding.size > 1
    rng = random.Random(0)
    for _ in range(5):
        vector = encoding.random_vector(rng)
        assert encoding.decode(encoding.encode(vector)) == tuple(vector)


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_each_enas_mode_uses_the_encoding_of_its_name(mode: str) -> None:
    nas = SPACES[mode].nas_config
    assert nas is not None
    settings = EnasSettings(search_mode=mode, num_nodes=3)  # type: ignore[arg-type]
    enas_mode = MODES[mode](nas, settings)
    assert enas_mode.encoding.mode == mode
