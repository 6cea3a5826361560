"""What ENAS demands of a search space beyond `NasConfig.check`.

The op list is enumerated in full (one embedding row per op), so its size is counted
before expanding; Katib's operation types must carry the parameters Katib's trainers read.
"""

from __future__ import annotations

import math

from kubenas.space import NasConfig, Operation, ParameterSpec, ParameterType, SpaceError
from suggestion.algorithms.base import InvalidSettings, Problem

__all__ = ["MAX_OPERATIONS", "REQUIRED_PARAMETERS", "checked_nas_config", "count_operations"]

# An embedding row and a softmax column per op: 10k ops x 64 hidden is still < 10 MB.
MAX_OPERATIONS = 10_000

# Katib's operation types and the parameters without which they are undefined (stride
# and depth_multiplier are optional and mean 1 when absent). Types not listed here (e.g.
# `skip_connection`) may come without parameters.
REQUIRED_PARAMETERS: dict[str, tuple[str, ...]] = {
    "convolution": ("filter_size", "num_filter"),
    "separable_convolution": ("filter_size", "num_filter"),
    "depthwise_convolution": ("filter_size",),
    "dilated_convolution": ("filter_size",),
    "reduction": ("reduction_type", "pool_size"),
}


def _grid_size(p: ParameterSpec) -> int:
    if p.type in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        return len(p.feasible.list)
    step = p.step if p.step is not None else 1
    return math.floor((float(p.high) - float(p.low)) / float(step) + 1e-9) + 1


def count_operations(operations: tuple[Operation, ...]) -> int:
    """How many ops `expand_operations` would produce, without building them."""
    return sum(math.prod(_grid_size(p) for p in op.parameters) for op in operations)


def checked_nas_config(problem: Problem) -> NasConfig:
    """The problem's nasConfig, or InvalidSettings naming the offending field."""
    nas = problem.space.nas_config
    if nas is None:
        raise InvalidSettings("nasConfig", None, "the enas algorithm needs a nasConfig (graphConfig and operations)")
    try:
        nas.check()
    except SpaceError as err:
        raise InvalidSettings(err.field, err.value, err.allowed) from None
    # Katib's ENAS trainer builds its input and classifier layers from these sizes.
    for key, sizes in (("inputSizes", nas.graph_config.input_sizes), ("outputSizes", nas.graph_config.output_sizes)):
        if not sizes:
            raise InvalidSettings(f"nasConfig.graphConfig.{key}", [], "required by enas: a non-empty list of positive integers")
    for i, op in enumerate(nas.operations):
        names = [p.name for p in op.parameters]
        for j, name in enumerate(names):
            if not name:
                raise InvalidSettings(f"nasConfig.operations[{i}].parameters[{j}].name", name, "must be a non-empty string")
        missing = [n for n in REQUIRED_PARAMETERS.get(op.operation_type, ()) if n not in names]
        if missing:
            raise InvalidSettings(
                f"nasConfig.operations[{i}].parameters",
                names,
                f"operationType {op.operation_type} needs parameters {', '.join(REQUIRED_PARAMETERS[op.operation_type])}",
            )
        if len(set(names)) != len(names):
            raise InvalidSettings(f"nasConfig.operations[{i}].parameters", names, "parameter names must be unique")
    count = count_operations(nas.operations)
    if count > MAX_OPERATIONS:
        raise InvalidSettings("nasConfig.operations", count, f"expand to at most {MAX_OPERATIONS} operations")
    return nas
