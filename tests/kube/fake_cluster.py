"""FakeKubeApi: an in-memory stand-in for the Kubernetes API server, garbage collector and
kubelet, because none can run here. Everything else in these tests is real: the reconcile
steps, the suggestion gRPC server, the DBManager over SQLite, and the trial programs, which
the fake kubelet runs as real local processes (the primary container's command and args,
as rendered from the trialTemplate) and whose stdout becomes the pod log."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from controller.template import remap_path

Key = tuple[str, str, str, str]


def _copied(obj: Any) -> Any:
    """A copy as a client gets it: what the API server stored, serialized and read back (also
    several times faster than copy.deepcopy, which matters for 10,000-trial listings)."""
    return json.loads(json.dumps(obj))


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = _copied(value)


class FakeKubeApi:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.created: list[Key] = []
        self._uids = itertools.count(1)
        self._clock = itertools.count(1)
        self._owned: dict[str, list[Key]] = {}  # owner uid -> keys of what it owns

    # --- the adapter's interface -------------------------------------------------------
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((api_version, kind, namespace, name))
        return _copied(obj) if obj else None

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        if key not in self.objects:
            stored = _copied(obj)
            stored["metadata"]["uid"] = f"uid-{next(self._uids)}"
            stored["metadata"]["creationTimestamp"] = f"2026-01-01T00:00:{next(self._clock) % 60:02d}Z"
            self.objects[key] = stored
            self.created.append(key)
            for ref in stored["metadata"].get("ownerReferences", []):
                self._owned.setdefault(ref["uid"], []).append(key)
        return _copied(self.objects[key])

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        obj = self.objects.pop((api_version, kind, namespace, name), None)
        if obj is None:
            return
        # The garbage collector: owned objects go too.
        for key in self._owned.pop(obj["metadata"]["uid"], []):
            if key in self.objects:
                self.delete(*key)

    def list_objects(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        label, _, value = label_selector.partition("=")
        return [_copied(o) for (av, k, ns, _), o in self.objects.items()
                if (av, k, ns) == (api_version, kind, namespace) and o["metadata"].get("labels", {}).get(label) == value]

    def list_all(self, api_version: str, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        return [_copied(o) for (av, k, ns, _), o in self.objects.items()
                if (av, k) == (api_version, kind) and namespace in (None, ns)]

    def set_finalizers(self, kind: str, namespace: str, name: str, finalizers: list[str]) -> None:
        obj = self.objects.get(("kubeflow.org/v1beta1", kind, namespace, name))
        if obj is not None:
            obj["metadata"]["finalizers"] = list(finalizers)

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        obj = self.objects[("kubeflow.org/v1beta1", kind, namespace, name)]
        obj.setdefault("status", {})
        _merge(obj["status"], status)

    def patch_spec(self, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        _merge(self.objects[("kubeflow.org/v1beta1", kind, namespace, name)]["spec"], spec)

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        obj = self.objects.get(("v1", "ConfigMap", namespace, name))
        return dict(obj["data"]) if obj else None

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return self.list_objects("v1", "Pod", namespace, label_selector)

    def pod_log(self, namespace: str, pod: str, container: str | None) -> str:
        return self.logs[(namespace, f"{pod}/{container}")]

    # --- what the cluster would do by itself ------------------------------------------
    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [_copied(o) for (_, k, _, _), o in self.objects.items() if k == kind]

    def make_deployments_ready(self) -> None:
        for (_, kind, _, _), obj in self.objects.items():
            if kind == "Deployment":
                obj["status"] = {"readyReplicas": 1}

    def run_jobs(self, env: dict[str, str] | None = None, limit: int | None = None,
                 claims: dict[str, Path] | None = None) -> int:
        """Run each unstarted Job's primary container to completion (at most `limit` of them,
        oldest first); return how many ran. `claims` maps PVC names to local directories: a
        volumeMount of such a claim is the directory `<dir>/<subPath>`, which the process sees
        where its command, args and env name the mountPath (no mounts without a kubelet)."""
        ran = 0
        for (_, kind, ns, name), job in list(self.objects.items()):
            if kind != "Job" or job.get("status"):
                continue
            if limit is not None and ran >= limit:
                break
            template = job["spec"]["template"]
            container = template["spec"]["containers"][0]
            argv = [sys.executable if a == "python" else a for a in container.get("command", []) + container.get("args", [])]
            container_env = {e["name"]: e["value"] for e in container.get("env", [])}
            argv, container_env = _mounted(template["spec"], container, claims or {}, argv, container_env)
            environment = {**os.environ, **(env or {}), **container_env}
            done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, env=environment)
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{name}-pod", "namespace": ns, "labels": dict(template["metadata"]["labels"]),
                                "ownerReferences": [{"uid": job["metadata"]["uid"]}]},
                   "status": {"phase": "Succeeded" if done.returncode == 0 else "Failed"}}
            self.create(pod)
            self.logs[(ns, f"{name}-pod/{container['name']}")] = done.stdout
            kind_ = "Complete" if done.returncode == 0 else "Failed"
            job["status"] = {"conditions": [{"type": kind_, "status": "True"}]}
            ran += 1
        return ran


def _mounted(pod: dict[str, Any], container: dict[str, Any], claims: dict[str, Path], argv: list[str],
             env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    volumes = {v["name"]: claims[v["persistentVolumeClaim"]["claimName"]] for v in pod.get("volumes", [])
               if v.get("persistentVolumeClaim", {}).get("claimName") in claims}
    for mount in container.get("volumeMounts", []):
        if mount["name"] in volumes:
            local = volumes[mount["name"]] / mount.get("subPath", "")
            local.mkdir(parents=True, exist_ok=True)  # as the kubelet makes a missing subPath
            argv, env = remap_path(argv, mount["mountPath"], str(local)), remap_path(env, mount["mountPath"], str(local))
    return argv, env


def start_pod(api: FakeKubeApi, job_name: str, namespace: str, log_so_far: str) -> None:
    """The fake kubelet starts a Job's pod: phase Running, the log written so far."""
    job = api.objects[("batch/v1", "Job", namespace, job_name)]
    template = job["spec"]["template"]
    api.create({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{job_name}-pod", "namespace": namespace,
                             "labels": dict(template["metadata"]["labels"]),
                             "ownerReferences": [{"uid": job["metadata"]["uid"]}]},
                "status": {"phase": "Running"}})
    container = template["spec"]["containers"][0]["name"]
    api.logs[(namespace, f"{job_name}-pod/{container}")] = log_so_far
