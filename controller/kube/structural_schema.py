"""A pydantic model's JSON schema as a Kubernetes structural schema (for a CRD).

The CRDs' Experiment spec is derived from `kubenas.experiment_model.ExperimentSpec` (and the
Trial's and Suggestion's shared parts from the same models), so a field added, renamed,
retyped or made required in the model is the same in the CRD: they cannot drift.

The structural pass: `$ref`s are inlined; `X | None` becomes X (an absent field, not null);
titles, defaults and docstrings go (defaulting is the controller's, as in Katib);
integers are int32 as in Katib's Go types; `dict[str, Any]` becomes an object that keeps
unknown fields; `extra="forbid"` needs nothing (the API server prunes unknown fields of a
structural schema, and kubectl's strict field validation rejects them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["Schema", "structural_schema"]

Schema = dict[str, Any]


def structural_schema(model: type[BaseModel], extras: Mapping[str, Schema] | None = None) -> Schema:
    """The structural schema of `model` (its YAML field names).

    `extras` adds to (or, with a `type`, replaces) the schema at a dotted path of field
    names (`nasConfig.graphConfig.numLayers`; `[]` for list items): what the model cannot
    say (a minimum checked by a later rule, a description, a free-form field the CRD
    spells out).
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    out = _structural(raw, defs)
    for path, extra in (extras or {}).items():
        node = _at(out, path)
        if "type" in extra:
            node.clear()
        node.update(extra)
    return out


def _at(schema: Schema, path: str) -> Schema:
    node = schema
    for part in path.split("."):
        if part.endswith("[]"):
            node = node["properties"][part[:-2]]["items"]
        else:
            node = node["properties"][part]
    return node


def _structural(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Schema:
    if "$ref" in node:
        return _structural(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node:
        present = [n for n in node["anyOf"] if n.get("type") != "null"]
        if len(present) != 1:
            raise ValueError(f"a union has no structural schema: {node['anyOf']}")
        return _structural(present[0], defs)
    kind = node.get("type")
    if kind == "object":
        return _object(node, defs)
    if kind == "array":
        return {"type": "array", "items": _structural(node["items"], defs)}
    if kind == "integer":
        return {"type": "integer", "format": "int32"}
    if kind in ("string", "number", "boolean"):
        return {"type": kind, **({"enum": list(node["enum"])} if "enum" in node else {})}
    raise ValueError(f"no structural schema for {dict(node)}")


def _object(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Schema:
    if "properties" in node:
        out: Schema = {"type": "object", "properties": {k: _structural(v, defs) for k, v in node["properties"].items()}}
        if node.get("required"):
            out["required"] = list(node["required"])
        return out
    values = node.get("additionalProperties", True)
    if values is True or values == {}:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"type": "object", "additionalProperties": _structural(values, defs)}
