"""Cell genotypes (DARTS, ENAS micro): one codec for JSON and Katib's printed form.

A genotype lists, for the normal and the reduction cell, two `(primitive, input)` edges
per intermediate node; inputs 0 and 1 are the two previous cells' outputs, input k>=2 is
node k-2. `*_concat` are the node indices concatenated into the cell output.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubenas.errors import InvalidValue

__all__ = ["GENOTYPE_LINE", "Genotype", "GenotypeError"]

# Katib reads the trainer's result with this metricsFormat regex.
GENOTYPE_LINE = re.compile(r"([\w-]+)=(Genotype.*)")

Edge = tuple[str, int]


class GenotypeError(InvalidValue):
    """A genotype that cannot describe a cell (DARTS, NAS-Bench-201)."""


def _edges(raw: Any, field: str) -> tuple[Edge, ...]:
    if not isinstance(raw, (list, tuple)) or len(raw) % 2 or not raw:
        raise GenotypeError(field, raw, "must be a non-empty list of [primitive, input] pairs, two per node")
    edges: list[Edge] = []
    for i, edge in enumerate(raw):
        if (
            not isinstance(edge, (list, tuple))
            or len(edge) != 2
            or not isinstance(edge[0], str)
            or not isinstance(edge[1], int)
            or isinstance(edge[1], bool)
        ):
            raise GenotypeError(f"{field}[{i}]", edge, "must be a [primitive name, input index] pair")
        node = i // 2
        if not 0 <= edge[1] < node + 2:
            raise GenotypeError(f"{field}[{i}]", list(edge), f"input of node {node} must be in [0, {node + 1}]")
        edges.append((edge[0], edge[1]))
    return tuple(edges)


def _concat(raw: Any, field: str, num_nodes: int) -> tuple[int, ...]:
    if isinstance(raw, range):
        raw = list(raw)
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(x, int) for x in raw):
        raise GenotypeError(field, raw, "must be a non-empty list of node indices")
    if any(not 2 <= x < num_nodes + 2 for x in raw):
        raise GenotypeError(field, list(raw), f"indices must be in [2, {num_nodes + 1}]")
    return tuple(raw)


@dataclass(frozen=True)
class Genotype:
    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    @property
    def num_nodes(self) -> int:
        return len(self.normal) // 2

    @classmethod
    def build(cls, normal: Sequence[Edge], reduce: Sequence[Edge], concat: Sequence[int] | None = None) -> Genotype:
        data: dict[str, Any] = {"normal": [list(e) for e in normal], "reduce": [list(e) for e in reduce]}
        if concat is not None:
            data["normal_concat"] = list(concat)
            data["reduce_concat"] = list(concat)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genotype:
        if not isinstance(data, Mapping):
            raise GenotypeError("genotype", data, "must be a JSON object with normal/reduce edge lists")
        normal = _edges(data.get("normal"), "normal")
        reduce = _edges(data.get("reduce"), "reduce")
        if len(normal) != len(reduce):
            raise GenotypeError("reduce", data.get("reduce"), f"must have as many nodes as normal ({len(normal) // 2})")
        n = len(normal) // 2
        default = list(range(2, n + 2))
        return cls(
            normal,
            _concat(data.get("normal_concat", default), "normal_concat", n),
            reduce,
            _concat(data.get("reduce_concat", default), "reduce_concat", n),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            try:
                data = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise GenotypeError("genotype", text, "must be a JSON genotype object") from None
        return cls.from_dict(data)

    @property
    def primitives(self) -> set[str]:
        return {p for p, _ in self.normal + self.reduce}

    def to_katib(self) -> str:
        """Katib's printed form, one whitespace-free token: Genotype(normal=[...],...)."""

        def edges(es: tuple[Edge, ...]) -> str:
            return "[" + ",".join(f"({p!r},{i})" for p, i in es) + "]"

        def concat(c: tuple[int, ...]) -> str:
            if list(c) == list(range(c[0], c[0] + len(c))):
                return f"range({c[0]},{c[0] + len(c)})"
            return "[" + ",".join(map(str, c)) + "]"

        return (
            f"Genotype(normal={edges(self.normal)},normal_concat={concat(self.normal_concat)},"
            f"reduce={edges(self.reduce)},reduce_concat={concat(self.reduce_concat)})"
        )

    @classmethod
    def parse_katib(cls, text: str) -> Genotype:
        """Inverse of `to_katib`; also accepts Katib's namedtuple repr with spaces."""
        text = text.strip()
        match = re.fullmatch(r"Genotype\((.*)\)", text, re.DOTALL)
        if not match:
            raise GenotypeError("genotype", text, "must look like Genotype(normal=[...],normal_concat=...,reduce=[...],reduce_concat=...)")
        body = re.sub(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)", lambda m: str(list(range(int(m[1]), int(m[2])))), match[1])
        unreadable = GenotypeError("genotype", text, "is not a readable Genotype(...) expression")
        try:
            call = ast.parse(f"dict({body})", mode="eval").body
            if not isinstance(call, ast.Call) or call.args:
                raise unreadable
            data = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg is not None}
        except (SyntaxError, ValueError):
            raise unreadable from None
        return cls.from_dict(data)
