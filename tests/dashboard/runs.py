"""Real `kubenas run`s for the dashboard tests: small experiments whose trials are the test
programs under tests/programs, run by the real CLI into work directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KUBENAS = [sys.executable, "-m", "kubenas"]
HOSTILE = "<script>alert(1)</script>"
HOSTILE_DIR = "<img src=x onerror=alert(2)>"
LEVELS = ["0.9", "0.8", "0.2", "0.85", "0.1", "0.95"]   # medianstop stops 0.2 and 0.1 (see test_run_early_stopping)


def _job(command: list[str], env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "training-container", "image": "python:3.11", "command": command}
    if env:
        container["env"] = env
    return {"apiVersion": "batch/v1", "kind": "Job",
            "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}}


def curve_experiment(name: str = "curve-median", levels: list[str] = LEVELS, sleep: float = 0.1,
                     steps: int = 10, early_stopping: bool = True, algorithm: str = "grid") -> dict[str, Any]:
    """Grid over learning-curve levels (tests/programs/curve.py), medianstop early stopping,
    and a categorical parameter whose only value is markup (passed to the trial's env).
    Grid creates every trial at once; random (seeded) one at a time, as parallelTrialCount allows."""
    spec: dict[str, Any] = {
        "objective": {"type": "maximize", "objectiveMetricName": "acc"},
        "algorithm": {"algorithmName": algorithm, "algorithmSettings":
                      [{"name": "random_state", "value": "1"}] if algorithm == "random" else []},
        "parallelTrialCount": 1,
        "maxTrialCount": len(levels),
        "parameters": [
            {"name": "level", "parameterType": "categorical", "feasibleSpace": {"list": levels}},
            {"name": "note", "parameterType": "categorical", "feasibleSpace": {"list": [HOSTILE]}},
        ],
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "trialParameters": [{"name": "level", "reference": "level"}, {"name": "note", "reference": "note"}],
            "trialSpec": _job(["python", "tests/programs/curve.py", "--level", "${trialParameters.level}",
                               "--steps", str(steps), "--sleep", str(sleep)],
                              env=[{"name": "NOTE", "value": "${trialParameters.note}"}]),
        },
    }
    if early_stopping:
        spec["earlyStopping"] = {"algorithmName": "medianstop", "algorithmSettings": [
            {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}]}
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": spec}


def nas_experiment(name: str = "nas-macro") -> dict[str, Any]:
    """Random ENAS macro architectures trained by tests/programs/nas_child.py (instant)."""
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": {
        "objective": {"type": "maximize", "objectiveMetricName": "Validation-accuracy"},
        "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "5"}]},
        "parallelTrialCount": 3, "maxTrialCount": 3,
        "nasConfig": {
            "graphConfig": {"numLayers": 3, "inputSizes": [8, 8, 1], "outputSizes": [10]},
            "operations": [
                {"operationType": "convolution", "parameters": [
                    {"name": "filter_size", "parameterType": "categorical", "feasibleSpace": {"list": ["3", "5"]}},
                    {"name": "num_filter", "parameterType": "categorical", "feasibleSpace": {"list": ["8"]}}]},
                {"operationType": "reduction", "parameters": [
                    {"name": "reduction_type", "parameterType": "categorical",
                     "feasibleSpace": {"list": ["max_pooling", "avg_pooling"]}}]},
            ]},
        "trialTemplate": _template("tests/programs/nas_child.py", [
            ("--architecture", "neuralNetworkArchitecture", "architecture"),
            ("--nn-config", "neuralNetworkConfig", "nn_config")]),
    }}


def _template(program: str, flags: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A trialTemplate running `program` with one `flag ${trialParameters.name}` per
    (flag, trial parameter name, the suggestion's assignment it references)."""
    command = ["python", program]
    for flag, name, _reference in flags:
        command += [flag, f"${{trialParameters.{name}}}"]
    return {"primaryContainerName": "training-container",
            "trialParameters": [{"name": name, "reference": reference} for _flag, name, reference in flags],
            "trialSpec": _job(command)}


def oneshot_experiment(name: str = "oneshot-macro") -> dict[str, Any]:
    """enas-oneshot over nas_experiment's space; the one trial (tests/programs/oneshot_result.py)
    prints its found architecture as `trainer.enas_search` does, instantly."""
    doc = nas_experiment(name)
    spec = doc["spec"]
    spec.update(parallelTrialCount=1, maxTrialCount=1)
    spec["nasConfig"]["operations"][1]["parameters"].append(  # enas checks as strictly as Katib: a window
        {"name": "pool_size", "parameterType": "categorical", "feasibleSpace": {"list": ["2"]}})
    spec["objective"] = {"type": "maximize", "objectiveMetricName": "Validation-Accuracy"}
    spec["algorithm"] = {"algorithmName": "enas-oneshot", "algorithmSettings": [
        {"name": "dataset", "value": "digits"}, {"name": "random_state", "value": "1"}]}
    spec["trialTemplate"] = _template("tests/programs/oneshot_result.py", [
        ("--algorithm-settings", "algorithmSettings", "algorithm-settings"),
        ("--search-space", "searchSpace", "search-space")])
    return doc


def write(doc: dict[str, Any], directory: Path) -> Path:
    path = directory / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(doc: dict[str, Any], workdir: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """`kubenas run` the experiment into `workdir` and wait for it (repository root as cwd)."""
    path = write(doc, workdir.parent)
    return subprocess.run([*KUBENAS, "run", str(path), "--workdir", str(workdir)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False, env={**os.environ, "COLUMNS": "200"})


def spawn(doc: dict[str, Any], workdir: Path) -> subprocess.Popen[str]:
    """Start `kubenas run` in the background; the caller waits for or kills it."""
    path = write(doc, workdir.parent)
    return subprocess.Popen([*KUBENAS, "run", str(path), "--workdir", str(workdir)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
