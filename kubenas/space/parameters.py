"""One search parameter (`spec.parameters[i]`, or an operation's parameter): its type, its
feasible space, the checks on it, and the values a grid over it takes.

The same class is the YAML model (camelCase aliases, `Experiment.spec.parameters`) and
the domain object the algorithms read; bounds stay text as Katib keeps them, and
`low`/`high`/`step` give them as numbers.
"""

from __future__ import annotations

import math
from enum import Enum

from pydantic import Field

from kubenas.space.errors import SpaceError
from kubenas.space.number_text import parse_number
from kubenas.spec_model import SpecModel, Text

__all__ = ["MAX_DOUBLE_GRID", "Distribution", "FeasibleSpace", "ParameterSpec", "ParameterType"]

# Grid points a stepped double may have (floats stop being distinct past 2**53).
MAX_DOUBLE_GRID = 2**53


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


_LISTED = (ParameterType.DISCRETE, ParameterType.CATEGORICAL)


class FeasibleSpace(SpecModel):
    min: Text | None = None
    max: Text | None = None
    list: tuple[Text, ...] = ()
    step: Text | None = None
    distribution: Distribution | None = None


class ParameterSpec(SpecModel):
    name: str
    type: ParameterType = Field(alias="parameterType")
    feasible: FeasibleSpace = Field(alias="feasibleSpace")

    def normalized(self) -> ParameterSpec:
        """This parameter as a search uses it: newer Katib defaults every parameter to
        `uniform`, list types too, where it means nothing; there it is dropped."""
        if self.type in _LISTED and self.feasible.distribution is Distribution.UNIFORM:
            return self.model_copy(update={"feasible": self.feasible.model_copy(update={"distribution": None})})
        return self

    def check(self, where: str = "") -> None:
        """Raise SpaceError unless the feasible space is well-formed (Katib's rules plus ours)."""
        if self.type in _LISTED:
            self._check_list(f"{where}feasibleSpace")
        else:
            self._check_range(f"{where}feasibleSpace")

    def _check_range(self, base: str) -> None:
        fs, kind = self.feasible, self.type.value
        if fs.list:
            raise SpaceError(f"{base}.list", list(fs.list), f"must be empty for parameterType {kind}")
        for key in ("min", "max"):
            if getattr(fs, key) in (None, ""):
                raise SpaceError(f"{base}.{key}", None, f"required for parameterType {kind}")
        lo, hi = self._bound("min", base), self._bound("max", base)
        if lo > hi:
            raise SpaceError(f"{base}.max", fs.max, f"must be >= min ({fs.min})")
        if fs.step not in (None, ""):
            self._check_step(base, lo, hi)
        if fs.distribution in (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL) and lo <= 0:
            raise SpaceError(f"{base}.min", fs.min, f"must be > 0 for distribution {fs.distribution.value}")

    def _check_step(self, base: str, lo: int | float, hi: int | float) -> None:
        text = self.feasible.step or ""
        step = self._number(text, f"{base}.step")
        if step <= 0:
            raise SpaceError(f"{base}.step", text, "must be > 0")
        if self.type is ParameterType.INT and not isinstance(step, int):
            raise SpaceError(f"{base}.step", text, "must be an integer for parameterType int")
        # A double grid is indexed with floats: past 2**53 points (or an overflowing
        # span) its values are no longer distinct, and counting them overflows.
        span = float(hi) / 2 - float(lo) / 2
        if self.type is ParameterType.DOUBLE and not span / float(step) <= MAX_DOUBLE_GRID / 2:
            raise SpaceError(f"{base}.step", text,
                             f"too small: (max - min) / step must be at most {MAX_DOUBLE_GRID} (2**53)")

    def _check_list(self, base: str) -> None:
        fs, kind = self.feasible, self.type.value
        for key in ("min", "max", "step"):
            if getattr(fs, key) not in (None, ""):
                raise SpaceError(f"{base}.{key}", getattr(fs, key), f"must be empty for parameterType {kind}; use list")
        if not fs.list:
            raise SpaceError(f"{base}.list", [], f"must be non-empty for parameterType {kind}")
        if len(set(fs.list)) != len(fs.list):
            raise SpaceError(f"{base}.list", list(fs.list), "values must be unique")
        if self.type is ParameterType.DISCRETE:
            for i, v in enumerate(fs.list):
                self._number(v, f"{base}.list[{i}]")
        if fs.distribution is not None:
            raise SpaceError(f"{base}.distribution", fs.distribution.value, f"not allowed for parameterType {kind}")

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

    def value_count(self) -> int:
        """How many values a grid over this (checked) parameter has, without listing them."""
        if self.type in _LISTED:
            return len(self.feasible.list)
        step = self.step
        if self.type is ParameterType.INT:
            return (int(self.high) - int(self.low)) // int(step or 1) + 1
        return math.floor((float(self.high) / 2 - float(self.low) / 2) / float(step or 1) * 2 + 1e-9) + 1

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
        return _double_grid(float(self.low), float(self.high), step)

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


def _double_grid(lo: float, hi: float, step: float) -> list[int | float | str]:
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
