"""The choice-vector view of a NAS space: every architecture is a tuple of small integers.

An encoding lists its `choices` in a fixed order; a vector holds one index per choice
(`0 <= vector[i] < choices[i].size`). Algorithms search over vectors (mutate one choice,
one-hot encode them, ask a sampler for each) and the encoding turns a vector into the
wire assignments (`architecture`, `nn_config`) and a past trial's assignments back into
a vector. Encodings are immutable and cheap to build once per call.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, ClassVar

from kubenas.space import NasConfig, SpaceError

__all__ = ["ARCHITECTURE", "CHOICE_KINDS", "NN_CONFIG", "Choice", "NasEncoding", "Vector", "as_vector", "compact"]

ARCHITECTURE = "architecture"
NN_CONFIG = "nn_config"

# "op": which operation/primitive; "input": which earlier node feeds an edge; "skip": a
# 0/1 skip connection. Evolution mutates an op or the wiring (input/skip) by this kind.
CHOICE_KINDS = ("op", "input", "skip")

Vector = tuple[int, ...]


@dataclass(frozen=True)
class Choice:
    """One decision of an architecture: `size` alternatives of one `kind`."""

    name: str
    size: int
    kind: str


def as_vector(values: Sequence[Any]) -> Vector:
    """`values` as a tuple of Python ints; SpaceError for anything not integral."""
    out: list[int] = []
    for i, value in enumerate(values):
        try:
            number = int(value)
            ok = number == value and not isinstance(value, (bool, str))
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise SpaceError(f"vector[{i}]", value, "choice indices are integers")
        out.append(number)
    return tuple(out)


def compact(text: str) -> str:
    """`text` without whitespace (Katib prints lists with spaces, JSON writers vary)."""
    # Dropping spaces is one C-level pass, 2-3x faster than split/join over a genotype,
    # and this runs for every trial of the history on every random/grid call.
    out = text.replace(" ", "")
    return out if "\n" not in out and "\t" not in out and "\r" not in out else "".join(out.split())


class NasEncoding(ABC):
    """One search mode's choices and codec for one nasConfig (immutable)."""

    mode: ClassVar[str]

    def __init__(self, nas: NasConfig) -> None:
        self.nas = nas

    @cached_property
    def choices(self) -> tuple[Choice, ...]:
        """Every decision, in vector order (built on first use: a 1,000-layer macro space has
        half a million)."""
        return tuple(self.build_choices())

    @abstractmethod
    def build_choices(self) -> Iterable[Choice]:
        """The choices in vector order (called once, by `choices`)."""

    @property
    def size(self) -> int:
        """How many distinct vectors (architectures) the space has."""
        return math.prod(c.size for c in self.choices)

    @abstractmethod
    def architecture(self, vector: Sequence[int]) -> str:
        """The `architecture` assignment text of a vector."""

    @abstractmethod
    def nn_config(self, vector: Sequence[int]) -> dict[str, Any]:
        """The `nn_config` assignment of a vector, as a JSON-ready dict."""

    @abstractmethod
    def decode(self, assignments: Mapping[str, str]) -> Vector:
        """A trial's vector; raises ValueError (SpaceError, GenotypeError) when it does not fit."""

    def encode(self, vector: Sequence[int]) -> dict[str, str]:
        """Wire assignments for one vector; ValueError if the vector is not in the space.

        Any integral numbers are accepted (numpy integers included).
        """
        vector = as_vector(vector)
        self.check_vector(vector)
        return {ARCHITECTURE: self.architecture(vector), NN_CONFIG: json.dumps(self.nn_config(vector))}

    def check_vector(self, vector: Sequence[int]) -> None:
        """SpaceError unless `vector` has one in-range index per choice."""
        if len(vector) != len(self.choices):
            raise SpaceError("vector", list(vector), f"must hold {len(self.choices)} choices ({self.mode} encoding)")
        for value, choice in zip(vector, self.choices):
            if not 0 <= value < choice.size:
                raise SpaceError(choice.name, value, f"must be an integer in [0, {choice.size - 1}]")

    def random_vector(self, rng: random.Random) -> Vector:
        """A uniform draw: one `rng.randrange(size)` per choice, in choice order."""
        return tuple([rng.randrange(c.size) for c in self.choices])

    def key(self, vector: Sequence[int]) -> Hashable:
        """Identity of an architecture: its `architecture` text (outer whitespace stripped).

        Our writers are canonical, so equal architectures have equal text; macro overrides
        this to ignore all whitespace, as Katib prints its lists with spaces.
        """
        return self.architecture(vector).strip()

    def assignments_key(self, assignments: Mapping[str, str]) -> Hashable | None:
        """`key` of a trial's point read straight from its text (None without one).

        Equal to `key(decode(assignments))` for the text this encoding writes, without
        parsing: random and grid call it for every trial of the history on every call.
        `strip` returns the same string object when there is nothing to strip, so its hash,
        cached on the history's strings, is not recomputed call after call.
        """
        text = assignments.get(ARCHITECTURE)
        return None if text is None else text.strip()

    def points(self) -> Iterator[tuple[Hashable, Vector]]:
        """Every vector with its key, first choice slowest and each choice counting up."""
        for key, vector in self.lazy_points():
            yield key, vector()

    def lazy_points(self) -> Iterator[tuple[Hashable, Callable[[], Vector]]]:
        """`points()` with each vector built on demand: a grid call skips (by key) every
        point tried before, so only the keys of those are worth computing."""
        for vector in itertools.product(*(range(c.size) for c in self.choices)):
            yield self.key(vector), partial(tuple, vector)

    def fingerprint(self) -> dict[str, Any]:
        """What state learned over this space depends on (mode and choices)."""
        return {"mode": self.mode, "choices": [[c.name, c.size, c.kind] for c in self.choices]}
