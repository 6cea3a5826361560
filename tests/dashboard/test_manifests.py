"""manifests/overlays/dashboard: valid objects, read-only RBAC on the three kinds only, a
hardened pod, and a command line the real CLI accepts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.kube.test_manifests import _assert_restricted

OVERLAY = Path(__file__).resolve().parents[2] / "manifests" / "overlays" / "dashboard"


def _objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((OVERLAY / "dashboard.yaml").read_text()) if d]


@pytest.mark.parametrize("obj", _objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_objects_validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, "1.30", strict=True)


def test_rbac_is_get_list_watch_on_the_three_kinds_and_nothing_else() -> None:
    [role] = [o for o in _objects() if o["kind"] in ("ClusterRole", "Role")]
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert granted == {("kubeflow.org", r, v) for r in ("experiments", "suggestions", "trials")
                       for v in ("get", "list", "watch")}
    [binding] = [o for o in _objects() if o["kind"] == "ClusterRoleBinding"]
    deployment = next(o for o in _objects() if o["kind"] == "Deployment")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": "kubenas-system",
                                    "name": deployment["spec"]["template"]["spec"]["serviceAccountName"]}]


def test_pod_is_non_root_with_a_read_only_root_and_serves_its_port() -> None:
    deployment = next(o for o in _objects() if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    _assert_restricted(pod)
    [container] = pod["containers"]
    args = container["args"]
    assert args[:2] == ["dashboard", "--cluster"] and args[args.index("--port") + 1] == "8080"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    service = next(o for o in _objects() if o["kind"] == "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_cli_accepts_the_container_command_line() -> None:
    from typer.main import get_command

    from kubenas_cli.app import app

    deployment = next(o for o in _objects() if o["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    command = get_command(app)
    context = command.make_context("kubenas", list(args), resilient_parsing=True)
    sub = command.get_command(context, args[0])  # type: ignore[attr-defined]
    parsed = sub.make_context(args[0], list(args[1:]))
    assert parsed.params["cluster"] is True and parsed.params["db_manager"] == "kubenas-db-manager.kubenas-system:6789"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with built-in kustomize) is not installed")
def test_overlay_adds_the_dashboard_to_the_base() -> None:
    built = subprocess.run(["kubectl", "kustomize", str(OVERLAY)], check=False, capture_output=True, text=True,
                           timeout=60)
    assert built.returncode == 0, built.stderr
    kinds = {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(built.stdout) if o}
    assert {("Deployment", "kubenas-dashboard"), ("Service", "kubenas-dashboard"),
            ("Deployment", "kubenas-controller")} <= kinds
