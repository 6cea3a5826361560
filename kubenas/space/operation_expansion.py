"""A nasConfig's operations numbered as Katib numbers them: one concrete op per value
combination of an operation's parameters. ENAS's op ids index this list."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubenas.space.number_text import number_or_text

if TYPE_CHECKING:
    from kubenas.space.nas import Operation

__all__ = ["ExpandedOp", "expand_operations"]


@dataclass(frozen=True)
class ExpandedOp:
    """One concrete operation: `opt_id` is its index in the expanded list."""

    opt_id: int
    opt_type: str
    opt_params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"opt_id": self.opt_id, "opt_type": self.opt_type, "opt_params": dict(self.opt_params)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExpandedOp:
        params = {k: number_or_text(v) for k, v in dict(data.get("opt_params") or {}).items()}
        return cls(int(data["opt_id"]), str(data["opt_type"]), params)


def expand_operations(operations: Sequence[Operation]) -> list[ExpandedOp]:
    """Number every concrete operation as Katib does.

    Each operation, in order, is expanded over the Cartesian product of its parameters'
    values, first parameter slowest; an operation without parameters yields one op.
    """
    ops: list[ExpandedOp] = []
    for op in operations:
        names = [p.name for p in op.parameters]
        grids = [p.grid_values() for p in op.parameters]
        for combo in itertools.product(*grids):
            params = {n: number_or_text(v) for n, v in zip(names, combo)}
            ops.append(ExpandedOp(len(ops), op.operation_type, params))
    return ops
