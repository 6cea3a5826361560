"""Contract over the early-stopping registry: every registered algorithm names itself, declares
its settings, refuses bad ones with the setting named, and gives no rule before any trial ended."""

from __future__ import annotations

import pytest

from kubenas.trials import Objective, ObjectiveType
from suggestion.algorithms.base import InvalidSettings
from suggestion.early_stopping.base import RulesProblem
from suggestion.early_stopping.registry import early_stopping_class, early_stopping_names

NAMES = early_stopping_names()


@pytest.mark.parametrize("name", NAMES)
def test_names_itself_and_resolves_defaults(name: str) -> None:
    algorithm = early_stopping_class(name)()
    assert algorithm.name == name
    resolved = algorithm.parse({})
    assert isinstance(resolved, algorithm.settings_model)
    assert set(dict(resolved)) == set(algorithm.settings_model.model_fields)


@pytest.mark.parametrize("name", NAMES)
def test_refuses_unknown_and_malformed_settings_naming_them(name: str) -> None:
    algorithm = early_stopping_class(name)()
    with pytest.raises(InvalidSettings) as info:
        algorithm.parse({"no_such_setting": "1"})
    assert info.value.setting == "no_such_setting"
    for name in algorithm.settings_model.model_fields:
        with pytest.raises(InvalidSettings) as info:
            algorithm.parse({name: "not a value \x00" * 3})
        assert info.value.setting == name and info.value.allowed


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", [ObjectiveType.MAXIMIZE, ObjectiveType.MINIMIZE])
def test_no_rules_without_finished_trials(name: str, kind: ObjectiveType) -> None:
    algorithm = early_stopping_class(name)()
    problem = RulesProblem("exp", Objective(kind, "accuracy"), {}, ())

    def no_logs(_trial: str, _metric: str) -> list[float]:
        raise AssertionError("no trial to read a log of")

    assert algorithm.rules(problem, no_logs) == []
