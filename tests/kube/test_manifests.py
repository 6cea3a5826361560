"""manifests/: every kustomization resolves, every object validates against the Kubernetes
schemas, the controller's RBAC is exactly what the adapter uses, and pods run hardened."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from controller.kube.adapter import REQUIRED_PERMISSIONS

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.parent for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base_objects() -> list[dict[str, Any]]:
    """Resolve base/kustomization.yaml's resources by hand (kustomize may not be installed)."""
    base = MANIFESTS / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    objects = []
    for resource in kustomization["resources"]:
        for obj in _load(base / resource):
            if obj["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
                assert obj["metadata"].get("namespace", kustomization["namespace"]) == kustomization["namespace"]
            objects.append(obj)
    return objects


def test_base_resources_are_all_listed() -> None:
    base = MANIFESTS / "base"
    listed = set(yaml.safe_load((base / "kustomization.yaml").read_text())["resources"])
    present = {str(p.relative_to(base)) for p in base.rglob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("obj", _base_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_base_object_validates(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, "1.30", strict=True)


def test_overlay_files_exist() -> None:
    for overlay in OVERLAYS:
        kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        for resource in kustomization.get("resources", []):
            assert (overlay / resource).exists(), (overlay, resource)
        for patch in kustomization.get("patches", []):
            if "path" in patch:
                assert (overlay / patch["path"]).exists(), (overlay, patch)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with built-in kustomize) is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_builds_and_validates(overlay: Path) -> None:
    built = subprocess.run(["kubectl", "kustomize", str(overlay)], check=False, capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    objects = [d for d in yaml.safe_load_all(built.stdout) if d]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.30", strict=True)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", "kubenas-controller") in kinds and ("Deployment", "kubenas-db-manager") in kinds
    db = next(o for o in objects if o["metadata"]["name"] == "kubenas-db-manager" and o["kind"] == "Deployment")
    args = db["spec"]["template"]["spec"]["containers"][0]["args"]
    if overlay.name == "postgres":
        assert ("PersistentVolumeClaim", "kubenas-db") not in kinds
        assert "$(KUBENAS_DB_URL)" in args
    else:
        assert ("PersistentVolumeClaim", "kubenas-db") in kinds
        assert args[args.index("--db") + 1].startswith("sqlite:////data/")


def _deployments() -> list[dict[str, Any]]:
    return [o for o in _base_objects() if o["kind"] == "Deployment"]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda o: o["metadata"]["name"])
def test_deployments_run_as_non_root_with_read_only_root(deployment: dict[str, Any]) -> None:
    _assert_restricted(deployment["spec"]["template"]["spec"])


def _assert_restricted(pod: dict[str, Any]) -> None:
    """The "restricted" Pod Security Standard (the namespace enforces it) plus a read-only root."""
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "limits" in container["resources"]


def _granted() -> set[tuple[str, str, str]]:
    role = next(o for o in _base_objects() if o["kind"] == "ClusterRole")
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_rbac_is_exactly_what_the_controller_uses() -> None:
    assert _granted() == set(REQUIRED_PERMISSIONS)


def test_controller_runs_under_the_bound_service_account() -> None:
    objects = _base_objects()
    binding = next(o for o in objects if o["kind"] == "ClusterRoleBinding")
    controller = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "kubenas-controller")
    account = controller["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "kubenas-system"}]
    assert binding["roleRef"]["name"] == next(o for o in objects if o["kind"] == "ClusterRole")["metadata"]["name"]


def test_rendered_suggestion_deployment_is_hardened_too() -> None:
    from controller.kube.config import SuggestionConfig
    from controller.kube.render import render_suggestion_deployment

    suggestion = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion",
                  "metadata": {"name": "e", "namespace": "ns", "uid": "u"},
                  "spec": {"algorithm": {"algorithmName": "enas"}, "requests": 1, "resumePolicy": "FromVolume"}}
    deployment = render_suggestion_deployment(suggestion, SuggestionConfig(algorithm="enas", image="img:1"))
    _assert_restricted(deployment["spec"]["template"]["spec"])
