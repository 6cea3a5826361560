"""Cell primitive names (DARTS, ENAS micro, NAS-Bench-201) from a nasConfig's operations."""

from __future__ import annotations

from collections.abc import Sequence

from kubenas.space.errors import SpaceError
from kubenas.space.nas import Operation

__all__ = ["primitive_names"]


def primitive_names(operations: Sequence[Operation]) -> list[str]:
    """Cell primitives (DARTS, ENAS micro) named from a nasConfig, in YAML order.

    An operation without parameters keeps its type (`skip_connection`); otherwise one
    primitive `<operationType>_<k>x<k>` per value k of its first parameter, as Katib's DARTS
    service names them. `reduction` ops name their pooling instead
    (`max_pooling_3x3`), one per reduction_type x pool_size. Duplicates are dropped.
    """
    names: list[str] = []
    for op in operations:
        for name in _candidates(op):
            if name not in names:
                names.append(name)
    return names


def _candidates(op: Operation) -> list[str]:
    if not op.parameters:
        return [op.operation_type]
    if op.operation_type == "reduction":
        by_name = {p.name: p for p in op.parameters}
        kinds = by_name.get("reduction_type")
        sizes = by_name.get("pool_size")
        if kinds is None or sizes is None:
            raise SpaceError(f"operations[{op.operation_type}].parameters", sorted(by_name),
                             "a reduction needs reduction_type and pool_size")
        return [f"{kind}_{k}x{k}" for kind in kinds.grid_values() for k in sizes.grid_values()]
    return [f"{op.operation_type}_{k}x{k}" for k in op.parameters[0].grid_values()]
