"""parse_settings: defaults, typed values, unknown names and range errors that name the setting."""

from __future__ import annotations

import pytest

from suggestion.algorithms.base import InvalidSettings
from suggestion.algorithms.settings import Setting, as_choice, as_float, as_int, parse_settings

SPECS = [
    Setting("hidden", 64, as_int, lambda v: v >= 1, "an integer >= 1"),
    Setting("temperature", 5.0, as_float, lambda v: v > 0, "a number > 0", allow_none=True),
    Setting("mode", "macro", as_choice("macro", "micro"), allowed="one of macro, micro"),
]


def test_defaults_fill_every_setting() -> None:
    assert parse_settings({}, SPECS) == {"hidden": 64, "temperature": 5.0, "mode": "macro"}


def test_values_are_parsed_to_numbers() -> None:
    got = parse_settings({"hidden": "32", "temperature": "0.5", "mode": "micro"}, SPECS)
    assert got == {"hidden": 32, "temperature": 0.5, "mode": "micro"}
    assert isinstance(got["hidden"], int)


def test_none_text_disables_when_allowed() -> None:
    assert parse_settings({"temperature": "None"}, SPECS)["temperature"] is None
    with pytest.raises(InvalidSettings):
        parse_settings({"hidden": "None"}, SPECS)


@pytest.mark.parametrize(
    ("raw", "setting", "fragment"),
    [
        ({"hidden": "0"}, "hidden", "an integer >= 1"),
        ({"hidden": "2.5"}, "hidden", "an integer >= 1"),
        ({"temperature": "-1"}, "temperature", 'a number > 0 or "None"'),
        ({"temperature": "nan"}, "temperature", "a number > 0"),
        ({"mode": "meso"}, "mode", "one of macro, micro"),
        ({"hiden": "3"}, "hiden", "unknown setting; allowed settings: hidden, mode, temperature"),
    ],
)
def test_errors_name_setting_value_and_range(raw: dict[str, str], setting: str, fragment: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        parse_settings(raw, SPECS)
    assert info.value.setting == setting
    assert fragment in str(info.value)
    assert repr(next(iter(raw.values()))) in str(info.value)
