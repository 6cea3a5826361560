"""Trial template rendering: Katib's `${trialParameters.x}` and `${trialSpec.*}` substitution.

Shared by the local runtime (argv of the primary container) and the Kubernetes runtime
(the whole Job manifest). Substitution is one literal pass over each string: a value that
itself contains `${...}`, quotes, spaces or braces is inserted as-is and never re-read, so
no assignment can inject another placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "META_FIELDS",
    "TemplateError",
    "meta_values",
    "placeholders",
    "remap_path",
    "substitute",
    "trial_parameter_values",
]

# `${trialParameters.<name>}` or `${trialSpec.<Field>}`; anything else (e.g. a shell `${HOME}`)
# is not ours and is left alone, as Katib does.
_PLACEHOLDER = re.compile(r"\$\{(trialParameters|trialSpec)\.([^{}]+)\}")
_META_REF = re.compile(r"^\$\{trialSpec\.([^{}]+)\}$")
_INDEXED = re.compile(r"^(Labels|Annotations)\[(.+)\]$")

#: The trial metadata a template may reference, as in Katib.
META_FIELDS = ("Name", "Namespace", "Kind", "APIVersion", "Labels[<key>]", "Annotations[<key>]")


class TemplateError(ValueError):
    """A placeholder or trialParameter reference that cannot be resolved."""

    def __init__(self, reference: str, allowed: str) -> None:
        self.reference, self.allowed = reference, allowed
        super().__init__(f"trialTemplate: unknown reference {reference!r}: {allowed}")


def meta_values(
    trial_name: str,
    namespace: str,
    kind: str,
    api_version: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The `${trialSpec.<Field>}` values of one trial, keyed by `<Field>` (e.g. `Labels[team]`)."""
    out = {"Name": trial_name, "Namespace": namespace, "Kind": kind, "APIVersion": api_version}
    out.update({f"Labels[{k}]": str(v) for k, v in (labels or {}).items()})
    out.update({f"Annotations[{k}]": str(v) for k, v in (annotations or {}).items()})
    return out


def _meta_lookup(field: str, meta: Mapping[str, str]) -> str:
    if field in meta:
        return meta[field]
    indexed = _INDEXED.match(field)
    if indexed:
        raise TemplateError(f"${{trialSpec.{field}}}", f"the trial has no {indexed.group(1).lower()[:-1]} {indexed.group(2)!r}")
    raise TemplateError(f"${{trialSpec.{field}}}", f"trialSpec fields are {', '.join(META_FIELDS)}")


def trial_parameter_values(
    experiment: Any,
    assignments: Mapping[str, str],
    trial_name: str,
    namespace: str,
    kind: str,
    api_version: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map each trialParameter's name to the value its `reference` points at.

    A reference is a parameter name (looked up in `assignments`) or a Katib metadata
    reference such as `${trialSpec.Name}`. Raises TemplateError naming the reference.
    """
    meta = meta_values(trial_name, namespace, kind, api_version, labels, annotations)
    values: dict[str, str] = {}
    for param in experiment.spec.trial_template.trial_parameters:
        reference = param.reference
        found = _META_REF.match(reference)
        if found:
            values[param.name] = _meta_lookup(found.group(1), meta)
        elif reference in assignments:
            values[param.name] = str(assignments[reference])
        else:
            known = ", ".join(sorted(assignments)) or "none"
            raise TemplateError(
                reference,
                f"trialParameters[{param.name}].reference must name a parameter ({known}) "
                f"or ${{trialSpec.<{'|'.join(META_FIELDS)}>}}",
            )
    return values


def _render(text: str, values: Mapping[str, str], meta: Mapping[str, str] | None) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == "trialParameters":
            if name not in values:
                known = ", ".join(sorted(values)) or "none"
                raise TemplateError(match.group(0), f"trialParameters defined: {known}")
            return values[name]
        if meta is None:
            raise TemplateError(match.group(0), "no trial metadata available here")
        return _meta_lookup(name, meta)

    # re.sub with a function inserts the returned text verbatim (no backslash processing)
    # and never rescans it: exactly one pass.
    return _PLACEHOLDER.sub(replace, text)


def substitute(obj: Any, values: Mapping[str, str], meta: Mapping[str, str] | None = None) -> Any:
    """A new JSON-like structure with every placeholder inside strings (and keys) replaced.

    `values` maps trialParameter names to text (see `trial_parameter_values`); `meta` maps
    trialSpec fields (see `meta_values`) for templates that write `${trialSpec.Name}`
    directly. `obj` is not mutated. Non-string scalars are returned unchanged.
    """
    if isinstance(obj, str):
        return _render(obj, values, meta)
    if isinstance(obj, Mapping):
        return {
            (_render(k, values, meta) if isinstance(k, str) else k): substitute(v, values, meta)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [substitute(item, values, meta) for item in obj]
    return obj


def placeholders(obj: Any) -> set[str]:
    """Every `${trialParameters.x}` / `${trialSpec.X}` placeholder text found in `obj`."""
    found: set[str] = set()
    if isinstance(obj, str):
        found.update(m.group(0) for m in _PLACEHOLDER.finditer(obj))
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            found |= placeholders(k) | placeholders(v)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            found |= placeholders(item)
    return found


def remap_path(obj: Any, path: str, target: str) -> Any:
    """A new JSON-like structure where the absolute `path` (no trailing /), wherever a string
    holds it as a whole path or a path's start (`--checkpoint=/ckpt/`, `/ckpt/model.pt`), reads
    `target` instead: what a volume mounted at `path` looks like to a local process.

    `/ckpt` is not touched inside `/data/ckpt` or `/ckpt2`. `obj` is not mutated.
    """
    pattern = re.compile(r"(?<![^\s=:,;'\"])" + re.escape(path) + r"(?=/|$|[\s:,;'\"])")

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(lambda _m: target, item)
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(obj)
