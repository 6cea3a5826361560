"""A NAS search space (`spec.nasConfig`): the graph's size and the candidate operations.

As `parameters.py`, each class is both the YAML model and the domain object.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from kubenas.space.errors import SpaceError
from kubenas.space.operation_expansion import ExpandedOp, expand_operations
from kubenas.space.parameters import ParameterSpec, ParameterType
from kubenas.spec_model import Int, SpecModel

__all__ = ["MAX_EXPANDED_OPERATIONS", "MAX_NUM_LAYERS", "GraphConfig", "NasConfig", "Operation"]

# Layers (ENAS) or cells (DARTS) of a nasConfig; Katib's examples have 8 to 20.
MAX_NUM_LAYERS = 1000
# Operations a nasConfig may expand to; Katib's examples have a dozen.
MAX_EXPANDED_OPERATIONS = 10_000


class GraphConfig(SpecModel):
    num_layers: Int
    input_sizes: tuple[Int, ...] = ()
    output_sizes: tuple[Int, ...] = ()


class Operation(SpecModel):
    operation_type: str
    parameters: tuple[ParameterSpec, ...] = ()


class NasConfig(SpecModel):
    graph_config: GraphConfig
    operations: tuple[Operation, ...] = ()

    def normalized(self) -> NasConfig:
        """Every operation parameter as a search uses it (see `ParameterSpec.normalized`)."""
        ops = tuple(op.model_copy(update={"parameters": tuple(p.normalized() for p in op.parameters)})
                    for op in self.operations)
        return self if ops == self.operations else self.model_copy(update={"operations": ops})

    def check(self, where: str = "nasConfig.") -> None:
        """Raise the first of `problems` (a SpaceError), if any."""
        for problem in self.problems(where):
            raise problem

    def problems(self, where: str = "nasConfig.") -> Iterator[SpaceError]:
        """Every problem, at most one per part: the graph, each operation, their total.

        The spec rules report them all (`kubenas validate`); the services raise the first.
        """
        try:
            self._check_graph(where)
        except SpaceError as exc:
            yield exc
        if not self.operations:
            yield SpaceError(f"{where}operations", [], "must list at least one operation")
        broken: set[int] = set()
        for i, op in enumerate(self.operations):
            try:
                _check_operation(op, f"{where}operations[{i}]")
            except SpaceError as exc:
                broken.add(i)
                yield exc
        yield from self._expansion_problems(where, broken)

    def _expansion_problems(self, where: str, broken: set[int]) -> Iterator[SpaceError]:
        # Counted, not built: an int parameter over 1..10**8 would otherwise be expanded
        # into a hundred million operations by the first suggestion.
        counts = {i: math.prod(p.value_count() for p in op.parameters)
                  for i, op in enumerate(self.operations) if i not in broken}
        too_many = [(i, count) for i, count in counts.items() if count > MAX_EXPANDED_OPERATIONS]
        for i, count in too_many:
            yield SpaceError(f"{where}operations[{i}]", f"{count} operations once expanded",
                             f"at most {MAX_EXPANDED_OPERATIONS}: an operation is expanded over the product of "
                             "its parameters' values; narrow their ranges or raise their step")
        if not broken and not too_many and sum(counts.values()) > MAX_EXPANDED_OPERATIONS:
            yield SpaceError(f"{where}operations", f"{sum(counts.values())} operations once expanded",
                             f"at most {MAX_EXPANDED_OPERATIONS}: each operation is expanded over the product of its "
                             "parameters' values; narrow their ranges or raise their step")

    def _check_graph(self, where: str) -> None:
        gc = self.graph_config
        if not 1 <= gc.num_layers <= MAX_NUM_LAYERS:
            # An ENAS architecture has numLayers**2 / 2 skip bits: 100,000 layers would be a
            # 10 GB assignment, built before anything could refuse it.
            raise SpaceError(f"{where}graphConfig.numLayers", gc.num_layers,
                             f"must be an integer in [1, {MAX_NUM_LAYERS}]")
        # Sizes are optional here: Katib's DARTS examples omit them (the trainer's dataset
        # fixes them); algorithms that need them (ENAS) require them in their validate().
        if any(s < 1 for s in gc.input_sizes):
            raise SpaceError(f"{where}graphConfig.inputSizes", list(gc.input_sizes), "must be a list of positive integers")
        if any(s < 1 for s in gc.output_sizes):
            raise SpaceError(f"{where}graphConfig.outputSizes", list(gc.output_sizes), "must be a list of positive integers")

    def expanded(self) -> list[ExpandedOp]:
        return expand_operations(self.operations)


def _check_operation(op: Operation, where: str) -> None:
    if not op.operation_type:
        raise SpaceError(f"{where}.operationType", op.operation_type, "must be a non-empty string")
    for j, p in enumerate(op.parameters):
        p.check(f"{where}.parameters[{j}].")
        if p.type is ParameterType.DOUBLE and p.step is None:
            raise SpaceError(f"{where}.parameters[{j}].feasibleSpace.step", None,
                             "required for a double operation parameter (operations are enumerated)")
