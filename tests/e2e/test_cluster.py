"""End to end on a real cluster (marker e2e): install kubenas, run a CPU experiment, tear down.

Runs against whatever KUBECONFIG points to; skipped, with the reason, when no cluster
answers. Needs the image `kubenas/suggestion:0.1.0` available to the cluster (for kind:
`docker build -f Dockerfile.suggestion -t kubenas/suggestion:0.1.0 . && kind load docker-image
kubenas/suggestion:0.1.0`) and `kubectl` on PATH. See README.md.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = os.environ.get("KUBENAS_E2E_NAMESPACE", "kubenas-e2e")
TIMEOUT_S = float(os.environ.get("KUBENAS_E2E_TIMEOUT", "600"))


@pytest.fixture(autouse=True)
def _one_cluster_test_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """pytest-xdist workers share the cluster, its CRDs and NAMESPACE: a file lock runs these tests in turn."""
    lock = tmp_path_factory.getbasetemp().parent / "kubenas-e2e-cluster.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _cluster() -> Any:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    try:
        from kubernetes import client, config

        config.load_kube_config()
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means "no cluster to test against"
        pytest.skip(f"no reachable Kubernetes cluster (KUBECONFIG={os.environ.get('KUBECONFIG', '~/.kube/config')}): "
                    f"{type(exc).__name__}: {str(exc)[:120]}")
    return client


def _kubectl(*args: str, check: bool = True) -> str:
    done = subprocess.run(["kubectl", *args], check=False, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _wait(what: str, predicate: Any, timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_experiment_runs_to_succeeded_and_deletes_cleanly() -> None:
    client = _cluster()
    _kubectl("apply", "--server-side", "-k", str(ROOT / "manifests" / "overlays" / "default"))
    _kubectl("-n", "kubenas-system", "rollout", "status", "deployment/kubenas-controller", f"--timeout={int(TIMEOUT_S)}s")
    _kubectl("-n", "kubenas-system", "rollout", "status", "deployment/kubenas-db-manager", f"--timeout={int(TIMEOUT_S)}s")
    _kubectl("create", "namespace", NAMESPACE, check=False)
    custom = client.CustomObjectsApi()
    experiment = yaml.safe_load((ROOT / "examples" / "cluster-random.yaml").read_text())
    name = experiment["metadata"]["name"]
    try:
        _kubectl("-n", NAMESPACE, "apply", "-f", str(ROOT / "examples" / "cluster-random.yaml"))

        def finished() -> dict[str, Any] | None:
            body = custom.get_namespaced_custom_object("kubeflow.org", "v1beta1", NAMESPACE, "experiments", name)
            conditions = {c["type"]: c for c in (body.get("status") or {}).get("conditions", []) if c["status"] == "True"}
            return body if {"Succeeded", "Failed"} & set(conditions) else None

        body = _wait(f"experiment {name} to finish", finished)
        status = body["status"]
        assert status["conditions"][-1]["type"] == "Succeeded", status["conditions"][-1]
        assert status["trialsSucceeded"] == experiment["spec"]["maxTrialCount"]
        assert float(status["currentOptimalTrial"]["observation"]["metrics"][0]["latest"]) >= 0.0
        shown = _kubectl("-n", NAMESPACE, "get", "exp", name)
        assert "Succeeded" in shown
    finally:
        _kubectl("-n", NAMESPACE, "delete", "experiment", name, "--wait=true", "--timeout=300s", check=False)

    def nothing_left() -> bool:
        selector = f"katib.kubeflow.org/experiment={name}"
        trials = custom.list_namespaced_custom_object("kubeflow.org", "v1beta1", NAMESPACE, "trials",
                                                      label_selector=selector)["items"]
        jobs = client.BatchV1Api().list_namespaced_job(NAMESPACE, label_selector=selector).items
        deployments = client.AppsV1Api().list_namespaced_deployment(NAMESPACE, label_selector=selector).items
        return not trials and not jobs and not deployments

    _wait("the experiment's objects to be deleted", nothing_left, timeout=300)
    _kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


# A learning curve whose level is the parameter: step i of 8 prints acc=level*i/8, 3 s apart
# (the controller reads the log every KUBENAS_RECONCILE_INTERVAL, 3 s by default).
_CURVE = ("import sys, time\n"
          "level = float(sys.argv[1])\n"
          "for i in range(1, 9):\n"
          "    time.sleep(3)\n"
          "    print(f'step={i} acc={level * i / 8}', flush=True)\n")


def _early_stopping_experiment() -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "e2e-medianstop"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "acc"},
            "algorithm": {"algorithmName": "grid"},
            "earlyStopping": {"algorithmName": "medianstop", "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}]},
            "parallelTrialCount": 1, "maxTrialCount": 4, "maxFailedTrialCount": 1,
            "parameters": [{"name": "level", "parameterType": "categorical",
                            "feasibleSpace": {"list": ["0.9", "0.8", "0.2", "0.85"]}}],
            "trialTemplate": {
                "primaryContainerName": "training",
                "trialParameters": [{"name": "level", "reference": "level"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"backoffLimit": 0, "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{
                        "name": "training", "image": "python:3.11-slim",
                        "command": ["python", "-c", _CURVE, "${trialParameters.level}"],
                        "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}}}]}}}},
            },
        },
    }


def test_medianstop_early_stops_the_bad_trial_in_the_cluster(tmp_path: Path) -> None:
    """Grid order 0.9, 0.8 (succeed; the rule is then acc < 0.1275 from report 2), 0.2 (its
    best after 2 reports is 0.05: stopped, its Job deleted), 0.85 (stays above: succeeds)."""
    client = _cluster()
    _kubectl("apply", "--server-side", "-k", str(ROOT / "manifests" / "overlays" / "default"))
    _kubectl("-n", "kubenas-system", "rollout", "status", "deployment/kubenas-controller", f"--timeout={int(TIMEOUT_S)}s")
    _kubectl("-n", "kubenas-system", "rollout", "status", "deployment/kubenas-db-manager", f"--timeout={int(TIMEOUT_S)}s")
    _kubectl("create", "namespace", NAMESPACE, check=False)
    custom = client.CustomObjectsApi()
    experiment = _early_stopping_experiment()
    name = experiment["metadata"]["name"]
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    try:
        _kubectl("-n", NAMESPACE, "apply", "-f", str(path))

        def finished() -> dict[str, Any] | None:
            body = custom.get_namespaced_custom_object("kubeflow.org", "v1beta1", NAMESPACE, "experiments", name)
            conditions = {c["type"] for c in (body.get("status") or {}).get("conditions", []) if c["status"] == "True"}
            return body if {"Succeeded", "Failed"} & conditions else None

        status = _wait(f"experiment {name} to finish", finished)["status"]
        assert status["conditions"][-1]["type"] == "Succeeded", status["conditions"][-1]
        assert (status["trialsSucceeded"], status["trialsEarlyStopped"]) == (3, 1), status
        trials = custom.list_namespaced_custom_object("kubeflow.org", "v1beta1", NAMESPACE, "trials",
                                                      label_selector=f"katib.kubeflow.org/experiment={name}")["items"]
        (stopped,) = [t for t in trials if t["status"]["conditions"][-1]["type"] == "EarlyStopped"]
        assert [a["value"] for a in stopped["spec"]["parameterAssignments"]] == ["0.2"]
        (rule,) = stopped["spec"]["earlyStoppingRules"]
        assert (rule["name"], rule["comparison"], rule["startStep"]) == ("acc", "less", 2)
        assert abs(float(rule["value"]) - 0.1275) < 1e-9
        acc = stopped["status"]["observation"]["metrics"][0]
        assert 0.05 <= float(acc["max"]) < 0.2  # stopped after 2 or a few more of its 8 reports
        assert client.BatchV1Api().list_namespaced_job(
            NAMESPACE, label_selector=f"katib.kubeflow.org/trial={stopped['metadata']['name']}").items == []
    finally:
        _kubectl("-n", NAMESPACE, "delete", "experiment", name, "--wait=true", "--timeout=300s", check=False)
