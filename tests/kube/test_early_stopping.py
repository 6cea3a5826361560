"""Early stopping in the cluster runtime, against FakeKubeApi (fake_cluster.py: the API server,
garbage collector and kubelet are fakes because none can run here). The suggestion server
(serving EarlyStopping), the DBManager over SQLite and the trial programs are real: the fake
kubelet runs the rendered container command as a local process; a pod still "Running" shows
the lines that process really printed so far."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from controller.dbmanager import DBManagerClient
from controller.kube import render, status
from controller.kube.config import SuggestionConfig
from controller.kube.crd import crds
from controller.kube.early_stopping import trial_rules, trial_status_sink
from controller.kube.trial import reconcile_trial
from kubenas.early_stopping import Comparison, StopRule
from kubenas.proto_convert import trial_from_proto, trial_to_proto
from kubenas.trials import TrialCondition
from tests.kube.fake_cluster import FakeKubeApi, start_pod
from tests.kube.harness import context, fake_api, katib_config, reconcile_once, running_servers
from tests.kube.test_crds import _closed

NS = "team-a"
REPO = Path(__file__).resolve().parents[2]
LEVELS = ["0.9", "0.8", "0.2", "0.85"]
STEPS = 10


def _experiment() -> dict[str, Any]:
    container = {"name": "training", "image": "python:3.11-slim",
                 "command": ["python", str(REPO / "tests/programs/curve.py"), "--level",
                             "${trialParameters.level}", "--steps", str(STEPS), "--sleep", "0"]}
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": "curve", "namespace": NS, "uid": "0b7e6a3c-1111-2222-3333-444455556666"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "acc"},
            "algorithm": {"algorithmName": "grid"},
            "earlyStopping": {"algorithmName": "medianstop", "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}]},
            "parallelTrialCount": 1, "maxTrialCount": len(LEVELS),
            "parameters": [{"name": "level", "parameterType": "categorical", "feasibleSpace": {"list": LEVELS}}],
            "trialTemplate": {
                "primaryContainerName": "training",
                "trialParameters": [{"name": "level", "reference": "level"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "restartPolicy": "Never", "containers": [container]}}}},
            },
        },
    }


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with running_servers(tmp_path, "grid") as ports:
        yield ports


@pytest.fixture
def api() -> FakeKubeApi:
    return fake_api("grid")


def _level(trial: dict[str, Any]) -> str:
    return next(a["value"] for a in trial["spec"]["parameterAssignments"] if a["name"] == "level")


def _argv(job: dict[str, Any]) -> list[str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return [sys.executable if a == "python" else a for a in container["command"] + container.get("args", [])]


def _start_partially(api: FakeKubeApi, job: dict[str, Any], lines: int) -> str:
    """The fake kubelet starts the pod; its log is what the real program printed in its first `lines` lines."""
    proc = subprocess.Popen(_argv(job), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    printed = "".join(proc.stdout.readline() for _ in range(lines))
    proc.kill()
    proc.wait()
    name = job["metadata"]["name"]
    api.objects[("batch/v1", "Job", NS, name)]["status"] = {"active": 1}
    start_pod(api, name, NS, printed)
    return printed


def _trial(api: FakeKubeApi, level: str) -> dict[str, Any] | None:
    return next((t for t in api.kind("Trial") if _level(t) == level), None)


def test_rules_reach_new_trials_and_a_bad_running_trial_is_early_stopped(api, servers) -> None:
    api.create(_experiment())
    ctx = context(api, servers)
    # The first two trials (0.9, 0.8) run to the end: no rule before two have succeeded.
    for _ in range(30):
        reconcile_once(ctx, api)
        if _trial(api, "0.2") is not None:
            break
        api.run_jobs()
    suggestion = api.kind("Suggestion")[0]
    # averages of the first 2 steps: 0.9*1.5/10=0.135, 0.8*1.5/10=0.12 -> median 0.1275
    (rule,) = suggestion["status"]["earlyStoppingRules"]
    assert (rule["name"], rule["comparison"], rule["startStep"]) == ("acc", "less", 2)
    assert float(rule["value"]) == pytest.approx(0.1275)
    bad = _trial(api, "0.2")
    assert bad is not None and bad["spec"]["earlyStoppingRules"] == [rule]
    assert trial_rules(bad["spec"]) == (StopRule("acc", 0.1275, Comparison.LESS, 2),)
    for _ in range(3):
        reconcile_once(ctx, api)  # creates its Job
    name = bad["metadata"]["name"]
    job = api.get("batch/v1", "Job", NS, name)
    assert job is not None
    printed = _start_partially(api, job, lines=3)
    assert printed.count("step=") == 3
    reconcile_trial(ctx, api.get("kubeflow.org/v1beta1", "Trial", NS, name))
    stopped = api.get("kubeflow.org/v1beta1", "Trial", NS, name)
    last = stopped["status"]["conditions"][-1]
    assert (last["type"], last["status"], last["reason"]) == ("EarlyStopped", "True", "TrialEarlyStopped")
    assert "acc < 0.1275 from report 2" in last["message"]
    (acc,) = stopped["status"]["observation"]["metrics"]
    assert float(acc["max"]) == pytest.approx(0.06) and float(acc["latest"]) == pytest.approx(0.06)
    assert api.get("batch/v1", "Job", NS, name) is None  # the workload is deleted (stops the training)
    with DBManagerClient(f"127.0.0.1:{servers['db']}") as db:  # the log so far is in the store
        assert [float(m.value) for m in db.get(name, "acc")] == pytest.approx([0.02, 0.04, 0.06])
    # The experiment goes on: the next trial (0.85) stays above the rule and runs to the end.
    for _ in range(30):
        reconcile_once(ctx, api)
        good = _trial(api, "0.85")
        if good is not None and api.get("batch/v1", "Job", NS, good["metadata"]["name"]) is not None:
            break
    good = _trial(api, "0.85")
    job = api.get("batch/v1", "Job", NS, good["metadata"]["name"])
    _start_partially(api, job, lines=3)
    reconcile_trial(ctx, api.get("kubeflow.org/v1beta1", "Trial", NS, good["metadata"]["name"]))
    running = api.get("kubeflow.org/v1beta1", "Trial", NS, good["metadata"]["name"])
    assert running["status"]["conditions"][-1]["type"] == "Running"
    # What reconcile_suggestion sends the algorithm for this trial: EarlyStopped with its value so far.
    objective = status.objective_from_spec(stopped["spec"]["objective"])
    seen = trial_from_proto(trial_to_proto(status.trial_record(stopped, objective), objective), objective)
    assert seen.condition is TrialCondition.EARLY_STOPPED and seen.metrics["acc"] == pytest.approx(0.06)
    reconcile_once(ctx, api)
    exp = api.kind("Experiment")[0]
    assert exp["status"]["trialsEarlyStopped"] == 1 and exp["status"]["trialsSucceeded"] == 2
    assert exp["status"]["earlyStoppedTrialList"] == [name]
    for kind in ("Experiment", "Suggestion", "Trial"):
        crd = next(c for c in crds() if c["spec"]["names"]["kind"] == kind)
        validator = jsonschema.Draft7Validator(_closed(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]))
        for obj in api.kind(kind):
            assert list(validator.iter_errors(obj)) == [], kind


def test_suggestion_deployment_and_service_expose_early_stopping(api, servers) -> None:
    exp = _experiment()
    api.create(exp)
    ctx = context(api, servers)
    for _ in range(3):
        reconcile_once(ctx, api)
    (deployment,) = api.kind("Deployment")
    (service,) = api.kind("Service")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--early-stopping-port", "6788"]
    assert {p["containerPort"] for p in container["ports"]} == {6789, 6788}
    assert {(p["name"], p["port"]) for p in service["spec"]["ports"]} == {("api", 6789), ("early-stopping", 6788)}
    for obj in (deployment, service):
        clean = copy.deepcopy(obj)
        clean["metadata"] = {k: v for k, v in obj["metadata"].items() if k not in ("uid", "creationTimestamp")}
        clean.pop("status", None)
        kubernetes_validate.validate(clean, "1.30", strict=True)
    without = render.render_suggestion({**exp, "spec": {k: v for k, v in exp["spec"].items() if k != "earlyStopping"}},
                                       1)
    without["metadata"]["uid"] = "uid-without"  # as the API server stores it
    plain = render.render_suggestion_deployment(without, SuggestionConfig(algorithm="grid", image="img:1"))
    assert "--early-stopping-port" not in plain["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [p["port"] for p in render.render_suggestion_service(without)["spec"]["ports"]] == [6789]


def test_bad_early_stopping_settings_fail_the_suggestion_and_experiment(api, servers) -> None:
    exp = _experiment()
    # valid for the static rules; only the EarlyStopping service knows medianstop's ranges
    exp["spec"]["earlyStopping"]["algorithmSettings"] = [{"name": "start_step", "value": "0"}]
    api.create(exp)
    ctx = context(api, servers)
    for _ in range(6):
        reconcile_once(ctx, api)
    suggestion = api.kind("Suggestion")[0]
    last = suggestion["status"]["conditions"][-1]
    assert last["type"] == "Failed"
    assert "ValidateEarlyStoppingSettings: start_step: invalid value '0': must be an integer >= 1" in last["message"]
    failed = api.kind("Experiment")[0]["status"]["conditions"][-1]
    assert failed["type"] == "Failed" and "start_step" in failed["message"]
    assert api.kind("Trial") == []


def test_an_early_stopping_algorithm_missing_from_katib_config_fails_the_experiment(servers) -> None:
    api = FakeKubeApi()
    api.create(katib_config("grid", early_stoppings=()))
    api.create(_experiment())
    ctx = context(api, servers)
    for _ in range(3):
        reconcile_once(ctx, api)
    failed = api.kind("Experiment")[0]["status"]["conditions"][-1]
    assert failed["type"] == "Failed"
    assert "runtime.earlyStoppings: invalid value 'medianstop'" in failed["message"]
    assert api.kind("Trial") == [] and api.kind("Deployment") == []


def test_malformed_trial_rules_are_skipped_not_fatal() -> None:
    spec = {"earlyStoppingRules": [{"name": "acc", "value": "x", "comparison": "less"},
                                   {"name": "acc", "value": "0.5", "comparison": "greater", "startStep": 3}]}
    assert trial_rules(spec) == (StopRule("acc", 0.5, Comparison.GREATER, 3),)


def test_set_trial_status_sink_marks_the_trial_early_stopped(api) -> None:
    api.create({"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
                "metadata": {"name": "t1", "namespace": NS}, "spec": {},
                "status": {"conditions": [{"type": "Running", "status": "True"}]}})
    sink = trial_status_sink(api, NS)
    sink("t1")
    conditions = api.get("kubeflow.org/v1beta1", "Trial", NS, "t1")["status"]["conditions"]
    assert conditions[-1]["type"] == "EarlyStopped" and conditions[-1]["reason"] == "TrialEarlyStopped"
    assert {c["type"]: c["status"] for c in conditions}["Running"] == "False"
    with pytest.raises(LookupError, match="t2"):
        sink("t2")
