"""The one small adapter between the controller and the Kubernetes API.

Every object is a plain dict in and out; any kind is reached through the dynamic client, so
a trial may be a Job, a TFJob or any other kind the trialTemplate names. `REQUIRED_PERMISSIONS`
lists every (apiGroup, resource, verb) the controller uses, kopf's own included; the base
ClusterRole grants exactly these (a test checks).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["REQUIRED_PERMISSIONS", "KubeApi", "plural_of"]

log = logging.getLogger(__name__)

_CRD = ("experiments", "suggestions", "trials")
REQUIRED_PERMISSIONS: frozenset[tuple[str, str, str]] = frozenset(
    {("kubeflow.org", "experiments", v) for v in ("get", "list", "watch", "patch")}
    | {("kubeflow.org", r, v) for r in ("suggestions", "trials") for v in ("get", "list", "watch", "create", "patch", "delete")}
    | {("kubeflow.org", f"{r}/status", v) for r in _CRD for v in ("get", "patch")}
    | {("apps", "deployments", v) for v in ("get", "create", "delete")}
    | {("", r, v) for r in ("services", "persistentvolumeclaims") for v in ("get", "create", "delete")}
    | {("", "configmaps", "get")}
    | {("batch", "jobs", v) for v in ("get", "list", "watch", "create", "delete")}
    | {("", "pods", "list"), ("", "pods/log", "get")}
    # kopf posts events about the handled resources (its CRD/namespace scanning is off).
    | {("", "events", "create"), ("events.k8s.io", "events", "create")}
)

_PLURALS = {"Experiment": "experiments", "Suggestion": "suggestions", "Trial": "trials"}


def plural_of(kind: str) -> str:
    return _PLURALS[kind]


class KubeApi:
    """Create/get/list/delete any object, patch our resources' spec and status, read logs."""

    def __init__(self, api_client: Any = None) -> None:
        from kubernetes import client, dynamic

        self._client = api_client or client.ApiClient()
        self._dynamic = dynamic.DynamicClient(self._client)
        self._core = client.CoreV1Api(self._client)
        self._custom = client.CustomObjectsApi(self._client)

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj`; if it already exists return the live one (creation is idempotent)."""
        from kubernetes.dynamic.exceptions import ConflictError

        meta = obj["metadata"]
        resource = self._resource(obj["apiVersion"], obj["kind"])
        try:
            return resource.create(body=obj, namespace=meta.get("namespace")).to_dict()
        except ConflictError:
            live = self.get(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
            assert live is not None
            return live

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete with background propagation (owned objects go too); a missing object is fine."""
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            self._resource(api_version, kind).delete(
                name=name, namespace=namespace, body={"propagationPolicy": "Background"})
        except NotFoundError:
            pass

    def list_objects(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        items = self._resource(api_version, kind).get(namespace=namespace, label_selector=label_selector)
        return [item.to_dict() for item in items.items]

    def list_all(self, api_version: str, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of a kind in `namespace`, or in all namespaces when None."""
        items = self._resource(api_version, kind).get(namespace=namespace)
        return [item.to_dict() for item in items.items]

    def set_finalizers(self, kind: str, namespace: str, name: str, finalizers: list[str]) -> None:
        """Replace the finalizers of one of our resources; a missing object is fine."""
        from kubernetes.client.exceptions import ApiException

        try:
            self._custom.patch_namespaced_custom_object(
                "kubeflow.org", "v1beta1", namespace, plural_of(kind), name, {"metadata": {"finalizers": finalizers}})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._custom.patch_namespaced_custom_object_status(
            "kubeflow.org", "v1beta1", namespace, plural_of(kind), name, {"status": status})

    def patch_spec(self, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self._custom.patch_namespaced_custom_object(
            "kubeflow.org", "v1beta1", namespace, plural_of(kind), name, {"spec": spec})

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(self._core.read_namespaced_config_map(name, namespace).data or {})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        pods = self._core.list_namespaced_pod(namespace, label_selector=label_selector)
        return [self._client.sanitize_for_serialization(p) for p in pods.items]

    def pod_log(self, namespace: str, pod: str, container: str | None) -> str:
        return str(self._core.read_namespaced_pod_log(pod, namespace, container=container))
