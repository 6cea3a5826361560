"""The registry helper every registry uses: order kept, duplicates refused, unknown names listed."""

from __future__ import annotations

import pytest

from kubenas.registry import DuplicateName, Registry, UnknownName


def test_entries_read_like_a_dict_in_registration_order() -> None:
    reg = Registry("colour", [("red", 1), ("green", 2), ("blue", 3)])
    assert reg["green"] == 2 and "blue" in reg and "grey" not in reg
    assert list(reg) == reg.names() == ["red", "green", "blue"]
    assert len(reg) == 3 and dict(reg.items()) == {"red": 1, "green": 2, "blue": 3}


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(DuplicateName, match="colour 'red' is registered twice"):
        Registry("colour", [("red", 1), ("red", 2)])
    reg = Registry("colour", [("red", 1)])
    with pytest.raises(DuplicateName):
        reg.register("red", 3)
    assert reg["red"] == 1


def test_an_unknown_name_lists_the_known_ones() -> None:
    reg = Registry("colour", [("red", 1), ("blue", 3)])
    with pytest.raises(UnknownName) as info:
        reg["grey"]
    assert isinstance(info.value, KeyError)
    assert (info.value.kind, info.value.name, info.value.known) == ("colour", "grey", ["blue", "red"])
    assert str(info.value) == "colour 'grey' is not known; available: blue, red"
    assert reg.get("grey") is None


def test_a_registry_may_raise_its_own_subclass() -> None:
    class UnknownColour(UnknownName):
        pass

    with pytest.raises(UnknownColour):
        Registry("colour", [("red", 1)], unknown=UnknownColour)["grey"]
