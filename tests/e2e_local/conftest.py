"""Helpers for end-to-end `kubenas run` tests: write an Experiment YAML, run the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBENAS = [sys.executable, "-m", "kubenas"]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    workdir: Path

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.workdir / "results.json").read_text())

    def trial(self, **assignments: str) -> dict[str, Any]:
        found = [t for t in self.results["trials"]
                 if all(t["assignments"].get(k) == v for k, v in assignments.items())]
        assert len(found) == 1, (assignments, self.results["trials"])
        return found[0]


def experiment(
    name: str,
    *,
    parameters: list[dict[str, Any]],
    command: list[str],
    args: list[str] | None = None,
    algorithm: str = "random",
    settings: dict[str, str] | None = None,
    objective: str = "loss",
    kind: str = "minimize",
    goal: float | None = None,
    max_trials: int = 3,
    parallel: int = 1,
    max_failed: int | None = None,
    trial_parameters: list[dict[str, str]] | None = None,
    env: list[dict[str, Any]] | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Katib v1beta1 Experiment whose trial is a local program (a batch/v1 Job template)."""
    container: dict[str, Any] = {"name": "training-container", "image": "python:3.11", "command": command}
    if args is not None:
        container["args"] = args
    if env is not None:
        container["env"] = env
    names = [p["name"] for p in parameters] if "parameters" not in (extra_spec or {}) else []
    spec: dict[str, Any] = {
        "objective": {"type": kind, "objectiveMetricName": objective},
        "algorithm": {"algorithmName": algorithm,
                      "algorithmSettings": [{"name": k, "value": v} for k, v in (settings or {}).items()]},
        "parallelTrialCount": parallel,
        "maxTrialCount": max_trials,
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "trialParameters": trial_parameters or [{"name": n, "reference": n} for n in names],
            "trialSpec": {"apiVersion": "batch/v1", "kind": "Job",
                          "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}},
        },
    }
    if parameters:
        spec["parameters"] = parameters
    if goal is not None:
        spec["objective"]["goal"] = goal
    if max_failed is not None:
        spec["maxFailedTrialCount"] = max_failed
    spec.update(extra_spec or {})
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def make_experiment():
    """The `experiment(...)` builder above, as a fixture (tests do not import conftest)."""
    return experiment


def run_cli(*args: str, timeout: float = 60.0, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBENAS, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture
def cli():
    """Run the real `kubenas` CLI in the repository root (`run_cli`)."""
    return run_cli


@pytest.fixture
def run_experiment(tmp_path: Path):
    """Write `doc` as YAML and `kubenas run` it in a fresh work directory under tmp_path."""

    def go(doc: dict[str, Any], *flags: str, workdir: Path | None = None, timeout: float = 60.0,
           env: dict[str, str] | None = None) -> Run:
        path = tmp_path / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        wd = workdir or tmp_path / "work"
        done = run_cli("run", str(path), "--workdir", str(wd), *flags, timeout=timeout, env=env)
        assert "Traceback" not in done.stderr, done.stderr
        return Run(done.returncode, done.stdout, done.stderr, wd)

    return go


@pytest.fixture
def write_experiment(tmp_path: Path):
    """Write `doc` as YAML under tmp_path; returns the path."""

    def go(doc: dict[str, Any]) -> Path:
        path = tmp_path / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return go


@pytest.fixture
def spawn_run():
    """Start `kubenas run ARGS` in the background (repository root as cwd); the test ends it."""
    started: list[subprocess.Popen[str]] = []

    def go(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*KUBENAS, "run", *args], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
        started.append(proc)
        return proc

    yield go
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
