"""Search spaces: HPO parameters, NAS `nasConfig`, and the ENAS macro encoding.

Everything here is plain data (frozen dataclasses, numbers stored as numbers) shared by
the suggestion side and the trainer side. YAML/proto parsing lives in `experiment.py` and
the gRPC servicer; this module only knows the domain.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from kubenas.error_text import invalid_value

__all__ = [
    "MAX_DOUBLE_GRID",
    "MAX_EXPANDED_OPERATIONS",
    "MAX_NUM_LAYERS",
    "Distribution",
    "ExpandedOp",
    "FeasibleSpace",
    "GraphConfig",
    "MacroArchitecture",
    "NasConfig",
    "Operation",
    "ParameterSpec",
    "ParameterType",
    "SearchSpace",
    "SpaceError",
    "expand_operations",
    "format_value",
    "loads_lenient",
    "nn_config",
    "parse_number",
    "primitive_names",
]

# Grid points a stepped double may have (floats stop being distinct past 2**53).
MAX_DOUBLE_GRID = 2**53
# Layers (ENAS) or cells (DARTS) of a nasConfig; Katib's examples have 8 to 20.
MAX_NUM_LAYERS = 1000
# Operations a nasConfig may expand to; Katib's examples have a dozen.
MAX_EXPANDED_OPERATIONS = 10_000


class SpaceError(ValueError):
    """A search space (or a value checked against it) is malformed.

    `field` is a dotted path relative to the space (e.g. `parameters[1].feasibleSpace.max`).
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(invalid_value(field, value, allowed))


class ParameterType(str, Enum):
    DOUBLE = "double"
    INT = "int"
    DISCRETE = "discrete"
    CATEGORICAL = "categorical"


class Distribution(str, Enum):
    UNIFORM = "uniform"
    LOG_UNIFORM = "logUniform"
    NORMAL = "normal"
    LOG_NORMAL = "logNormal"


def parse_number(text: str) -> int | float:
    """Parse '3' -> 3, '0.5' -> 0.5; raises ValueError for anything else (incl. nan/inf).

    An integer must fit a float too (|n| <= 1.8e308): ranges, grids and samplers do float
    arithmetic on every bound, and a 400-digit one would overflow there.
    """
    s = str(text).strip()
    try:
        number = int(s)
    except ValueError:
        pass
    else:
        if not -sys.float_info.max <= number <= sys.float_info.max:
            raise ValueError(f"not a finite number: {s[:20]}... ({len(s)} characters)")
        return number
    value = float(s)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def format_value(value: Any) -> str:
    """Canonical wire text for an assignment value (ints without '.0', floats repr)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return repr(value)
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class FeasibleSpace:
    min: str | None = None
    max: str | None = None
    list: tuple[str, ...] = ()
    step: str | None = None
    distribution: Distribution | None = None


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: ParameterType
    feasible: FeasibleSpace

    def check(self, where: str = "") -> None:
        """Raise SpaceError unless the feasible space is well-formed (Katib's rules plus ours)."""
        fs = self.feasible
        base = f"{where}feasibleSpace"
        if self.type in (ParameterType.INT, ParameterType.DOUBLE):
            if fs.list:
                raise SpaceError(f"{base}.list", list(fs.list), f"must be empty for parameterType {self.type.value}")
            for key in ("min", "max"):
                if getattr(fs, key) in (None, ""):
                    raise SpaceError(f"{base}.{key}", None, f"required for parameterType {self.type.value}")
            lo, hi = self._bound("min", base), self._bound("max", base)
            if lo > hi:
                raise SpaceError(f"{base}.max", fs.max, f"must be >= min ({fs.min})")
            if fs.step not in (None, ""):
                step = self._number(fs.step, f"{base}.step")
                if step <= 0:
                    raise SpaceError(f"{base}.step", fs.step, "must be > 0")
                if self.type is ParameterType.INT and not isinstance(step, int):
                    raise SpaceError(f"{base}.step", fs.step, "must be an integer for parameterType int")
                # A double grid is indexed with floats: past 2**53 points (or an overflowing
                # span) its values are no longer distinct, and counting them overflows.
                span = float(hi) / 2 - float(lo) / 2
                if self.type is ParameterType.DOUBLE and not span / float(step) <= MAX_DOUBLE_GRID / 2:
                    raise SpaceError(f"{base}.step", fs.step,
                                     f"too small: (max - min) / step must be at most {MAX_DOUBLE_GRID} (2**53)")
            if fs.distribution in (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL) and lo <= 0:
                raise SpaceError(f"{base}.min", fs.min, f"must be > 0 for distribution {fs.distribution.value}")
        else:
            for key in ("min", "max", "step"):
                if getattr(fs, key) not in (None, ""):
                    raise SpaceError(f"{base}.{key}", getattr(fs, key), f"must be empty for parameterType {self.type.value}; use list")
            if not fs.list:
                raise SpaceError(f"{base}.list", [], f"must be non-empty for parameterType {self.type.value}")
            if len(set(fs.list)) != len(fs.list):
                raise SpaceError(f"{base}.list", list(fs.list), "values must be unique")
            if self.type is ParameterType.DISCRETE:
                for i, v in enumerate(fs.list):
                    self._number(v, f"{base}.list[{i}]")
            if fs.distribution is not None:
                raise SpaceError(f"{base}.distribution", fs.distribution.value, f"not allowed for parameterType {self.type.value}")

    def _number(self, text: str, where: str) -> int | float:
        try:
            return parse_number(text)
        except ValueError:
            raise SpaceError(where, text, "must be a finite number within ±1.8e308") from None

    def _bound(self, key: str, base: str) -> int | float:
        text = getattr(self.feasible, key)
        value = self._number(text, f"{base}.{key}")
        if self.type is ParameterType.INT and not isinstance(value, int):
            raise SpaceError(f"{base}.{key}", text, "must be an integer for parameterType int")
        return value

    @property
    def low(self) -> int | float:
        return parse_number(self.feasible.min or "")

    @property
    def high(self) -> int | float:
        return parse_number(self.feasible.max or "")

    @property
    def step(self) -> int | float | None:
        s = self.feasible.step
        return None if s in (None, "") else parse_number(s)

    def grid_values(self) -> list[int | float | str]:
        """Every value of a finite grid over this parameter, in order.

        INT steps default to 1; DOUBLE needs a step (raises SpaceError without one).
        DISCRETE values are numbers, CATEGORICAL values stay strings.
        """
        if self.type is ParameterType.CATEGORICAL:
            return list(self.feasible.list)
        if self.type is ParameterType.DISCRETE:
            return [parse_number(v) for v in self.feasible.list]
        step = self.step
        if self.type is ParameterType.INT:
            return list(range(int(self.low), int(self.high) + 1, int(step or 1)))
        if step is None:
            raise SpaceError(f"{self.name}.feasibleSpace.step", None, "a step is required to enumerate a double parameter")
        lo, hi = float(self.low), float(self.high)
        count = math.floor((hi / 2 - lo / 2) / step * 2 + 1e-9) + 1  # halves: hi - lo may overflow
        # Rounding to the step's precision keeps 0.1+0.2-style drift out of the wire text.
        digits = max(0, -math.floor(math.log10(step)) + 6)
        # Near the float limit i * step overflows while the point itself does not; floats
        # past 2**53 are whole numbers, so rounding them changes nothing.
        values: list[int | float | str] = []
        for i in range(count):
            v = lo + i * step
            v = v if math.isfinite(v) else 2 * (lo / 2 + i * (step / 2))
            r = v if abs(v) >= 2**53 else round(v, digits)
            values.append(r if lo <= r <= hi else v)  # a min finer than the step must not round away
        return values

    def contains(self, text: str) -> bool:
        """True if `text` is a value this parameter can take."""
        if self.type is ParameterType.CATEGORICAL:
            return text in self.feasible.list
        try:
            value = parse_number(text)
        except ValueError:
            return False
        if self.type is ParameterType.DISCRETE:
            return any(math.isclose(value, parse_number(v)) for v in self.feasible.list)
        if self.type is ParameterType.INT and not isinstance(value, int):
            return False
        return self.low - 1e-12 <= value <= self.high + 1e-12


@dataclass(frozen=True)
class GraphConfig:
    num_layers: int
    input_sizes: tuple[int, ...]
    output_sizes: tuple[int, ...]


@dataclass(frozen=True)
class Operation:
    operation_type: str
    parameters: tuple[ParameterSpec, ...] = ()


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
        params = {k: _coerce(v) for k, v in dict(data.get("opt_params") or {}).items()}
        return cls(int(data["opt_id"]), str(data["opt_type"]), params)


def _coerce(value: Any) -> Any:
    """Numbers written as text ('3', Katib's categorical values) become numbers."""
    if isinstance(value, str):
        try:
            return parse_number(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class NasConfig:
    graph_config: GraphConfig
    operations: tuple[Operation, ...]

    def check(self, where: str = "nasConfig.") -> None:
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
        if not self.operations:
            raise SpaceError(f"{where}operations", [], "must list at least one operation")
        for i, op in enumerate(self.operations):
            if not op.operation_type:
                raise SpaceError(f"{where}operations[{i}].operationType", op.operation_type, "must be a non-empty string")
            for j, p in enumerate(op.parameters):
                p.check(f"{where}operations[{i}].parameters[{j}].")
                if p.type is ParameterType.DOUBLE and p.step is None:
                    raise SpaceError(f"{where}operations[{i}].parameters[{j}].feasibleSpace.step", None, "required for a double operation parameter (operations are enumerated)")
        # Counted, not built: an int parameter over 1..10**8 would otherwise be expanded
        # into a hundred million operations by the first suggestion.
        counts = [math.prod(_value_count(p) for p in op.parameters) for op in self.operations]
        for i, count in enumerate(counts):
            if count > MAX_EXPANDED_OPERATIONS:
                raise SpaceError(f"{where}operations[{i}]", f"{count} operations once expanded",
                                 f"at most {MAX_EXPANDED_OPERATIONS}: an operation is expanded over the product of "
                                 "its parameters' values; narrow their ranges or raise their step")
        total = sum(counts)
        if total > MAX_EXPANDED_OPERATIONS:
            raise SpaceError(f"{where}operations", f"{total} operations once expanded",
                             f"at most {MAX_EXPANDED_OPERATIONS}: each operation is expanded over the product of its "
                             "parameters' values; narrow their ranges or raise their step")

    def expanded(self) -> list[ExpandedOp]:
        return expand_operations(self.operations)


def _value_count(p: ParameterSpec) -> int:
    """How many values an (already checked) operation parameter takes, without listing them."""
    if p.type in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        return len(p.feasible.list)
    step = p.step
    if p.type is ParameterType.INT:
        return (int(p.high) - int(p.low)) // int(step or 1) + 1
    return math.floor((float(p.high) / 2 - float(p.low) / 2) / float(step or 1) * 2 + 1e-9) + 1


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
            params = {n: _coerce(v) for n, v in zip(names, combo)}
            ops.append(ExpandedOp(len(ops), op.operation_type, params))
    return ops


def primitive_names(operations: Sequence[Operation]) -> list[str]:
    """Cell primitives (DARTS, ENAS micro) named from a nasConfig, in YAML order.

    An operation without parameters keeps its type (`skip_connection`); otherwise one
    primitive `<operationType>_<k>x<k>` per value k of its first parameter, as Katib's DARTS
    service names them. `reduction` ops name their pooling instead
    (`max_pooling_3x3`), one per reduction_type x pool_size. Duplicates are dropped.
    """
    names: list[str] = []
    for op in operations:
        if not op.parameters:
            candidates = [op.operation_type]
        elif op.operation_type == "reduction":
            by_name = {p.name: p for p in op.parameters}
            kinds = by_name.get("reduction_type")
            sizes = by_name.get("pool_size")
            if kinds is None or sizes is None:
                raise SpaceError(f"operations[{op.operation_type}].parameters", sorted(by_name), "a reduction needs reduction_type and pool_size")
            candidates = [f"{kind}_{k}x{k}" for kind in kinds.grid_values() for k in sizes.grid_values()]
        else:
            candidates = [f"{op.operation_type}_{k}x{k}" for k in op.parameters[0].grid_values()]
        for name in candidates:
            if name not in names:
                names.append(name)
    return names


@dataclass(frozen=True)
class SearchSpace:
    """Exactly one of `parameters` (HPO) or `nas_config` (NAS) is set."""

    parameters: tuple[ParameterSpec, ...] = ()
    nas_config: NasConfig | None = None

    @property
    def is_nas(self) -> bool:
        return self.nas_config is not None

    def check(self) -> None:
        if self.nas_config is not None:
            if self.parameters:
                raise SpaceError("parameters", [p.name for p in self.parameters], "exactly one of parameters or nasConfig may be set")
            self.nas_config.check()
            return
        if not self.parameters:
            raise SpaceError("parameters", [], "exactly one of parameters or nasConfig must be set")
        seen: set[str] = set()
        for i, p in enumerate(self.parameters):
            if not p.name:
                raise SpaceError(f"parameters[{i}].name", p.name, "must be a non-empty string")
            if p.name in seen:
                raise SpaceError(f"parameters[{i}].name", p.name, "parameter names must be unique")
            seen.add(p.name)
            p.check(f"parameters[{i}].")


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


def loads_lenient(text: str, what: str = "value") -> Any:
    """Parse JSON, or Katib's Python-literal style with single quotes.

    Raises SpaceError naming `what` when neither parses.
    """
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise SpaceError(what, text, "must be JSON (double or Katib-style single quotes)") from None
