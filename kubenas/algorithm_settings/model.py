"""How an algorithm's settings are declared, parsed and described: one pydantic model each.

A setting is a field: `name: Annotated[Int, setting("what it does", ge=1)] = 10`. The
annotation gives the kind (`Int`, `Number`, a `Literal` of choices, a constrained `str`),
`setting(...)` the description, the range (pydantic's ge/gt/le/lt) and, with
`none=KATIB_NONE`, the spellings by which Katib turns the feature off. The model is the
only declaration: the suggestion service parses the wire's strings with it, the trainers
parse the suggestion's JSON (numbers, or strings as Katib's service writes them) with it,
and the docs' settings tables and every error's "allowed" text are derived from it.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo

from kubenas.errors import InvalidValue

# The public names are listed (and re-exported) in the package, kubenas/algorithm_settings/__init__.py.
# Katib's text for "off" (its services compare the string to "None").
KATIB_NONE: tuple[str, ...] = ("None",)


class InvalidSettings(InvalidValue):
    """Settings or search space unusable by this algorithm; becomes INVALID_ARGUMENT."""

    @property
    def setting(self) -> str:
        """The name of the setting (or the search-space path) refused."""
        return self.field


def _number(value: Any) -> float:
    # JSON true/false are not numbers, though Python's bool is an int.
    if isinstance(value, bool):
        raise ValueError("not a number")
    try:
        number = float(value)
    except (TypeError, OverflowError):  # a list, an object; an integer past float's range
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _integer(value: Any) -> int:
    number = _number(value)
    if not number.is_integer():
        raise ValueError("not an integer")
    return int(number)


# Wire text ("3", "3.0", "1e-4") and JSON numbers alike; nan, inf and booleans are refused.
Int = Annotated[int, BeforeValidator(_integer)]
Number = Annotated[float, BeforeValidator(_number)]


def setting(description: str, *, none: tuple[str, ...] = (), allowed: str = "", note: str = "",
            **constraints: Any) -> Any:
    """A setting's description and range (ge/gt/le/lt/pattern), for use inside `Annotated`.

    `none`: the texts (Katib's "None") that turn the setting off; JSON null then does too.
    `allowed` replaces the range text derived from the annotation; `note` is appended to it.
    """
    extra: JsonDict = {"katib_none": list(none), "allowed": allowed, "note": note}
    return Field(description=description, json_schema_extra=extra, **constraints)


class AlgorithmSettings(BaseModel):
    """Base of every algorithm's settings: frozen, unknown names refused, values typed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def check(self) -> None:
        """Rules between settings; raise InvalidSettings naming the setting to change."""


S = TypeVar("S", bound=AlgorithmSettings)


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def none_spellings(info: FieldInfo) -> tuple[str, ...]:
    """The texts that turn this setting off (empty: it cannot be turned off)."""
    return tuple(_extra(info).get("katib_none") or ())  # type: ignore[arg-type]


def _bare(annotation: Any) -> Any:
    """The annotation without `| None` and without `Annotated` wrappers."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else annotation
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range_text(kind: str, metadata: list[Any]) -> str:
    low = high = ""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"[{_bound(item.ge)}"  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Gt):
            low = f"({_bound(item.gt)}"  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Le):
            high = f"{_bound(item.le)}]"  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Lt):
            high = f"{_bound(item.lt)})"  # type: ignore[arg-type]
    if low and high:
        return f"{kind} in {low}, {high}"
    if low:
        return f"{kind} {'>=' if low[0] == '[' else '>'} {low[1:]}"
    if high:
        return f"{kind} {'<=' if high[-1] == ']' else '<'} {high[:-1]}"
    return kind


def allowed_text(info: FieldInfo) -> str:
    """What a setting accepts, in words: `an integer in [1, 64]`, `one of macro, micro`, `... or "None"`."""
    extra = _extra(info)
    text = str(extra.get("allowed") or "")
    if not text:
        bare = _bare(info.annotation)
        if get_origin(bare) is Literal:
            text = "one of " + ", ".join(str(c) for c in get_args(bare))
        elif bare is int:
            text = _range_text("an integer", info.metadata)
        elif bare is float:
            text = _range_text("a number", info.metadata)
        else:
            text = "a string"
    if extra.get("note"):
        text += f" ({extra['note']})"
    return text + (' or "None"' if none_spellings(info) else "")


def parse_settings(raw: Mapping[str, Any], model: type[S]) -> S:
    """Every setting of `model` resolved (defaults filled in) from wire text or JSON values.

    Raises InvalidSettings naming the setting, the value as given and what is allowed:
    unknown names first, then values in declaration order, then the model's `check`.
    """
    fields = model.model_fields
    for name, value in raw.items():
        if name not in fields:
            raise InvalidSettings(name, value, f"unknown setting; allowed settings: {', '.join(sorted(fields))}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        info = fields[name]
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str) and text in none_spellings(info):
            text = None
        # JSON null means "off" where Katib's "None" does, and "unset" where that is the default.
        elif text is None and not none_spellings(info) and info.default is not None:
            raise InvalidSettings(name, value, f"must be {allowed_text(info)}")
        values[name] = text
    try:
        settings = model.model_validate(values)
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        raise InvalidSettings(name, raw[name], f"must be {allowed_text(fields[name])}") from None
    try:
        settings.check()
    except InvalidSettings as exc:
        # Echo what the user wrote ("0.1"), not the parsed number, when they wrote it.
        if exc.setting in raw:
            raise InvalidSettings(exc.setting, raw[exc.setting], exc.allowed) from None
        raise
    return settings
