"""Shared pieces of the local runtime's unit tests: a real Experiment from a small dict."""

from __future__ import annotations

import copy
from typing import Any

from kubenas.experiment import Experiment, load_experiment_dict

CONTAINER: dict[str, Any] = {"name": "training-container", "image": "python:3.11",
                             "command": ["python", "train.py"], "args": ["--lr=${trialParameters.lr}"]}


LR = {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}


def experiment_doc(name: str = "unit", *, container: dict[str, Any] | None = None, max_trials: int = 4,
                   parallel: int = 2, algorithm: str = "random", settings: dict[str, str] | None = None,
                   goal: float | None = None, collector: dict[str, Any] | None = None,
                   lr: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Katib v1beta1 Experiment (minimize `loss` over `lr`) whose trial is a batch/v1 Job."""
    spec: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": algorithm,
                      "algorithmSettings": [{"name": k, "value": v} for k, v in (settings or {}).items()]},
        "parallelTrialCount": parallel,
        "maxTrialCount": max_trials,
        "parameters": [lr or LR],
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "trialParameters": [{"name": "lr", "reference": "lr"}],
            "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                "containers": [copy.deepcopy(container if container is not None else CONTAINER)],
                "restartPolicy": "Never"}}}},
        },
    }
    if goal is not None:
        spec["objective"]["goal"] = goal
    if collector is not None:
        spec["metricsCollectorSpec"] = collector
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": spec}


def experiment(name: str = "unit", **changes: Any) -> Experiment:
    return load_experiment_dict(experiment_doc(name, **changes))


def with_container(exp: Experiment, container: dict[str, Any]) -> Experiment:
    """`exp` with its trialSpec's only container replaced after validation: what `plan_trials`
    must still refuse when the spec checks let it through (they run before it in `kubenas run`)."""
    template = exp.spec.trial_template
    assert template is not None and template.trial_spec is not None
    trial_spec = copy.deepcopy(dict(template.trial_spec))
    trial_spec["spec"]["template"]["spec"]["containers"] = [container]
    spec = exp.spec.model_copy(update={"trial_template": template.model_copy(update={"trial_spec": trial_spec})})
    return exp.model_copy(update={"spec": spec})
