"""End to end on a real cluster (marker e2e): install kubenas, run a CPU experiment, tear down.

Runs against whatever KUBECONFIG points to; skipped, with the reason, when no cluster
answers. Needs the image `kubenas/suggestion:0.1.0` available to the cluster (for kind:
`docker build -f Dockerfile.suggestion -t kubenas/suggestion:0.1.0 . && kind load docker-image
kubenas/suggestion:0.1.0`) and `kubectl` on PATH. See README.md.
"""

from __future__ import annotations

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
