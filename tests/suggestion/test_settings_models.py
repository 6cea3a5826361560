"""Contract over every registered algorithm's and early-stopping rule's settings model: one
model each (kubenas.algorithm_settings), documented field by field, defaults that parse from
nothing and from their own JSON (what the trainers read), and every field refusing a bad
value with the setting named, the value and what is allowed."""

from __future__ import annotations

import json

import pytest

from kubenas.algorithm_settings import (
    AlgorithmSettings,
    InvalidSettings,
    allowed_text,
    parse_settings,
)
from suggestion.algorithms.registry import algorithm_class, algorithm_names
from suggestion.early_stopping.registry import early_stopping_class, early_stopping_names

MODELS: dict[str, type[AlgorithmSettings]] = {
    **{name: algorithm_class(name).settings_model for name in algorithm_names()},
    **{f"early-stopping:{name}": early_stopping_class(name).settings_model for name in early_stopping_names()},
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_setting_is_documented_with_what_it_allows(name: str) -> None:
    model = MODELS[name]
    assert issubclass(model, AlgorithmSettings) and model is not AlgorithmSettings
    assert (model.__doc__ or "").strip(), f"{model.__name__} needs a docstring (the docs' summary)"
    for field, info in model.model_fields.items():
        assert (info.description or "").strip(), f"{name}.{field} has no description"
        assert allowed_text(info), f"{name}.{field}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_defaults_parse_from_nothing_and_from_their_own_json(name: str) -> None:
    model = MODELS[name]
    defaults = parse_settings({}, model)
    assert defaults == model()
    # The suggestion hands resolved settings to the trainer as JSON; they must read back.
    assert parse_settings(json.loads(json.dumps(defaults.model_dump())), model) == defaults
    # ... and as Katib's service hands them: every value as text.
    as_text = {k: str(v) for k, v in defaults.model_dump().items() if v is not None}
    assert parse_settings(as_text, model) == defaults


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_setting_refuses_a_bad_value_naming_it(name: str) -> None:
    model = MODELS[name]
    with pytest.raises(InvalidSettings) as info:
        parse_settings({"no_such_setting": "1"}, model)
    assert info.value.setting == "no_such_setting" and "allowed settings" in info.value.allowed
    for field, info_ in model.model_fields.items():
        bad = "not a value \x00" * 3
        with pytest.raises(InvalidSettings) as err:
            parse_settings({field: bad}, model)
        assert err.value.setting == field and err.value.value == bad
        assert err.value.allowed == f"must be {allowed_text(info_)}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_any_json_value_is_refused_or_accepted_never_a_crash(name: str) -> None:
    # The trainers parse whatever JSON --algorithm-settings holds.
    model = MODELS[name]
    for field in model.model_fields:
        for value in ([1], {"a": 1}, 10**400, -(10**400), True, 1e308 * 10, "", " ", "\x00"):
            try:
                settings = parse_settings({field: value}, model)
            except InvalidSettings as err:
                assert err.setting == field and len(str(err)) < 2000
            else:  # accepted (a JSON boolean for a switch): then it is a value the trainer reads back
                assert parse_settings(json.loads(json.dumps(settings.model_dump())), model) == settings


def test_models_are_frozen() -> None:
    settings = parse_settings({}, MODELS["random"])
    with pytest.raises(ValueError):
        settings.random_state = 3  # type: ignore[misc]
