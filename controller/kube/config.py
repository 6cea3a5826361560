"""The controller's ConfigMap, in Katib's `katib-config` shape.

Two shapes are read, so a ConfigMap copied from either Katib generation works:
- current Katib: key `katib-config.yaml` holding a `KatibConfig` document whose
  `runtime.suggestions` is a list of `{algorithmName, image, imagePullPolicy, resources,
  serviceAccountName, volumeMountPath, persistentVolumeClaimSpec}` and whose
  `runtime.earlyStoppings` is a list of `{algorithmName, image, ...}`;
- older Katib: key `suggestion` holding JSON `{"<algorithm>": {"image": ..., ...}}`, and
  key `early-stopping` holding JSON `{"<algorithm>": {"image": ...}}`.

An early-stopping entry says that this installation offers the algorithm (an experiment
naming another one fails, as in Katib). kubenas runs no separate early-stopping container:
the suggestion server serves EarlyStopping itself on port 6788, so the entry's image is
checked but not run.

kubenas adds one optional key under `init.controller` (or the top-level key
`db-manager-address`): `dbManagerAddress`, the DBManager Service trials push metrics to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from kubenas.errors import InvalidValue

__all__ = [
    "DEFAULT_DB_MANAGER_ADDRESS",
    "DEFAULT_MOUNT_PATH",
    "ConfigError",
    "ControllerConfig",
    "EarlyStoppingConfig",
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
T = TypeVar("T")


class ConfigError(InvalidValue):
    """The ConfigMap is malformed, or names no image for an algorithm."""

    where = "katib-config "


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
class EarlyStoppingConfig:
    """An early-stopping algorithm this installation offers."""

    algorithm: str
    image: str


@dataclass(frozen=True)
class ControllerConfig:
    suggestions: Mapping[str, SuggestionConfig]
    db_manager_address: str = DEFAULT_DB_MANAGER_ADDRESS
    early_stoppings: Mapping[str, EarlyStoppingConfig] = field(default_factory=dict)

    def early_stopping(self, algorithm: str) -> EarlyStoppingConfig:
        """The entry for early-stopping `algorithm`; ConfigError naming the configured ones otherwise."""
        try:
            return self.early_stoppings[algorithm]
        except KeyError:
            known = ", ".join(sorted(self.early_stoppings)) or "none"
            raise ConfigError("runtime.earlyStoppings", algorithm,
                              f"no entry for this early-stopping algorithm; configured: {known}") from None

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


def _early_stopping_entry(algorithm: str, raw: Any, where: str) -> EarlyStoppingConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(where, raw, "must be a mapping with at least `image`")
    image = raw.get("image")
    if not isinstance(image, str) or not image:
        raise ConfigError(f"{where}.image", image, "a non-empty image reference is required")
    return EarlyStoppingConfig(algorithm=algorithm, image=image)


def _named_entries(items: Any, where: str, parse: Callable[[str, Any, str], T]) -> dict[str, T]:
    """A Katib `runtime.<list>` of `{algorithmName, ...}` entries, by name; each name once."""
    if not isinstance(items, list):
        raise ConfigError(where, items, "a list of {algorithmName, image, ...}")
    out: dict[str, T] = {}
    for i, raw in enumerate(items):
        at = f"{where}[{i}]"
        name = raw.get("algorithmName") if isinstance(raw, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{at}.algorithmName", name, "a non-empty algorithm name")
        if name in out:
            raise ConfigError(f"{at}.algorithmName", name, "each algorithm may appear once")
        out[name] = parse(name, raw, at)
    return out


def _from_katib_config(text: str) -> ControllerConfig:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("katib-config.yaml", text[:60], f"valid YAML ({exc})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError("katib-config.yaml", doc, "a KatibConfig mapping")
    runtime = doc.get("runtime") or {}
    if not isinstance(runtime, Mapping):
        raise ConfigError("runtime", runtime, "a mapping with `suggestions` and `earlyStoppings`")
    suggestions = _named_entries(runtime.get("suggestions") or [], "runtime.suggestions", _entry)
    early_stoppings = _named_entries(runtime.get("earlyStoppings") or [], "runtime.earlyStoppings",
                                     _early_stopping_entry)
    controller = (doc.get("init") or {}).get("controller") or {}
    address = controller.get("dbManagerAddress", DEFAULT_DB_MANAGER_ADDRESS)
    return ControllerConfig(suggestions=suggestions, db_manager_address=address, early_stoppings=early_stoppings)


def _legacy_json(data: Mapping[str, str], key: str) -> Mapping[str, Any]:
    try:
        doc = json.loads(data[key])
    except json.JSONDecodeError as exc:
        raise ConfigError(key, data[key][:60], f"valid JSON ({exc})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(key, doc, 'a JSON object {"<algorithm>": {"image": ...}}')
    return doc


def _from_legacy(data: Mapping[str, str]) -> ControllerConfig:
    doc = _legacy_json(data, "suggestion")
    suggestions = {name: _entry(name, raw, f"suggestion.{name}") for name, raw in doc.items()}
    stopping = _legacy_json(data, "early-stopping") if "early-stopping" in data else {}
    early_stoppings = {name: _early_stopping_entry(name, raw, f"early-stopping.{name}")
                       for name, raw in stopping.items()}
    address = data.get("db-manager-address", DEFAULT_DB_MANAGER_ADDRESS)
    return ControllerConfig(suggestions=suggestions, db_manager_address=address, early_stoppings=early_stoppings)


def parse_config_map(data: Mapping[str, str] | None) -> ControllerConfig:
    """Parse a ConfigMap's `data`. Called on every Suggestion reconcile (the map is editable)."""
    data = data or {}
    if "katib-config.yaml" in data:
        return _from_katib_config(data["katib-config.yaml"])
    if "suggestion" in data:
        return _from_legacy(data)
    raise ConfigError("data", sorted(data), "needs key `katib-config.yaml` (KatibConfig) or `suggestion` (JSON)")
