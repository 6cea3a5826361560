"""The base of every typed piece of a Katib spec (pydantic v2), and its scalar types.

Field names are the YAML's camelCase names (aliases) and also accepted in snake_case;
unknown fields are errors; instances are frozen. Positional arguments fill the fields in
order, so a small value (`GraphConfig(8, (32, 32, 3), (10,))`) reads like a dataclass in
tests and scripts; type checkers see pydantic's keyword-only signature, so checked code
passes keywords.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict
from pydantic.alias_generators import to_camel

__all__ = ["Float", "Int", "SpecModel", "Text"]


def _as_text(value: Any) -> Any:
    """Katib writes numbers as strings ("0.01"); YAML numbers are taken as their text."""
    if isinstance(value, bool):
        # YAML 1.1 reads yes/no/on/off/true/false as booleans; the user almost surely meant text.
        # ValueError, not TypeError: pydantic turns only ValueError into a field error.
        raise ValueError("a YAML boolean is ambiguous here; quote the value (e.g. \"true\")")
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return value


Text = Annotated[str, BeforeValidator(_as_text)]
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]


class SpecModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, use_enum_values=False
    )

    def __init__(self, *args: Any, **data: Any) -> None:
        if args:
            names = list(type(self).model_fields)
            if len(args) > len(names):
                raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments ({len(args)} given)")
            for name, value in zip(names, args):
                if name in data:
                    raise TypeError(f"{type(self).__name__} got two values for {name!r}")
                data[name] = value
        super().__init__(**data)
