"""The CRDs: committed files match the generator, are valid and structural, and their schemas
accept Katib's examples while rejecting misspelled fields and wrong types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from controller.kube.crd import crds, experiment_spec_schema, render_yaml
from kubenas.experiment import ExperimentSpec

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "manifests" / "base" / "crds"
# Katib's own examples, and ours (anything `kubenas run` takes, `kubectl apply` must take too).
KATIB_EXAMPLES = sorted((ROOT / "tests" / "data" / "katib").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))


def test_committed_crds_are_the_generated_ones() -> None:
    for crd in crds():
        path = CRD_DIR / f"{crd['spec']['names']['plural']}.yaml"
        assert path.read_text() == render_yaml(crd), f"{path} is stale: run python -m controller.kube.crd"


@pytest.mark.parametrize("crd", crds(), ids=lambda c: c["metadata"]["name"])
def test_crd_validates_against_kubernetes_schema(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.30", strict=True)


def _walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("crd", crds(), ids=lambda c: c["metadata"]["name"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    free = []
    for path, node in _walk(version["schema"]["openAPIV3Schema"], ""):
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
            continue
        assert "type" in node, f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            free.append(path)
    # Free-form only where Katib is free-form.
    assert set(free) <= {".status", ".spec.trialTemplate.trialSpec", ".spec.runSpec",
                         ".spec.metricsCollectorSpec.collector.customCollector",
                         ".spec.metricsCollector.collector.customCollector"}, free


def test_names_printer_columns_and_subresources() -> None:
    by_kind = {c["spec"]["names"]["kind"]: c for c in crds()}
    assert {k: c["spec"]["names"]["shortNames"] for k, c in by_kind.items()} == {
        "Experiment": ["exp"], "Suggestion": ["sugg"], "Trial": ["trial"]}
    for crd in by_kind.values():
        assert crd["spec"]["scope"] == "Namespaced"
        assert "kubenas" in crd["spec"]["names"]["categories"]
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in by_kind["Experiment"]["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Condition", "Reason", "Best", "Succeeded", "Running", "Failed", "Age"]


def _validator(kind: str) -> jsonschema.Draft7Validator:
    crd = next(c for c in crds() if c["spec"]["names"]["kind"] == kind)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(_closed(schema))


def _closed(schema: Any) -> Any:
    """The API server prunes/rejects unknown fields of structural schemas (kubectl's field
    validation is Strict by default); jsonschema says the same with additionalProperties false."""
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if schema.get("format") == "int32":
        out.pop("format")
    return out


def test_fixture_experiment_is_accepted(experiment: dict[str, Any]) -> None:
    assert list(_validator("Experiment").iter_errors(experiment)) == []


@pytest.mark.parametrize("path", KATIB_EXAMPLES, ids=lambda p: p.name)
def test_katib_examples_are_accepted(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "Experiment":
            errors = [f"{list(e.path)}: {e.message}" for e in _validator("Experiment").iter_errors(doc)]
            assert errors == [], path


@pytest.mark.parametrize("mutate, where", [
    (lambda s: s.update(maxTrailCount=3), "maxTrailCount"),
    (lambda s: s.update(parallelTrialCount="two"), "parallelTrialCount"),
    (lambda s: s["objective"].update(type="maximise"), "type"),
    (lambda s: s["parameters"][0].update(feasibleSpce={"min": "1"}), "feasibleSpce"),
    (lambda s: s["parameters"][0]["feasibleSpace"].update(min=0.01), "min"),
    (lambda s: s["algorithm"].update(algorithmSetting=[]), "algorithmSetting"),
    (lambda s: s.update(resumePolicy="Sometimes"), "resumePolicy"),
    (lambda s: s["trialTemplate"].update(primaryContainer="x"), "primaryContainer"),
    (lambda s: s.update(parallelTrialCount=0), "parallelTrialCount"),
])
def test_typos_and_wrong_types_are_rejected(experiment: dict[str, Any], mutate: Any, where: str) -> None:
    mutate(experiment["spec"])
    errors = list(_validator("Experiment").iter_errors(experiment))
    assert errors, f"{where} should be rejected"
    assert any(where in e.message or where in [str(p) for p in e.path] for e in errors), [e.message for e in errors]


def test_trial_spec_stays_free_form(experiment: dict[str, Any]) -> None:
    experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["anything"] = {"x": [1, "y"]}
    assert list(_validator("Experiment").iter_errors(experiment)) == []


def test_schema_field_names_match_the_experiment_model() -> None:
    """The CRD and the pydantic model (kubenas.experiment) agree on Experiment.spec field names."""
    model = ExperimentSpec
    aliases = {(f.alias or name) for name, f in model.model_fields.items()}
    assert set(experiment_spec_schema()["properties"]) == aliases


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("cluster-*.yaml")), ids=lambda p: p.name)
def test_cluster_examples_fit_the_crd_and_the_rules(path: Path) -> None:
    from kubenas.experiment import load_experiment_dict

    doc = yaml.safe_load(path.read_text())
    assert list(_validator("Experiment").iter_errors(doc)) == []
    assert load_experiment_dict(doc).name == doc["metadata"]["name"]


def _model_node(annotation: Any) -> dict[str, Any]:
    """What the CRD must say for a model field, read from the Python types (not from pydantic's
    JSON schema, which the CRD generator itself uses): type, enum, properties, required."""
    import enum
    import typing

    from pydantic import BaseModel

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _model_node(args[0])
    if origin in (typing.Union, __import__("types").UnionType):
        present = [a for a in args if a is not type(None)]
        assert len(present) == 1, annotation
        return _model_node(present[0])
    if origin is tuple:
        return {"type": "array", "items": _model_node(args[0])}
    if origin is dict:
        return {"type": "object", "free": args[1] is Any}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        return {"type": "object",
                "properties": {(f.alias or n): _model_node(f.annotation) for n, f in fields.items()},
                "required": sorted((f.alias or n) for n, f in fields.items() if f.is_required())}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"type": "string", "enum": [m.value for m in annotation]}
    kinds = {bool: "boolean", str: "string", int: "integer", float: "number"}
    return {"type": kinds[annotation]}


# Where the CRD spells out what the model keeps free-form (Kubernetes' HTTPGetAction).
SPELLED_OUT = {".metricsCollectorSpec.source.httpGet"}


def _compare(model: dict[str, Any], crd: dict[str, Any], path: str) -> Iterator[str]:
    if model["type"] == "object" and model.get("free"):
        if path not in SPELLED_OUT and not crd.get("x-kubernetes-preserve-unknown-fields"):
            yield f"{path}: free-form in the model, not in the CRD"
        return
    if crd.get("type") != model["type"]:
        yield f"{path}: type {crd.get('type')} in the CRD, {model['type']} in the model"
        return
    if model.get("enum") != crd.get("enum"):
        yield f"{path}: enum {crd.get('enum')} in the CRD, {model.get('enum')} in the model"
    if "items" in model:
        yield from _compare(model["items"], crd["items"], f"{path}[]")
    if "properties" in model:
        if set(model["properties"]) != set(crd.get("properties", {})):
            yield f"{path}: fields {sorted(crd.get('properties', {}))} in the CRD, {sorted(model['properties'])} in the model"
        if model["required"] != sorted(crd.get("required", [])):
            yield f"{path}: required {sorted(crd.get('required', []))} in the CRD, {model['required']} in the model"
        for name in set(model["properties"]) & set(crd.get("properties", {})):
            yield from _compare(model["properties"][name], crd["properties"][name], f"{path}.{name}")
    if model["type"] == "object" and "properties" not in model and "additionalProperties" in crd:
        assert crd["additionalProperties"] == {"type": "string"}, path


def test_schema_matches_the_experiment_model_at_every_depth() -> None:
    """Field names, types, enums and required fields of Experiment.spec, all the way down."""
    drift = list(_compare(_model_node(ExperimentSpec), experiment_spec_schema(), ""))
    assert drift == []


def test_trial_and_suggestion_share_the_experiment_model_parts() -> None:
    by_kind = {c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for c in crds()}
    experiment = experiment_spec_schema()["properties"]
    trial = by_kind["Trial"]["properties"]["spec"]["properties"]
    suggestion = by_kind["Suggestion"]["properties"]["spec"]["properties"]
    assert trial["objective"] == experiment["objective"]
    assert trial["metricsCollector"] == experiment["metricsCollectorSpec"]
    assert suggestion["algorithm"] == experiment["algorithm"]
    assert suggestion["earlyStopping"] == experiment["earlyStopping"]
