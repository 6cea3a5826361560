"""Shared pieces of the local runtime's unit tests: a real Experiment from a small dict, and a
fake child process (the one part they do not start)."""

from __future__ import annotations

import copy
import queue
import time
from typing import Any

from controller.local.processes import LaunchSpec, TrialEvent
from kubenas.experiment import Experiment, load_experiment_dict

CONTAINER: dict[str, Any] = {"name": "training-container", "image": "python:3.11",
                             "command": ["python", "train.py"], "args": ["--lr=${trialParameters.lr}"]}


LR = {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}


def experiment_doc(name: str = "unit", *, container: dict[str, Any] | None = None, max_trials: int = 4,
                   parallel: int = 2, algorithm: str = "random", settings: dict[str, str] | None = None,
                   goal: float | None = None, collector: dict[str, Any] | None = None,
                   lr: dict[str, Any] | None = None, extra_spec: dict[str, Any] | None = None) -> dict[str, Any]:
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
    spec.update(extra_spec or {})
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


class FakeChildProcess:
    """A fake for the one part these unit tests do not start: the trial's child process.

    It has the surface of `controller.local.processes.TrialProcess` the runtime uses; the test
    decides when it prints (`emit`), when its output ends (`end_output`) and how it exits
    (`exit`). Signals are recorded, not sent."""

    def __init__(self, name: str, spec: LaunchSpec, events: queue.Queue[TrialEvent], pid: int = 4242,
                 obeys_signals: bool = False) -> None:
        self.name, self.spec, self.events, self.pid = name, spec, events, pid
        self.started, self.ended = time.time(), None
        self.stop_requested = False
        self.posted, self.waiting_for_room = 0, False
        self.signals: list[int] = []
        self.code: int | None = None
        self._output_open = True
        self.obeys_signals = obeys_signals  # SIGTERM/SIGKILL end it, as they would a real child

    def emit(self, text: str) -> None:
        self.events.put(TrialEvent(self.name, text))
        self.posted += 1

    def end_output(self) -> None:
        self.events.put(TrialEvent(self.name, None))
        self.posted += 1
        self._output_open = False

    def exit(self, code: int) -> None:
        self.code, self.ended = code, time.time()

    def returncode(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int | None:
        return self.code

    def join_output(self, timeout: float) -> bool:
        return not self._output_open

    def signal_group(self, sig: int) -> None:
        self.signals.append(sig)
        if self.obeys_signals and self.code is None:
            self.exit(-sig)
            self.end_output()
