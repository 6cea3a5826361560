"""KubeApi, the one adapter to the Kubernetes API, through the real kubernetes client over
HTTP to FakeApiServer (fake_apiserver.py: no real API server can run here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from controller.kube.adapter import KubeApi
from tests.kube.fake_apiserver import FakeApiServer

EXP = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
       "metadata": {"name": "e1", "namespace": "ns", "labels": {"team": "a"}}, "spec": {"maxTrialCount": 3}}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the dynamic client's discovery cache file
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with FakeApiServer() as fake:
        yield fake


@pytest.fixture
def api(server: FakeApiServer) -> KubeApi:
    configuration = client.Configuration()
    configuration.host = server.url
    return KubeApi(client.ApiClient(configuration))


def test_create_is_idempotent_and_get_lists_by_label(api: KubeApi, server: FakeApiServer) -> None:
    created = api.create(EXP)
    again = api.create(EXP)
    assert created["metadata"]["uid"] == again["metadata"]["uid"]
    assert api.get("kubeflow.org/v1beta1", "Experiment", "ns", "e1")["spec"] == {"maxTrialCount": 3}
    assert api.get("kubeflow.org/v1beta1", "Experiment", "ns", "missing") is None
    assert [o["metadata"]["name"] for o in api.list_objects("kubeflow.org/v1beta1", "Experiment", "ns", "team=a")] == ["e1"]
    assert api.list_objects("kubeflow.org/v1beta1", "Experiment", "ns", "team=b") == []


def test_status_and_spec_patches_are_merge_patches_on_the_right_paths(api: KubeApi, server: FakeApiServer) -> None:
    api.create(EXP)
    api.patch_status("Experiment", "ns", "e1", {"trials": 2, "conditions": [{"type": "Running", "status": "True"}]})
    api.patch_spec("Experiment", "ns", "e1", {"parallelTrialCount": 2})
    obj = api.get("kubeflow.org/v1beta1", "Experiment", "ns", "e1")
    assert obj["status"]["trials"] == 2 and obj["spec"] == {"maxTrialCount": 3, "parallelTrialCount": 2}
    patches = [(path, ctype) for method, path, ctype in server.requests if method == "PATCH"]
    assert patches == [("/apis/kubeflow.org/v1beta1/namespaces/ns/experiments/e1/status", "application/merge-patch+json"),
                       ("/apis/kubeflow.org/v1beta1/namespaces/ns/experiments/e1", "application/merge-patch+json")]


def test_built_in_kinds_delete_config_maps_pods_and_logs(api: KubeApi, server: FakeApiServer) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "t1", "namespace": "ns"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}}}}
    api.create(job)
    assert api.get("batch/v1", "Job", "ns", "t1")["spec"]["template"]["spec"]["containers"][0]["name"] == "c"
    api.delete("batch/v1", "Job", "ns", "t1")
    api.delete("batch/v1", "Job", "ns", "t1")  # already gone: fine
    assert api.get("batch/v1", "Job", "ns", "t1") is None
    assert ("DELETE", "/apis/batch/v1/namespaces/ns/jobs/t1", "application/json") in server.requests
    assert api.config_map("ns", "katib-config") is None
    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "katib-config", "namespace": "ns"},
                "data": {"k": "v"}})
    assert api.config_map("ns", "katib-config") == {"k": "v"}
    api.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "ns",
                                                               "labels": {"katib.kubeflow.org/trial": "t1"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]}, "status": {"phase": "Running"}})
    server.logs[("ns", "p1", "c")] = "accuracy=0.5\n"
    pods = api.list_pods("ns", "katib.kubeflow.org/trial=t1")
    assert [p["metadata"]["name"] for p in pods] == ["p1"] and pods[0]["status"]["phase"] == "Running"
    assert api.pod_log("ns", "p1", "c") == "accuracy=0.5\n"
