"""The controller's ConfigMap, in Katib's `katib-config` shape.

Two shapes are read, so a ConfigMap copied from either Katib generation works:
- current Katib: key `katib-config.yaml` holding a `KatibConfig` document whose
  `runtime.suggestions` is a list of `{algorithmName, image, imagePullPolicy, resources,
  serviceAccountName, volumeMountPath, persistentVolumeClaimSpec}`;
- older Katib: key `suggestion` holding JSON `{"<algorithm>": {"image": ..., ...}}`.

kubenas adds one optional key under `init.controller` (or the top-level key
`db-manager-address`): `dbManagerAddress`, the DBManager Service trials push metrics to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = [
    "DEFAULT_DB_MANAGER_ADDRESS",
    "DEFAULT_MOUNT_PATH",
    "ConfigError",
    "ControllerConfig",
    "SuggestionConfig",
    "parse_config_map",
]

DEFAULT_DB_MANAGER_ADDRESS = "kubenas-db-manager.kubenas-system:6789"
# Katib mounts suggestion state here; kept so Katib-shaped configs mean the same thing.
DEFAULT_MOUNT_PATH = "/opt/katib/data"
_DEFAULT_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "100Mi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
_DEFAULT_PVC = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


class ConfigError(ValueError):
    """The ConfigMap is malformed, or names no image for an algorithm."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"katib-config {field}: invalid value {value!r}: {allowed}")


@dataclass(frozen=True)
class SuggestionConfig:
    """How to run the suggestion server of one algorithm."""

    algorithm: str
    image: str
    image_pull_policy: str = "IfNotPresent"
    resources: Mapping[str, Any] = field(default_factory=lambda: dict(_DEFAULT_RESOURCES))
    service_account_name: str | None = None
    volume_mount_path: str = DEFAULT_MOUNT_PATH
    pvc_spec: Mapping[str, Any] = field(default_factory=lambda: dict(_DEFAULT_PVC))


@dataclass(frozen=True)
class ControllerConfig:
    suggestions: Mapping[str, SuggestionConfig]
    db_manager_address: str = DEFAULT_DB_MANAGER_ADDRESS

    def suggestion(self, algorithm: str) -> SuggestionConfig:
        """The entry for `algorithm`; ConfigError naming the configured ones otherwise."""
        try:
            return self.suggestions[algorithm]
        except KeyError:
            known = ", ".join(sorted(self.suggestions)) or "none"
            raise ConfigError(
                "runtime.suggestions", algorithm, f"no image configured for this algorithm; configured: {known}"
            ) from None


def _entry(algorithm: str, raw: Any, where: str) -> SuggestionConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(where, raw, "must be a mapping with at least `image`")
    image = raw.get("image")
    if not isinstance(image, str) or not image:
        raise ConfigError(f"{where}.image", image, "a non-empty image reference is required")
    policy = raw.get("imagePullPolicy", "IfNotPresent")
    if policy not in _PULL_POLICIES:
        raise ConfigError(f"{where}.imagePullPolicy", policy, f"one of {', '.join(_PULL_POLICIES)}")
    resources = raw.get("resources", _DEFAULT_RESOURCES)
    if not isinstance(resources, Mapping) or set(resources) - {"requests", "limits"}:
        raise ConfigError(f"{where}.resources", resources, "a mapping with `requests` and/or `limits`")
    pvc = raw.get("persistentVolumeClaimSpec", _DEFAULT_PVC)
    if not isinstance(pvc, Mapping):
        raise ConfigError(f"{where}.persistentVolumeClaimSpec", pvc, "a PersistentVolumeClaimSpec mapping")
    mount = raw.get("volumeMountPath", DEFAULT_MOUNT_PATH)
    if not isinstance(mount, str) or not mount.startswith("/"):
        raise ConfigError(f"{where}.volumeMountPath", mount, "an absolute path")
    account = raw.get("serviceAccountName")
    return SuggestionConfig(
        algorithm=algorithm, image=image, image_pull_policy=policy, resources=dict(resources),
        service_account_name=account or None, volume_mount_path=mount, pvc_spec=dict(pvc),
    )


def _from_katib_config(text: str) -> ControllerConfig:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("katib-config.yaml", text[:60], f"valid YAML ({exc})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError("katib-config.yaml", doc, "a KatibConfig mapping")
    runtime = doc.get("runtime") or {}
    items = runtime.get("suggestions") or [] if isinstance(runtime, Mapping) else None
    if not isinstance(items, list):
        raise ConfigError("runtime.suggestions", items, "a list of {algorithmName, image, ...}")
    suggestions: dict[str, SuggestionConfig] = {}
    for i, raw in enumerate(items):
        where = f"runtime.suggestions[{i}]"
        name = raw.get("algorithmName") if isinstance(raw, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.algorithmName", name, "a non-empty algorithm name")
        if name in suggestions:
            raise ConfigError(f"{where}.algorithmName", name, "each algorithm may appear once")
        suggestions[name] = _entry(name, raw, where)
    controller = (doc.get("init") or {}).get("controller") or {}
    address = controller.get("dbManagerAddress", DEFAULT_DB_MANAGER_ADDRESS)
    return ControllerConfig(suggestions=suggestions, db_manager_address=address)


def _from_legacy(data: Mapping[str, str]) -> ControllerConfig:
    try:
        doc = json.loads(data["suggestion"])
    except json.JSONDecodeError as exc:
        raise ConfigError("suggestion", data["suggestion"][:60], f"valid JSON ({exc})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError("suggestion", doc, 'a JSON object {"<algorithm>": {"image": ...}}')
    suggestions = {name: _entry(name, raw, f"suggestion.{name}") for name, raw in doc.items()}
    address = data.get("db-manager-address", DEFAULT_DB_MANAGER_ADDRESS)
    return ControllerConfig(suggestions=suggestions, db_manager_address=address)


def parse_config_map(data: Mapping[str, str] | None) -> ControllerConfig:
    """Parse a ConfigMap's `data`. Called on every Suggestion reconcile (the map is editable)."""
    data = data or {}
    if "katib-config.yaml" in data:
        return _from_katib_config(data["katib-config.yaml"])
    if "suggestion" in data:
        return _from_legacy(data)
    raise ConfigError("data", sorted(data), "needs key `katib-config.yaml` (KatibConfig) or `suggestion` (JSON)")
