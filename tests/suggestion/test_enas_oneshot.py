"""The enas-oneshot suggestion: strict settings, and assignments the one-shot trainer reads as sent."""

from __future__ import annotations

import json

import pytest

from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.enas_oneshot import EnasOneshot
from tests.suggestion.contract import CONTRACT_SPACES, OBJECTIVE
from trainer.enas_search.settings import (
    EnasOneshotSettings,
    parse_algorithm_settings,
    parse_search_space,
)

MACRO = CONTRACT_SPACES["nas_macro"]
MICRO_SETTINGS = {"search_mode": "micro", "num_nodes": "3"}


def _suggest(settings: dict[str, str], space: object = MACRO) -> dict[str, str]:
    return dict(EnasOneshot().suggest(Problem("e", space, OBJECTIVE, settings), [], 1)[0].assignments)  # type: ignore[arg-type]


def test_suggestion_and_trainer_declare_the_same_settings_and_defaults() -> None:
    assert EnasOneshot.settings_model is EnasOneshotSettings
    resolved = json.loads(_suggest({})["algorithm-settings"])
    assert resolved == EnasOneshotSettings().model_dump()


def test_every_call_returns_the_same_resolved_settings_and_whole_space() -> None:
    settings = {"num_epochs": "3", "child_lr": "0.1", "sampler": "random", "random_state": "4",
                "controller_entropy_weight": "None", "dataset": "digits"}
    first, again = _suggest(settings), _suggest(settings)
    assert first == again and set(first) == {"algorithm-settings", "search-space"}
    trained = parse_algorithm_settings(first["algorithm-settings"])
    assert (trained.num_epochs, trained.child_lr, trained.sampler, trained.random_state) == (3, 0.1, "random", 4)
    assert trained.controller_entropy_weight is None and trained.dataset == "digits"
    space = parse_search_space(first["search-space"], trained.search_mode)
    assert MACRO.nas_config is not None
    assert list(space.ops) == MACRO.nas_config.expanded()
    assert space.input_shape == (1, 8, 8) and space.num_classes == 10 and space.num_layers == 3


def test_micro_space_names_the_cell_primitives_and_nodes() -> None:
    out = _suggest(MICRO_SETTINGS, CONTRACT_SPACES["nas_micro"])
    space = parse_search_space(out["search-space"], "micro")
    assert space.num_nodes == 3 and "reduction" not in " ".join(space.primitives)
    assert space.primitives == ("convolution_3x3", "convolution_5x5", "separable_convolution_3x3")


@pytest.mark.parametrize(("settings", "named"), [
    ({"search_mode": "nb201"}, "search_mode"),
    ({"sampler": "greedy"}, "sampler"),
    ({"child_lr": "0"}, "child_lr"),
    ({"child_lr_schedule": "step"}, "child_lr_schedule"),
    ({"controller_steps_per_epoch": "0"}, "controller_steps_per_epoch"),
    ({"final_children": "1e9"}, "final_children"),
    ({"num_epochs": "2.5"}, "num_epochs"),
    ({"controller_baseline_decay": "1.5"}, "controller_baseline_decay"),
    ({"num_nodes": "3"}, "num_nodes"),  # only with micro
    ({"child_lr": "0.01", "child_lr_min": "0.1"}, "child_lr_min"),
    ({"dataset": "CIFAR 10"}, "dataset"),
])
def test_bad_settings_name_the_setting(settings: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        EnasOneshot().validate(Problem("e", MACRO, OBJECTIVE, settings))
    assert info.value.setting == named and str(info.value).startswith(f"{named}: "), str(info.value)
