"""parse_settings over a settings model: defaults, typed values, Katib's "None", unknown names
and range errors that name the setting; the allowed text is derived from the declaration."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest

from kubenas.algorithm_settings import (
    KATIB_NONE,
    AlgorithmSettings,
    Int,
    InvalidSettings,
    Number,
    allowed_text,
    parse_settings,
    setting,
)


class Specs(AlgorithmSettings):
    hidden: Annotated[Int, setting("width", ge=1)] = 64
    temperature: Annotated[Number | None, setting("temperature", gt=0, none=KATIB_NONE)] = 5.0
    mode: Annotated[Literal["macro", "micro"], setting("mode")] = "macro"


def test_defaults_fill_every_setting() -> None:
    assert dict(parse_settings({}, Specs)) == {"hidden": 64, "temperature": 5.0, "mode": "macro"}


def test_values_are_parsed_to_numbers() -> None:
    got = parse_settings({"hidden": "32", "temperature": "0.5", "mode": "micro"}, Specs)
    assert dict(got) == {"hidden": 32, "temperature": 0.5, "mode": "micro"}
    assert isinstance(got.hidden, int)


def test_json_values_parse_like_wire_text() -> None:
    # The trainers read the suggestion's JSON: numbers as numbers, Katib's strings as strings.
    assert parse_settings({"hidden": 32.0, "temperature": None}, Specs) == parse_settings(
        {"hidden": " 32 ", "temperature": "None"}, Specs)
    for bad in ({"hidden": True}, {"hidden": None}, {"mode": 1}):
        with pytest.raises(InvalidSettings):
            parse_settings(bad, Specs)


def test_none_text_disables_when_allowed() -> None:
    assert parse_settings({"temperature": "None"}, Specs).temperature is None
    with pytest.raises(InvalidSettings):
        parse_settings({"hidden": "None"}, Specs)


@pytest.mark.parametrize(
    ("raw", "setting_name", "fragment"),
    [
        ({"hidden": "0"}, "hidden", "an integer >= 1"),
        ({"hidden": "2.5"}, "hidden", "an integer >= 1"),
        ({"temperature": "-1"}, "temperature", 'a number > 0 or "None"'),
        ({"temperature": "nan"}, "temperature", "a number > 0"),
        ({"mode": "meso"}, "mode", "one of macro, micro"),
        ({"hiden": "3"}, "hiden", "unknown setting; allowed settings: hidden, mode, temperature"),
    ],
)
def test_errors_name_setting_value_and_range(raw: dict[str, str], setting_name: str, fragment: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        parse_settings(raw, Specs)
    assert info.value.setting == setting_name
    assert fragment in str(info.value)
    assert repr(next(iter(raw.values()))) in str(info.value)


def test_a_huge_value_is_echoed_shortened() -> None:
    with pytest.raises(InvalidSettings) as info:
        parse_settings({"hidden": "9" * 100_000}, Specs)
    assert len(str(info.value)) < 1000 and "an integer >= 1" in str(info.value)


def test_allowed_text_follows_the_declared_range() -> None:
    class Ranges(AlgorithmSettings):
        closed: Annotated[Int, setting("", ge=1, le=64)] = 1
        half_open: Annotated[Number, setting("", gt=0, le=1)] = 1.0
        below: Annotated[Number, setting("", lt=1, note="a fraction")] = 0.5
        spelled: Annotated[Int, setting("", ge=0, allowed="an integer in [0, 2^63)")] = 0

    fields = Ranges.model_fields
    assert allowed_text(fields["closed"]) == "an integer in [1, 64]"
    assert allowed_text(fields["half_open"]) == "a number in (0, 1]"
    assert allowed_text(fields["below"]) == "a number < 1 (a fraction)"
    assert allowed_text(fields["spelled"]) == "an integer in [0, 2^63)"


def test_cross_setting_check_echoes_what_the_user_wrote() -> None:
    class Pair(AlgorithmSettings):
        low: Annotated[Int, setting("")] = 1
        high: Annotated[Int, setting("")] = 2

        def check(self) -> None:
            if self.low > self.high:
                raise InvalidSettings("low", self.low, f"must be <= high ({self.high})")

    with pytest.raises(InvalidSettings) as info:
        parse_settings({"low": "5.0"}, Pair)
    assert (info.value.setting, info.value.value, info.value.allowed) == ("low", "5.0", "must be <= high (2)")
