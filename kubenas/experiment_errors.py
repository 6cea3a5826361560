"""Errors of an Experiment spec: each names its field path, the offending value and what is allowed."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from kubenas.error_text import MAX_ALLOWED_CHARS, MAX_FIELD_CHARS, MAX_VALUE_CHARS, clip, shorten

__all__ = ["MAX_VALUE_CHARS", "FieldError", "SpecError", "field_errors"]


# A megabyte-long name must not become a megabyte-long error line; the start identifies it.
MAX_PATH_CHARS = MAX_FIELD_CHARS


@dataclass(frozen=True)
class FieldError:
    """One problem in an Experiment.

    `path` is where it is, in the YAML's own names (`spec.parameters[1].feasibleSpace.max`),
    `value` what was found there (None when the field is missing), `allowed` what would be accepted.
    """

    path: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"{clip(self.path, MAX_PATH_CHARS)}: {shorten(self.value)} — {clip(self.allowed, MAX_ALLOWED_CHARS)}"

    def under(self, prefix: str) -> FieldError:
        """The same error with `prefix` put in front of its path (`spec.` + `parameters[0]...`)."""
        return FieldError(f"{prefix}{self.path}", self.value, self.allowed)


class SpecError(ValueError):
    """An Experiment that cannot be used; `errors` holds every problem found, in document order."""

    def __init__(self, errors: Sequence[FieldError], source: str | None = None) -> None:
        self.errors: list[FieldError] = list(errors)
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One human-readable line per error (`<path>: <value> — <allowed>`)."""
        return [str(e) for e in self.errors]

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.errors]

    @classmethod
    def single(cls, path: str, value: Any, allowed: str, source: str | None = None) -> SpecError:
        return cls([FieldError(path, value, allowed)], source)

    @classmethod
    def collect(cls, errors: Iterable[FieldError], source: str | None = None) -> SpecError | None:
        found = list(errors)
        return cls(found, source) if found else None


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_errors(exc: ValidationError, root: type[BaseModel], index: Sequence[int] = ()) -> list[FieldError]:
    """A pydantic ValidationError as FieldErrors with YAML paths.

    `root` is the model validated (to list the fields allowed where an unknown one was
    found); `index` maps spec.parameters positions to document positions when broken
    parameters were dropped before validating.
    """
    errors = []
    for err in exc.errors():
        loc = err["loc"]
        if loc[:2] == ("spec", "parameters") and len(loc) >= 3 and isinstance(loc[2], int) and loc[2] < len(index):
            loc = (*loc[:2], index[loc[2]], *loc[3:])
        kind = err["type"]
        value = err.get("input")
        if kind == "missing":
            value, allowed = None, "required"
        elif kind == "extra_forbidden":
            known = _known_fields(root, loc[:-1])
            allowed = "unknown field" + (f"; allowed here: {', '.join(known)}" if known else "")
        elif kind == "enum":
            allowed = f"must be one of {err.get('ctx', {}).get('expected', '')}"
        elif kind == "value_error":
            allowed = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            allowed = err["msg"][0].lower() + err["msg"][1:]
        errors.append(FieldError(_path(loc), value, allowed))
    return errors


def _known_fields(root: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The field names a model at `loc` accepts, to suggest the right spelling of a typo."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
        if model is None:
            return []
    return sorted((f.alias or n) for n, f in model.model_fields.items())


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
