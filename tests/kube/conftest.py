"""Shared fixtures for the Kubernetes tests: a Katib-shaped Experiment body as the API server stores it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

EXPERIMENT: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1beta1",
    "kind": "Experiment",
    "metadata": {"name": "random-demo", "namespace": "team-a", "uid": "0b7e6a3c-1111-2222-3333-444455556666"},
    "spec": {
        "objective": {"type": "maximize", "goal": 0.99, "objectiveMetricName": "accuracy",
                      "additionalMetricNames": ["loss"]},
        "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "7"}]},
        "parallelTrialCount": 2,
        "maxTrialCount": 4,
        "maxFailedTrialCount": 2,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}},
            {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
        ],
        "trialTemplate": {
            "primaryContainerName": "training",
            "trialParameters": [
                {"name": "learningRate", "reference": "lr"},
                {"name": "optimizer", "reference": "optimizer"},
            ],
            "trialSpec": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "training", "image": "python:3.11-slim",
                         "command": ["python", "-c", "print('accuracy=0.5')", "--lr=${trialParameters.learningRate}",
                                     "--optimizer", "${trialParameters.optimizer}"]},
                        {"name": "sidecar", "image": "busybox", "command": ["sleep", "1"]},
                    ],
                }}},
            },
        },
    },
}


@pytest.fixture
def experiment() -> dict[str, Any]:
    return copy.deepcopy(EXPERIMENT)
