"""NAS-Bench-201 encoding: one primitive per edge of the benchmark's 4-node cell.

Choices `edge_<to>_<from>` in the benchmark's string order (see `kubenas.nb201`), each
over the nasConfig's primitives (`kubenas.space.primitive_names`, YAML order; `none`
allowed and meaning "no edge"). `architecture` is the NB201 string.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from kubenas.nb201 import NB201_EDGES, Cell201, valid_primitive_name
from kubenas.space import NasConfig, SpaceError, primitive_names
from suggestion.algorithms.encoding.base import ARCHITECTURE, Choice, NasEncoding, Vector

__all__ = ["Nb201Encoding", "nb201_primitives"]


def nb201_primitives(nas: NasConfig) -> list[str]:
    """The edge primitives of a nasConfig; SpaceError naming the offending field otherwise."""
    names = primitive_names(nas.operations)
    if not names:
        raise SpaceError("operations", [], "search_mode nb201 needs at least one primitive")
    for name in names:
        if not valid_primitive_name(name):
            raise SpaceError("operations", name, "an NB201 primitive name may hold only letters, digits, '_', '.', '-'")
    graph = nas.graph_config
    for key, sizes in (("inputSizes", graph.input_sizes), ("outputSizes", graph.output_sizes)):
        if not sizes:
            raise SpaceError(f"graphConfig.{key}", [], "required by search_mode nb201: a non-empty list of positive integers")
    return names


class Nb201Encoding(NasEncoding):
    """`architecture` = `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`; numLayers = cells per stage."""

    mode = "nb201"

    def __init__(self, nas: NasConfig) -> None:
        super().__init__(nas)
        self.primitives = nb201_primitives(nas)
        self._index = {p: i for i, p in enumerate(self.primitives)}

    def build_choices(self) -> list[Choice]:
        return [Choice(f"edge_{to}_{src}", len(self.primitives), "op") for to, src in NB201_EDGES]

    def cell(self, vector: Sequence[int]) -> Cell201:
        return Cell201(tuple(self.primitives[int(i)] for i in vector))

    def architecture(self, vector: Sequence[int]) -> str:
        return self.cell(vector).to_string()

    def nn_config(self, vector: Sequence[int]) -> dict[str, Any]:
        graph = self.nas.graph_config
        return {
            "num_layers": graph.num_layers,
            "input_sizes": list(graph.input_sizes),
            "output_sizes": list(graph.output_sizes),
            "search_mode": "nb201",
            "primitives": list(self.primitives),
        }

    def decode(self, assignments: Mapping[str, str]) -> Vector:
        if ARCHITECTURE not in assignments:
            raise SpaceError("architecture", None, "the trial has no architecture assignment")
        cell = Cell201.from_string(assignments[ARCHITECTURE])
        vector: list[int] = []
        for op in cell.ops:
            if op not in self._index:
                raise SpaceError("architecture", op, f"primitives are {', '.join(self.primitives)}")
            vector.append(self._index[op])
        return tuple(vector)

    def lazy_points(self) -> Iterator[tuple[Hashable, Callable[[], Vector]]]:
        # Per edge its `op~src` texts, so a point's key is a few joins (grid calls walk past
        # every tried cell).
        per_edge = [[(i, f"{op}~{src}") for i, op in enumerate(self.primitives)] for _to, src in NB201_EDGES]
        for a, b, c, d, e, f in itertools.product(*per_edge):
            key = f"|{a[1]}|+|{b[1]}|{c[1]}|+|{d[1]}|{e[1]}|{f[1]}|"
            yield key, partial(tuple, (a[0], b[0], c[0], d[0], e[0], f[0]))

    def fingerprint(self) -> dict[str, Any]:
        return {"mode": self.mode, "primitives": self.primitives}
