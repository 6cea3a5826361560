"""ENAS's macro architecture and its wire text: the `architecture` and `nn_config`
assignments a macro trial receives."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubenas.space.errors import SpaceError
from kubenas.space.lenient_json import loads_lenient
from kubenas.space.nas import GraphConfig
from kubenas.space.operation_expansion import ExpandedOp

__all__ = ["MacroArchitecture", "nn_config"]


@dataclass(frozen=True)
class MacroArchitecture:
    """ENAS macro architecture: row i is [op_id, skip_0 .. skip_{i-1}]."""

    rows: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != i + 1:
                raise SpaceError(f"architecture[{i}]", list(row), f"row {i} must hold an op id and {i} skip bits")
            if any(b not in (0, 1) for b in row[1:]):
                raise SpaceError(f"architecture[{i}]", list(row), "skip bits must be 0 or 1")
            if row[0] < 0:
                raise SpaceError(f"architecture[{i}][0]", row[0], "op ids are >= 0")

    @property
    def op_ids(self) -> list[int]:
        return [row[0] for row in self.rows]

    def to_json(self) -> str:
        return json.dumps([list(r) for r in self.rows], separators=(", ", ": "))

    @classmethod
    def from_json(cls, text: str) -> MacroArchitecture:
        data = loads_lenient(text, "architecture")
        if not isinstance(data, list) or not all(isinstance(r, list) and r and all(isinstance(x, int) for x in r) for r in data):
            raise SpaceError("architecture", text, "must be a JSON list of [op_id, skip bits...] integer rows")
        return cls(tuple(tuple(r) for r in data))


def nn_config(graph: GraphConfig, ops: Sequence[ExpandedOp], used: Sequence[int]) -> dict[str, Any]:
    """The `nn_config` assignment: graph sizes plus one embedding entry per used op."""
    embedding = {str(i): ops[i].to_json() for i in sorted(set(used))}
    return {
        "num_layers": graph.num_layers,
        "input_sizes": list(graph.input_sizes),
        "output_sizes": list(graph.output_sizes),
        "embedding": embedding,
    }
