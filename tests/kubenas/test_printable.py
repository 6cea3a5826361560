"""kubenas.printable: what kubenas prints never carries terminal control sequences."""

from __future__ import annotations

import pytest

from kubenas.printable import printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("\r\x1b[2Kloss=1", "\\r\\x1b[2Kloss=1"),
    ("a\nb\tc\x00\x7f\x9b", "a\\nb\\tc\\x00\\x7f\\x9b"),
    ("abc\u202edef", "abc\\u202edef"),  # a bidirectional override would reorder what follows
    ("genotype=Genotype(normal=[('sep_conv_3x3', 0)]) é 日本", "genotype=Genotype(normal=[('sep_conv_3x3', 0)]) é 日本"),
])
def test_control_characters_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_newlines_can_be_kept_for_a_multi_line_message() -> None:
    assert printable("one\x1b[31m\ntwo", keep_newlines=True) == "one\\x1b[31m\ntwo"


def test_unassigned_and_format_characters_are_escaped_too() -> None:
    # A code point this Python does not know, a zero-width space, a line separator.
    assert printable("a\u0378b\u200bc\u2028d") == "a\\u0378b\\u200bc\\u2028d"
    assert printable("a\u0378b").isprintable()
