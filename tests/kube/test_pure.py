"""Pure functions: GJSON conditions, conditions list, observations, rendering of any trial kind."""

from __future__ import annotations

from typing import Any

import pytest

from controller.kube import render, status
from controller.kube.config import SuggestionConfig
from controller.kube.gjson import GJsonError, condition_met, evaluate
from kubenas.metrics import MetricPoint
from kubenas.trials import Objective, ObjectiveType, TrialCondition

JOB_DONE = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
JOB_FAILED = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
JOB_RUNNING = {"status": {"active": 1}}
OBJ = Objective(ObjectiveType.MAXIMIZE, "accuracy", additional_metric_names=("loss",))


@pytest.mark.parametrize("obj, success, failure", [
    (JOB_DONE, True, False), (JOB_FAILED, False, True), (JOB_RUNNING, False, False),
    ({"status": {"conditions": [{"type": "Complete", "status": "False"}]}}, False, False),
])
def test_katib_default_job_conditions(obj: dict[str, Any], success: bool, failure: bool) -> None:
    assert condition_met(obj, status.JOB_SUCCESS_CONDITION) is success
    assert condition_met(obj, status.JOB_FAILURE_CONDITION) is failure


def test_gjson_paths_and_queries() -> None:
    obj = {"status": {"phase": "Done", "items": [{"n": 1}, {"n": 3}], "replicaStatuses": {"Worker": {"succeeded": 2}}}}
    assert evaluate(obj, "status.phase") == "Done"
    assert evaluate(obj, "status.items.#") == 2
    assert evaluate(obj, "status.items.1.n") == 3
    assert evaluate(obj, "status.items.#(n>1)#") == [{"n": 3}]
    assert condition_met(obj, "status.replicaStatuses.Worker.succeeded")
    assert not condition_met(obj, "status.missing")
    with pytest.raises(GJsonError, match="status.items"):
        evaluate(obj, "status.items.#(n==bare)")


def test_set_condition_moves_changes_last_and_keeps_unchanged() -> None:
    c = status.set_condition([], "Created", True, "R1", "m", "t1")
    c = status.set_condition(c, "Running", True, "R2", "m", "t2")
    same = status.set_condition(c, "Created", True, "R1", "m", "t3")
    assert same == c
    c = status.set_condition(c, "Running", False, "R3", "m", "t4")
    assert [x["type"] for x in c] == ["Created", "Running"] and c[-1]["lastTransitionTime"] == "t4"
    assert status.latest_condition(c) == "Created"


def test_observation_puts_the_objective_first_with_min_max_latest() -> None:
    points = [MetricPoint("loss", 2.0, "a"), MetricPoint("accuracy", 0.5, "a"), MetricPoint("accuracy", 0.4, "b"),
              MetricPoint("other", 9.0, "b")]
    obs = status.observation_from_points(OBJ, points)
    assert obs["metrics"][0] == {"name": "accuracy", "min": "0.4", "max": "0.5", "latest": "0.4"}
    assert [m["name"] for m in obs["metrics"]] == ["accuracy", "loss"]


@pytest.mark.parametrize("run, observation, expected", [
    (JOB_DONE, {"metrics": [{"name": "accuracy", "min": "1", "max": "2", "latest": "1"}]}, TrialCondition.SUCCEEDED),
    (JOB_DONE, {"metrics": []}, TrialCondition.METRICS_UNAVAILABLE),
    (JOB_DONE, {"metrics": [{"name": "accuracy", "min": "unavailable", "max": "unavailable",
                             "latest": "unavailable"}]}, TrialCondition.METRICS_UNAVAILABLE),
    (JOB_FAILED, {"metrics": [{"name": "accuracy", "min": "1", "max": "2", "latest": "1"}]}, TrialCondition.FAILED),
    (JOB_RUNNING, {"metrics": []}, None),
])
def test_trial_outcome(run: dict[str, Any], observation: dict[str, Any], expected: TrialCondition | None) -> None:
    assert status.trial_outcome(run, None, None, observation, OBJ) is expected


def test_trial_record_uses_the_metric_strategy() -> None:
    trial = {"metadata": {"name": "t"}, "spec": {"parameterAssignments": [{"name": "lr", "value": "0.1"}]},
             "status": {"conditions": [{"type": "Succeeded", "status": "True"}],
                        "observation": {"metrics": [{"name": "accuracy", "min": "0.1", "max": "0.9", "latest": "0.5"}]}}}
    assert status.trial_record(trial, OBJ).metrics == {"accuracy": 0.9}
    minimize = Objective(ObjectiveType.MINIMIZE, "accuracy")
    assert status.trial_record(trial, minimize).metrics == {"accuracy": 0.1}
    assert status.trial_record(trial, OBJ).condition is TrialCondition.SUCCEEDED


def test_render_run_reaches_every_replica_of_any_kind() -> None:
    pytorch_job = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
        "Master": {"template": {"spec": {"containers": [{"name": "pytorch", "image": "x"}]}}},
        "Worker": {"template": {"spec": {"containers": [{"name": "pytorch", "image": "x"},
                                                          {"name": "side", "image": "y"}]}}}}}}
    trial = {"apiVersion": render.API_VERSION, "kind": "Trial",
             "metadata": {"name": "t1", "namespace": "ns", "uid": "u", "labels": {render.EXPERIMENT_LABEL: "e"}},
             "spec": {"runSpec": pytorch_job, "primaryContainerName": "pytorch"}}
    run = render.render_run(trial, "db:6789")
    templates = list(render.pod_templates(run["spec"]))
    assert len(templates) == 2
    for template in templates:
        assert template["metadata"]["labels"][render.TRIAL_LABEL] == "t1"
        for container in template["spec"]["containers"]:
            names = [e["name"] for e in container.get("env", [])]
            assert ("KATIB_TRIAL_NAME" in names) is (container["name"] == "pytorch")
    assert run["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert "metadata" not in pytorch_job  # input not mutated


def test_suggestion_deployment_probes_and_state_volume() -> None:
    suggestion = {"apiVersion": render.API_VERSION, "kind": "Suggestion",
                  "metadata": {"name": "e", "namespace": "ns", "uid": "u"},
                  "spec": {"algorithm": {"algorithmName": "enas"}, "requests": 1, "resumePolicy": "FromVolume"}}
    config = SuggestionConfig(algorithm="enas", image="img:1", volume_mount_path="/state")
    deployment = render.render_suggestion_deployment(suggestion, config)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"] == {"port": 6789, "service": "manager.v1beta1.Suggestion"}
    assert container["args"][-2:] == ["--state-dir", "/state"]
    claim = deployment["spec"]["template"]["spec"]["volumes"][-1]["persistentVolumeClaim"]["claimName"]
    assert claim == render.render_suggestion_pvc(suggestion, config)["metadata"]["name"] == "e-enas"
    never = {**suggestion, "spec": {**suggestion["spec"], "resumePolicy": "Never"}}
    assert "--state-dir" not in render.render_suggestion_deployment(never, config)["spec"]["template"]["spec"][
        "containers"][0]["args"]


def _pbt_experiment(policy: str) -> dict[str, Any]:
    return {"apiVersion": render.API_VERSION, "kind": "Experiment",
            "metadata": {"name": "simple-pbt", "namespace": "ns", "uid": "u"},
            "spec": {"resumePolicy": policy, "algorithm": {"algorithmName": "pbt", "algorithmSettings": [
                {"name": "suggestion_trial_dir", "value": "/var/log/katib/checkpoints/"},
                {"name": "n_population", "value": "5"}]},
                "trialTemplate": {"primaryContainerName": "training-container"}}}


def test_a_pbt_trial_sees_its_directory_on_the_suggestion_volume_as_katib_mounts_it() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [
        {"name": "training-container", "image": "x"}, {"name": "side", "image": "y"}]}}}}
    labels = {"pbt.suggestion.katib.kubeflow.org/generation": "1",
              "pbt.suggestion.katib.kubeflow.org/parent": "simple-pbt-abcdefgh"}
    trial = render.render_trial(_pbt_experiment("FromVolume"), "simple-pbt-xyzxyzxy", [("lr", "0.01")], job, labels)
    pod = trial["spec"]["runSpec"]["spec"]["template"]["spec"]
    primary, side = pod["containers"]
    assert primary["volumeMounts"] == [{"name": "suggestion-volume", "mountPath": "/var/log/katib/checkpoints",
                                        "subPath": "simple-pbt/simple-pbt-xyzxyzxy"}]
    assert "volumeMounts" not in side
    assert pod["volumes"] == [{"name": "suggestion-volume", "persistentVolumeClaim": {"claimName": "simple-pbt-pbt"}}]
    assert "volumes" not in job["spec"]["template"]["spec"]  # input not mutated
    # The trial's pods carry the Trial's labels (pbt's generation and parent), as Katib's webhook gives them.
    trial["metadata"]["uid"] = "t"
    run = render.render_run(trial, "db:6789")
    assert labels.items() <= run["spec"]["template"]["metadata"]["labels"].items()
    # Without FromVolume there is no suggestion PVC: nothing is mounted.
    never = render.render_trial(_pbt_experiment("Never"), "simple-pbt-xyzxyzxy", [("lr", "0.01")], job, labels)
    assert "volumes" not in never["spec"]["runSpec"]["spec"]["template"]["spec"]


def test_operator_puts_a_finalizer_only_on_experiments() -> None:
    """The real kopf registry (no cluster needed to register handlers): kopf adds its finalizer
    for daemons and mandatory deletion handlers, and those exist for Experiments only; Trials,
    Suggestions and Jobs are only watched (events wake the experiment's worker)."""
    import kopf

    from controller.kube import operator

    registry = kopf.get_default_registry()
    daemons = [(h.selector.any_name, h.fn) for h in registry._spawning._handlers]
    assert daemons == [("experiments", operator.experiment_worker)]
    changing = [(h.selector.any_name, h.reason.value, h.requires_finalizer) for h in registry._changing._handlers]
    assert changing == [("experiments", "delete", True)]
    watched = {(h.selector.group, h.selector.any_name) for h in registry._watching._handlers}
    assert watched == {("kubeflow.org", "experiments"), ("kubeflow.org", "trials"), ("batch", "jobs")}


def test_controller_without_credentials_says_why(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(KUBECONFIG=str(bad), HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "kubenas", "controller"], env=env, check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "no cluster credentials" in done.stderr and str(bad) in done.stderr
    assert "Traceback" not in done.stderr
