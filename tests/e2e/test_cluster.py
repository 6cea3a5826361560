"""End to end on a real cluster (marker e2e): install kubenas, run CPU experiments, tear down.

Runs against whatever KUBECONFIG points to; skipped, with the reason, when no cluster
answers. Needs the image `kubenas/suggestion:0.1.0` available to the cluster (for kind:
`docker build -f Dockerfile.suggestion -t kubenas/suggestion:0.1.0 . && kind load docker-image
kubenas/suggestion:0.1.0`) and `kubectl` on PATH. See README.md. Each test installs (an
unchanged install is a no-op) and works in a namespace of its own, deleted (and waited for)
at its end, so no test meets another's namespace while it terminates.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE_PREFIX = os.environ.get("KUBENAS_E2E_NAMESPACE", "kubenas-e2e")
TIMEOUT_S = float(os.environ.get("KUBENAS_E2E_TIMEOUT", "600"))
OVERLAY = ROOT / "manifests" / "overlays" / "default"


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


def _wait(what: str, predicate: Any, timeout: float = TIMEOUT_S, poll: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _install() -> None:
    _kubectl("apply", "--server-side", "-k", str(OVERLAY))
    _kubectl("-n", "kubenas-system", "rollout", "status", "deployment/kubenas-controller", f"--timeout={int(TIMEOUT_S)}s")
    _kubectl("-n", "kubenas-system", "rollout", "status", "deployment/kubenas-db-manager", f"--timeout={int(TIMEOUT_S)}s")


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of the test's own, deleted at its end (waiting until it is gone)."""
    _cluster()
    name = f"{NAMESPACE_PREFIX}-{uuid.uuid4().hex[:6]}"
    _kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        _kubectl("delete", "namespace", name, "--wait=true", f"--timeout={int(TIMEOUT_S)}s", check=False)


def _finished(custom: Any, namespace: str, name: str) -> dict[str, Any] | None:
    body = custom.get_namespaced_custom_object("kubeflow.org", "v1beta1", namespace, "experiments", name)
    conditions = {c["type"] for c in (body.get("status") or {}).get("conditions", []) if c["status"] == "True"}
    return body if {"Succeeded", "Failed"} & conditions else None


def _trials(custom: Any, namespace: str, experiment: str) -> list[dict[str, Any]]:
    return custom.list_namespaced_custom_object("kubeflow.org", "v1beta1", namespace, "trials",
                                                label_selector=f"katib.kubeflow.org/experiment={experiment}")["items"]


def test_experiment_runs_to_succeeded_and_deletes_cleanly(namespace: str) -> None:
    client = _cluster()
    _install()
    custom = client.CustomObjectsApi()
    experiment = yaml.safe_load((ROOT / "examples" / "cluster-random.yaml").read_text())
    name = experiment["metadata"]["name"]
    try:
        _kubectl("-n", namespace, "apply", "-f", str(ROOT / "examples" / "cluster-random.yaml"))

        def finished() -> dict[str, Any] | None:
            body = custom.get_namespaced_custom_object("kubeflow.org", "v1beta1", namespace, "experiments", name)
            conditions = {c["type"]: c for c in (body.get("status") or {}).get("conditions", []) if c["status"] == "True"}
            return body if {"Succeeded", "Failed"} & set(conditions) else None

        body = _wait(f"experiment {name} to finish", finished)
        status = body["status"]
        assert status["conditions"][-1]["type"] == "Succeeded", status["conditions"][-1]
        assert status["trialsSucceeded"] == experiment["spec"]["maxTrialCount"]
        assert float(status["currentOptimalTrial"]["observation"]["metrics"][0]["latest"]) >= 0.0
        shown = _kubectl("-n", namespace, "get", "exp", name)
        assert "Succeeded" in shown
    finally:
        _kubectl("-n", namespace, "delete", "experiment", name, "--wait=true", "--timeout=300s", check=False)

    def nothing_left() -> bool:
        selector = f"katib.kubeflow.org/experiment={name}"
        trials = custom.list_namespaced_custom_object("kubeflow.org", "v1beta1", namespace, "trials",
                                                      label_selector=selector)["items"]
        jobs = client.BatchV1Api().list_namespaced_job(namespace, label_selector=selector).items
        deployments = client.AppsV1Api().list_namespaced_deployment(namespace, label_selector=selector).items
        return not trials and not jobs and not deployments

    _wait("the experiment's objects to be deleted", nothing_left, timeout=300)


# A learning curve whose level is the parameter: step i of 8 prints acc=level*i/8, 3 s apart
# (the controller reads a running trial's log every KUBENAS_RECONCILE_INTERVAL, 3 s by default).
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


def test_medianstop_early_stops_the_bad_trial_in_the_cluster(tmp_path: Path, namespace: str) -> None:
    """Grid order 0.9, 0.8 (succeed), 0.2 (its best after 2 reports is 0.05: stopped, its Job
    deleted), 0.85 (stays above: succeeds). The rule, as Katib's medianstop defines it: each
    succeeded trial's average over its first start_step=2 reports (0.9: (0.1125 + 0.225) / 2 =
    0.16875; 0.8: (0.1 + 0.2) / 2 = 0.15), then their median, which for two trials is also
    Katib's mean: acc < 0.159375 from report 2 on."""
    client = _cluster()
    _install()
    custom = client.CustomObjectsApi()
    experiment = _early_stopping_experiment()
    name = experiment["metadata"]["name"]
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    try:
        _kubectl("-n", namespace, "apply", "-f", str(path))

        def finished() -> dict[str, Any] | None:
            body = custom.get_namespaced_custom_object("kubeflow.org", "v1beta1", namespace, "experiments", name)
            conditions = {c["type"] for c in (body.get("status") or {}).get("conditions", []) if c["status"] == "True"}
            return body if {"Succeeded", "Failed"} & conditions else None

        status = _wait(f"experiment {name} to finish", finished)["status"]
        assert status["conditions"][-1]["type"] == "Succeeded", status["conditions"][-1]
        assert (status["trialsSucceeded"], status["trialsEarlyStopped"]) == (3, 1), status
        trials = custom.list_namespaced_custom_object("kubeflow.org", "v1beta1", namespace, "trials",
                                                      label_selector=f"katib.kubeflow.org/experiment={name}")["items"]
        (stopped,) = [t for t in trials if t["status"]["conditions"][-1]["type"] == "EarlyStopped"]
        assert [a["value"] for a in stopped["spec"]["parameterAssignments"]] == ["0.2"]
        (rule,) = stopped["spec"]["earlyStoppingRules"]
        assert (rule["name"], rule["comparison"], rule["startStep"]) == ("acc", "less", 2)
        assert abs(float(rule["value"]) - 0.159375) < 1e-9
        acc = stopped["status"]["observation"]["metrics"][0]
        assert 0.05 <= float(acc["max"]) < 0.2  # stopped after 2 or a few more of its 8 reports
        assert client.BatchV1Api().list_namespaced_job(
            namespace, label_selector=f"katib.kubeflow.org/trial={stopped['metadata']['name']}").items == []
    finally:
        _kubectl("-n", namespace, "delete", "experiment", name, "--wait=true", "--timeout=300s", check=False)


# An instant trial: the loss of a point, printed at once.
_INSTANT = "import sys; x = float(sys.argv[1]); print(f'loss={(x - 0.5) ** 2}')"


def _burst_experiment(name: str, trials: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "7"}]},
            "parallelTrialCount": 20, "maxTrialCount": trials, "maxFailedTrialCount": 1,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2.0", "max": "2.0"}}],
            "trialTemplate": {
                "primaryContainerName": "training",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"backoffLimit": 0, "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{
                        "name": "training", "image": "python:3.11-slim",
                        "command": ["python", "-c", _INSTANT, "${trialParameters.x}"],
                        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]}}}},
            },
        },
    }


def _run(custom: Any, tmp_path: Path, namespace: str, experiment: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Apply `experiment`; return its body once finished and the seconds from apply to finish."""
    path = tmp_path / f"{experiment['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(experiment))
    started = time.monotonic()
    _kubectl("-n", namespace, "apply", "-f", str(path))
    body = _wait(f"experiment {experiment['metadata']['name']} to finish",
                 lambda: _finished(custom, namespace, experiment["metadata"]["name"]), poll=0.5)
    return body, time.monotonic() - started


def test_a_burst_of_200_instant_trials(tmp_path: Path, namespace: str) -> None:
    """parallelTrialCount 20, 200 trials that exit at once: no point suggested twice, every trial
    Succeeded, the whole experiment in under 60 s (issue 15 saw 1 trial/s and duplicates).
    The python:3.11-slim image should be on the nodes already (the first test pulls it)."""
    client = _cluster()
    _install()
    custom = client.CustomObjectsApi()
    body, seconds = _run(custom, tmp_path, namespace, _burst_experiment("e2e-burst", 200))
    status = body["status"]
    assert status["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached", status["conditions"][-1]
    trials = _trials(custom, namespace, "e2e-burst")
    assert len(trials) == status["trialsSucceeded"] == 200, status
    assert {t["status"]["conditions"][-1]["type"] for t in trials} == {"Succeeded"}
    points = [tuple((a["name"], a["value"]) for a in t["spec"]["parameterAssignments"]) for t in trials]
    assert len(set(points)) == 200, f"{200 - len(set(points))} points were suggested twice"
    assert seconds < 60, f"200 instant trials took {seconds:.0f} s"


def test_uninstall_right_after_deleting_a_big_experiment(tmp_path: Path, namespace: str) -> None:
    """The README's teardown, right after a 200-trial experiment: delete the experiments (the
    controller deletes their observation logs), then `kubectl delete -k` — which must finish,
    with the CRDs and kubenas-system gone. The controller is uninstalled while the garbage
    collector may still be deleting the experiment's Trials and Jobs: none of them waits for it."""
    client = _cluster()
    _install()
    custom = client.CustomObjectsApi()
    _run(custom, tmp_path, namespace, _burst_experiment("e2e-big", 200))
    _kubectl("-n", namespace, "delete", "experiments", "--all", "--wait=true", "--timeout=120s")
    started = time.monotonic()
    done = subprocess.run(["kubectl", "delete", "-k", str(OVERLAY), "--wait=true", "--timeout=300s"],
                          check=False, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, f"uninstall failed after {time.monotonic() - started:.0f} s: {done.stderr}"
    for crd in ("experiments", "suggestions", "trials"):
        assert _kubectl("get", "crd", f"{crd}.kubeflow.org", "--ignore-not-found", "-o", "name").strip() == ""
    assert _kubectl("get", "namespace", "kubenas-system", "--ignore-not-found", "-o", "name").strip() == ""
    _wait("the experiment's Jobs to be garbage collected", lambda: not _kubectl(
        "-n", namespace, "get", "jobs", "-l", "katib.kubeflow.org/experiment=e2e-big", "-o", "name").strip(),
        timeout=300)
