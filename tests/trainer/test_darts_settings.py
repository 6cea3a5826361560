"""The trainer reads exactly what the darts suggestion writes, and what Katib's service writes."""

from __future__ import annotations

import json

import pytest

from kubenas.space import GraphConfig, NasConfig, Operation, SearchSpace
from kubenas.trials import Objective, ObjectiveType
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.darts import Darts
from trainer.darts.settings import (
    ConfigError,
    DartsSettings,
    parse_algorithm_settings,
    parse_num_layers,
    parse_search_space,
)


def test_trainer_and_suggestion_share_one_settings_model() -> None:
    assert Darts.settings_model is DartsSettings
    assert parse_algorithm_settings("{}") == DartsSettings()


def test_suggestion_output_round_trips_into_the_trainer() -> None:
    space = SearchSpace(nas_config=NasConfig(GraphConfig(4, (), ()), (Operation("skip_connection"),)))
    raw = {"num_epochs": "7", "w_lr": "0.1", "batch_size": "None", "order": "first", "partial_channels": "2",
           "dataset": "digits", "random_state": "3"}
    [s] = Darts().suggest(Problem("e", space, Objective(ObjectiveType.MAXIMIZE, "Best-Genotype"), raw), [], 1)
    parsed = parse_algorithm_settings(s.assignments["algorithm-settings"])
    assert parsed.model_dump() == json.loads(s.assignments["algorithm-settings"])
    assert parse_search_space(s.assignments["search-space"]) == ("skip_connection",)
    assert parse_num_layers(s.assignments["num-layers"]) == 4


def test_katib_service_output_with_string_values_and_single_quotes() -> None:
    # Katib's service keeps user overrides as strings and swaps " for '.
    text = "\"{'num_epochs': '3', 'w_lr': 0.025, 'batch_size': 'None', 'num_nodes': '2', 'stem_multiplier': 3}\""
    s = parse_algorithm_settings(text)
    assert (s.num_epochs, s.batch_size, s.num_nodes, s.w_lr) == (3, None, 2, 0.025)
    assert parse_search_space("\"['max_pooling_3x3', 'none', 'max_pooling_3x3']\"") == ("max_pooling_3x3",)
    assert parse_num_layers('"8"') == 8


@pytest.mark.parametrize(("text", "field"), [
    ("{'num_epochs': 1.5}", "num_epochs"),
    ("{'w_momentum': -0.1}", "w_momentum"),
    ('{"init_channels": true}', "init_channels"),
    ("{'stem_multiplier': None}", "stem_multiplier"),
    ("{'dataset': ''}", "dataset"),
    ("{'foo': 1}", "foo"),
    ("not json", "--algorithm-settings"),
])
def test_bad_settings_name_the_setting(text: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_algorithm_settings(text)
    assert field in info.value.field


@pytest.mark.parametrize(("text", "on"), [
    ("{'partial_channels': 1}", False),
    ("{'partial_channels': 4}", True),
    ("{'partial_channels': 2, 'edge_normalization': 'auto'}", True),
    ("{'partial_channels': 4, 'edge_normalization': 'false'}", False),
    ("{'partial_channels': 1, 'edge_normalization': 'TRUE'}", True),
    ('{"partial_channels": 1, "edge_normalization": true}', True),  # JSON booleans
    ("{'partial_channels': 2, 'edge_normalization': False}", False),  # Katib's Python-literal form
])
def test_edge_normalization_defaults_to_on_exactly_with_partial_channels(text: str, on: bool) -> None:
    settings = parse_algorithm_settings(text)
    assert settings.uses_edge_normalization is on
    assert settings.edge_normalization in ("auto", "true", "false")


def test_edge_normalization_round_trips_from_the_suggestion_and_bad_values_name_it() -> None:
    space = SearchSpace(nas_config=NasConfig(GraphConfig(4, (), ()), (Operation("skip_connection"),)))
    objective = Objective(ObjectiveType.MAXIMIZE, "Best-Genotype")
    [s] = Darts().suggest(Problem("e", space, objective, {"partial_channels": "4", "edge_normalization": "False"}), [], 1)
    parsed = parse_algorithm_settings(s.assignments["algorithm-settings"])
    assert parsed.edge_normalization == "false" and not parsed.uses_edge_normalization
    with pytest.raises(InvalidSettings) as info:
        Darts().validate(Problem("e", space, objective, {"edge_normalization": "sometimes"}))
    assert info.value.setting == "edge_normalization" and "auto" in str(info.value)
    with pytest.raises(ConfigError) as error:
        parse_algorithm_settings("{'edge_normalization': 1}")
    assert error.value.field == "--algorithm-settings.edge_normalization"
