"""The metric line parser on hostile lines: linear time, same answers as Katib's regex."""

from __future__ import annotations

import random
import time

import pytest

from kubenas.metrics import _DEFAULT, _default_matches, parse_line


@pytest.mark.parametrize("word", ["x" * 200_000, "ab|-_" * 40_000, "é" * 200_000])
def test_a_long_word_without_equals_is_parsed_in_linear_time(word: str) -> None:
    # Katib's regex with finditer took 2 s for 16,000 characters and grew quadratically.
    start = time.monotonic()
    points = parse_line(f"{word} loss=0.5 {word}", ["loss"])
    assert time.monotonic() - start < 0.5
    assert [(p.name, p.value) for p in points] == [("loss", 0.5)]


@pytest.mark.parametrize("line", ["a=1b=2", "x-y=3|z=4", "loss = 1e-3 acc=.5 acc=-.5e+1", "=1 a==2 |=3", "é=1 e=2"])
def test_matches_are_exactly_katibs(line: str) -> None:
    def spans(matches):  # type: ignore[no-untyped-def]
        return [(m.start(), m.end(), m.groups()) for m in matches]

    assert spans(_default_matches(line)) == spans(_DEFAULT.finditer(line))


def test_matches_are_exactly_katibs_on_random_lines() -> None:
    rnd = random.Random(7)
    alphabet = "ab1-|=. \te+5_é\u00a0"
    for _ in range(20_000):
        line = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))
        assert [m.span() + m.groups() for m in _default_matches(line)] == \
               [m.span() + m.groups() for m in _DEFAULT.finditer(line)], line
