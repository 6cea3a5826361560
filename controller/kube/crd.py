"""CustomResourceDefinitions for Experiment, Suggestion and Trial (kubeflow.org/v1beta1).

The schemas are structural and spell Katib's field names exactly, so existing Katib YAML is
accepted while a misspelled field or a wrong type is rejected by the API server at
`kubectl apply`. Experiment.spec (and the parts Trials and Suggestions share with it) is
derived from the pydantic models `kubenas run` validates with (`structural_schema`). Only what is free-form in Katib stays free-form: the trial's `trialSpec`
/ `runSpec`, a custom collector container, and `status` (written by the controller).

`python -m controller.kube.crd DIR` writes one YAML per CRD; a test checks the committed
files under manifests/base/crds/ equal this output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from controller.kube.structural_schema import Schema, structural_schema
from kubenas.experiment_model import (
    AlgorithmSpec,
    EarlyStoppingSpec,
    ExperimentSpec,
    MetricsCollectorSpec,
    ObjectiveSpec,
)

__all__ = ["GROUP", "VERSION", "crds", "experiment_spec_schema", "write_crds"]

GROUP = "kubeflow.org"
VERSION = "v1beta1"

def _s(description: str = "", enum: list[str] | None = None) -> Schema:
    out: Schema = {"type": "string"}
    if enum:
        out["enum"] = enum
    if description:
        out["description"] = description
    return out


def _int(minimum: int | None = None, description: str = "") -> Schema:
    out: Schema = {"type": "integer", "format": "int32"}
    if minimum is not None:
        out["minimum"] = minimum
    if description:
        out["description"] = description
    return out


def _obj(properties: dict[str, Schema], required: list[str] | None = None, description: str = "") -> Schema:
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if description:
        out["description"] = description
    return out


def _arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _free(description: str) -> Schema:
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "description": description}


def _string_map() -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def _name_value() -> Schema:
    return _obj({"name": _s(), "value": _s()}, required=["name"])


# What the models cannot say: minimums their rules check later (so a spec still gets every
# error at once locally), descriptions, and the HTTPGetAction Katib spells out where the
# model keeps it free-form.
_COLLECTOR_EXTRAS: dict[str, Schema] = {
    "source.httpGet": _obj({
        "path": _s(), "host": _s(), "scheme": _s(enum=["HTTP", "HTTPS"]),
        "port": {"x-kubernetes-int-or-string": True},
        "httpHeaders": _arr(_obj({"name": _s(), "value": _s()}, required=["name", "value"])),
    }),
    "collector.customCollector": {"description": "a Kubernetes Container for the Custom collector"},
}
_EXPERIMENT_EXTRAS: dict[str, Schema] = {
    "parallelTrialCount": {"minimum": 1},
    "maxTrialCount": {"minimum": 1},
    "maxFailedTrialCount": {"minimum": 0},
    "nasConfig.graphConfig.numLayers": {"minimum": 1},
    "trialTemplate.trialSpec": {
        "description": "the trial's Kubernetes object (Job or any kind); ${trialParameters.x} is substituted"},
    **{f"metricsCollectorSpec.{path}": extra for path, extra in _COLLECTOR_EXTRAS.items()},
}


def experiment_spec_schema() -> Schema:
    """The structural schema of Experiment.spec, derived from the model `kubenas run` validates."""
    return structural_schema(ExperimentSpec, _EXPERIMENT_EXTRAS)


def _metrics_collector_spec() -> Schema:
    return structural_schema(MetricsCollectorSpec, _COLLECTOR_EXTRAS)


def _suggestion_spec() -> Schema:
    return _obj({
        "algorithm": structural_schema(AlgorithmSpec),
        "earlyStopping": structural_schema(EarlyStoppingSpec),
        "requests": _int(minimum=0, description="how many assignments the experiment has asked for in total"),
        "resumePolicy": _s(enum=["Never", "LongRunning", "FromVolume"]),
    })


def _trial_spec() -> Schema:
    return _obj({
        "objective": structural_schema(ObjectiveSpec),
        "parameterAssignments": _arr(_name_value()),
        "earlyStoppingRules": _arr(_obj({
            "name": _s(), "value": _s(),
            "comparison": _s(enum=["equal", "less", "greater"]),
            "startStep": _int(minimum=0),
        })),
        "runSpec": _free("the rendered trial object (Job or the trialTemplate's kind)"),
        "metricsCollector": _metrics_collector_spec(),
        "primaryPodLabels": _string_map(),
        "primaryContainerName": _s(),
        "successCondition": _s(),
        "failureCondition": _s(),
        "retainRun": {"type": "boolean"},
        "labels": _string_map(),
    })


def _last_condition(field: str) -> str:
    return f".status.conditions[-1:].{field}"


def _crd(kind: str, plural: str, short: str, spec: Schema, columns: list[dict[str, Any]]) -> dict[str, Any]:
    schema = _obj({
        "apiVersion": _s(), "kind": _s(), "metadata": {"type": "object"},
        "spec": spec,
        "status": _free("written by the controller (Katib's status shape)"),
    })
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "kubenas"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind, "listKind": f"{kind}List", "plural": plural,
                "singular": kind.lower(), "shortNames": [short], "categories": ["all", "kubeflow", "katib", "kubenas"],
            },
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": schema},
                "additionalPrinterColumns": columns + [
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    }


def crds() -> list[dict[str, Any]]:
    """The three CRDs, in install order."""
    condition = {"name": "Condition", "type": "string", "jsonPath": _last_condition("type")}
    reason = {"name": "Reason", "type": "string", "jsonPath": _last_condition("reason")}
    return [
        _crd("Experiment", "experiments", "exp", experiment_spec_schema(), [
            condition, reason,
            # The controller writes the objective metric first, so [0] is the objective.
            {"name": "Best", "type": "string", "jsonPath": ".status.currentOptimalTrial.observation.metrics[0].latest"},
            {"name": "Succeeded", "type": "integer", "jsonPath": ".status.trialsSucceeded"},
            {"name": "Running", "type": "integer", "jsonPath": ".status.trialsRunning"},
            {"name": "Failed", "type": "integer", "jsonPath": ".status.trialsFailed"},
        ]),
        _crd("Suggestion", "suggestions", "sugg", _suggestion_spec(), [
            condition, reason,
            {"name": "Algorithm", "type": "string", "jsonPath": ".spec.algorithm.algorithmName"},
            {"name": "Requested", "type": "integer", "jsonPath": ".spec.requests"},
            {"name": "Assigned", "type": "integer", "jsonPath": ".status.suggestionCount"},
        ]),
        _crd("Trial", "trials", "trial", _trial_spec(), [
            condition, reason,
            {"name": "Objective", "type": "string", "jsonPath": ".status.observation.metrics[0].latest"},
        ]),
    ]


def write_crds(directory: Path) -> list[Path]:
    """Write `<plural>.yaml` for each CRD into `directory`; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for crd in crds():
        path = directory / f"{crd['spec']['names']['plural']}.yaml"
        path.write_text(render_yaml(crd))
        paths.append(path)
    return paths


def render_yaml(obj: dict[str, Any]) -> str:
    header = "# Generated by `python -m controller.kube.crd manifests/base/crds`; do not edit.\n"
    return header + yaml.safe_dump(obj, sort_keys=False, width=120)


if __name__ == "__main__":
    for written in write_crds(Path(sys.argv[1] if len(sys.argv) > 1 else "manifests/base/crds")):
        print(written)
