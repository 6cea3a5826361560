"""Pure renderers: custom resource bodies in, Kubernetes object dicts out.

Nothing here talks to the API server or mutates its inputs. The operator's handlers call
these and hand the result to the adapter; the tests validate every output against the
Kubernetes schemas.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from controller.kube.config import SuggestionConfig
from controller.kube.crd import GROUP, VERSION
from kubenas import trial_dirs

__all__ = [
    "API_VERSION",
    "EARLY_STOPPING_PORT",
    "EXPERIMENT_LABEL",
    "HEALTH_SERVICE",
    "SUGGESTION_LABEL",
    "SUGGESTION_PORT",
    "TRIAL_LABEL",
    "mount_trial_dir",
    "owner_reference",
    "pod_templates",
    "render_run",
    "render_suggestion",
    "render_suggestion_deployment",
    "render_suggestion_pvc",
    "render_suggestion_service",
    "render_trial",
    "suggestion_service_name",
]

API_VERSION = f"{GROUP}/{VERSION}"
SUGGESTION_PORT = 6789
#: Where Katib's controller calls the EarlyStopping service of an experiment with earlyStopping.
EARLY_STOPPING_PORT = 6788
#: What Katib's probes ask the suggestion server's grpc.health.v1 service about.
HEALTH_SERVICE = "manager.v1beta1.Suggestion"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
TRIAL_LABEL = "katib.kubeflow.org/trial"
SUGGESTION_LABEL = "katib.kubeflow.org/suggestion"
_STATE_VOLUME = "suggestion-state"
#: Katib's name of the suggestion's volume in a trial's pod.
_TRIAL_DIR_VOLUME = "suggestion-volume"
_MANAGED_BY = {"app.kubernetes.io/managed-by": "kubenas"}


def owner_reference(owner: Mapping[str, Any], controller: bool = True) -> dict[str, Any]:
    """An ownerReference to `owner` (a resource body); deleting the owner deletes the child."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def suggestion_service_name(experiment_name: str, algorithm: str) -> str:
    """Katib's name for the suggestion Deployment, Service and PVC: `<experiment>-<algorithm>`."""
    return f"{experiment_name}-{algorithm}"


def render_suggestion(experiment: Mapping[str, Any], requests: int) -> dict[str, Any]:
    """The Suggestion resource of an experiment (same name), asking for `requests` in total."""
    meta, spec = experiment["metadata"], experiment.get("spec", {})
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Suggestion",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {EXPERIMENT_LABEL: meta["name"], **_MANAGED_BY},
            "ownerReferences": [owner_reference(experiment)],
        },
        "spec": {
            "algorithm": copy.deepcopy(spec.get("algorithm", {})),
            "requests": requests,
            "resumePolicy": spec.get("resumePolicy", "Never"),
        },
    }
    if spec.get("earlyStopping"):
        body["spec"]["earlyStopping"] = copy.deepcopy(spec["earlyStopping"])
    return body


def _suggestion_names(suggestion: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = suggestion["metadata"]
    algorithm = suggestion["spec"]["algorithm"]["algorithmName"]
    return meta["name"], meta["namespace"], suggestion_service_name(meta["name"], algorithm)


def _grpc_probe(initial_delay: int, period: int) -> dict[str, Any]:
    return {
        "grpc": {"port": SUGGESTION_PORT, "service": HEALTH_SERVICE},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "failureThreshold": 6,
    }


def render_suggestion_deployment(suggestion: Mapping[str, Any], config: SuggestionConfig) -> dict[str, Any]:
    """The suggestion server Deployment: one replica of `kubenas suggestion serve`."""
    experiment, namespace, name = _suggestion_names(suggestion)
    from_volume = suggestion["spec"].get("resumePolicy") == "FromVolume"
    labels = {EXPERIMENT_LABEL: experiment, SUGGESTION_LABEL: experiment, **_MANAGED_BY}
    args = ["suggestion", "serve", "--algorithm", config.algorithm, "--port", str(SUGGESTION_PORT)]
    if from_volume:
        args += ["--state-dir", config.volume_mount_path]
    ports = [{"name": "api", "containerPort": SUGGESTION_PORT, "protocol": "TCP"}]
    if suggestion["spec"].get("earlyStopping"):
        args += ["--early-stopping-port", str(EARLY_STOPPING_PORT)]
        ports.append({"name": "early-stopping", "containerPort": EARLY_STOPPING_PORT, "protocol": "TCP"})
    container: dict[str, Any] = {
        "name": "suggestion",
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "command": ["kubenas"],
        "args": args,
        "ports": ports,
        "resources": copy.deepcopy(dict(config.resources)),
        "readinessProbe": _grpc_probe(initial_delay=2, period=5),
        "livenessProbe": _grpc_probe(initial_delay=10, period=10),
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # torch and the algorithms write caches under $HOME and /tmp; both are emptyDirs.
        "env": [{"name": "HOME", "value": "/tmp"}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if from_volume:
        container["volumeMounts"].append({"name": _STATE_VOLUME, "mountPath": config.volume_mount_path})
        volumes.append({"name": _STATE_VOLUME, "persistentVolumeClaim": {"claimName": name}})
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        # Meets the "restricted" Pod Security Standard, like the control plane's own pods.
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if config.service_account_name:
        pod_spec["serviceAccountName"] = config.service_account_name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _owned_by(suggestion, name, namespace, labels),
        "spec": {
            "replicas": 1,
            # One writer of the state directory at a time: never two pods on one PVC.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {SUGGESTION_LABEL: experiment}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _owned_by(suggestion: Mapping[str, Any], name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Metadata of an object the Suggestion owns (deleted with it through garbage collection)."""
    return {"name": name, "namespace": namespace, "labels": dict(labels),
            "ownerReferences": [owner_reference(suggestion)]}


def render_suggestion_service(suggestion: Mapping[str, Any]) -> dict[str, Any]:
    """The ClusterIP Service in front of the suggestion Deployment (port 6789, gRPC; and 6788
    for EarlyStopping when the experiment has earlyStopping)."""
    experiment, namespace, name = _suggestion_names(suggestion)
    ports = [{"name": "api", "port": SUGGESTION_PORT, "targetPort": SUGGESTION_PORT,
              "protocol": "TCP", "appProtocol": "grpc"}]
    if suggestion["spec"].get("earlyStopping"):
        ports.append({"name": "early-stopping", "port": EARLY_STOPPING_PORT, "targetPort": EARLY_STOPPING_PORT,
                      "protocol": "TCP", "appProtocol": "grpc"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _owned_by(suggestion, name, namespace, {EXPERIMENT_LABEL: experiment, **_MANAGED_BY}),
        "spec": {
            "selector": {SUGGESTION_LABEL: experiment},
            "ports": ports,
        },
    }


def render_suggestion_pvc(suggestion: Mapping[str, Any], config: SuggestionConfig) -> dict[str, Any]:
    """The PVC holding `--state-dir` for resumePolicy FromVolume (ENAS survives a restart)."""
    experiment, namespace, name = _suggestion_names(suggestion)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _owned_by(suggestion, name, namespace, {EXPERIMENT_LABEL: experiment, **_MANAGED_BY}),
        "spec": copy.deepcopy(dict(config.pvc_spec)),
    }


def render_trial(
    experiment: Mapping[str, Any],
    name: str,
    assignments: Sequence[tuple[str, str]],
    run_spec: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    early_stopping_rules: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The Trial resource for one suggestion; `run_spec` is the already-substituted trialSpec.
    `early_stopping_rules` (the Suggestion's, when the trial is made) go to its spec, as in Katib."""
    meta, spec = experiment["metadata"], experiment["spec"]
    template = spec.get("trialTemplate", {})
    trial_spec: dict[str, Any] = {
        "objective": copy.deepcopy(spec.get("objective", {})),
        "parameterAssignments": [{"name": k, "value": v} for k, v in assignments],
        "runSpec": mount_trial_dir(run_spec, experiment, name),
        "metricsCollector": copy.deepcopy(spec.get("metricsCollectorSpec", {"collector": {"kind": "StdOut"}})),
        "retainRun": bool(template.get("retain", False)),
    }
    for key in ("primaryPodLabels", "primaryContainerName", "successCondition", "failureCondition"):
        if template.get(key):
            trial_spec[key] = copy.deepcopy(template[key])
    if labels:
        trial_spec["labels"] = dict(labels)
    if early_stopping_rules:
        trial_spec["earlyStoppingRules"] = [dict(r) for r in early_stopping_rules]
    return {
        "apiVersion": API_VERSION,
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {EXPERIMENT_LABEL: meta["name"], **(labels or {})},
            "ownerReferences": [owner_reference(experiment)],
        },
        "spec": trial_spec,
    }


def mount_trial_dir(run_spec: Mapping[str, Any], experiment: Mapping[str, Any], trial: str) -> dict[str, Any]:
    """A copy of `run_spec` whose primary container sees the trial's directory at
    `suggestion_trial_dir`, as Katib's pod webhook mounts it: the suggestion's PVC with subPath
    `<experiment>/<trial>`. Only with resumePolicy FromVolume (otherwise there is no PVC)."""
    run = copy.deepcopy(dict(run_spec))
    spec = experiment.get("spec", {})
    settings = {s.get("name"): s.get("value") for s in (spec.get("algorithm") or {}).get("algorithmSettings") or []}
    path = trial_dirs.mount_path({k: v for k, v in settings.items() if isinstance(k, str) and isinstance(v, str)})
    if path is None or spec.get("resumePolicy") != "FromVolume":
        return run
    name = experiment["metadata"]["name"]
    claim = suggestion_service_name(name, spec["algorithm"]["algorithmName"])
    primary = (spec.get("trialTemplate") or {}).get("primaryContainerName")
    mount = {"name": _TRIAL_DIR_VOLUME, "mountPath": path, "subPath": trial_dirs.trial_subpath(name, trial)}
    for template in pod_templates(run.get("spec", {})):
        pod = template["spec"]
        containers = [c for c in pod["containers"] if not primary or c.get("name") == primary]
        for container in containers:
            container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
        if containers:
            pod["volumes"] = [*pod.get("volumes", []),
                              {"name": _TRIAL_DIR_VOLUME, "persistentVolumeClaim": {"claimName": claim}}]
    return run


def pod_templates(obj: Any) -> Iterator[dict[str, Any]]:
    """Every pod template in a workload object: a Job's, or each replica's of a TFJob/PyTorchJob.

    A pod template is a mapping `template` whose `spec` has `containers`; searching for the
    shape instead of a per-kind path is what lets any trial kind work.
    """
    if isinstance(obj, dict):
        template = obj.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict) \
                and isinstance(template["spec"].get("containers"), list):
            yield template
        for key, value in obj.items():
            if key != "template":
                yield from pod_templates(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from pod_templates(item)


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = [e for e in container.get("env", []) if e.get("name") != name]
    env.append({"name": name, "value": value})
    container["env"] = env


def render_run(trial: Mapping[str, Any], db_manager_address: str) -> dict[str, Any]:
    """The trial's workload (runSpec) ready to create: named after the trial, owned by it,
    labelled with experiment and trial, and `KATIB_TRIAL_NAME` in the primary container
    (every container when the template names no primary one)."""
    meta, spec = trial["metadata"], trial["spec"]
    run = copy.deepcopy(spec["runSpec"])
    experiment = meta.get("labels", {}).get(EXPERIMENT_LABEL, "")
    labels = {EXPERIMENT_LABEL: experiment, TRIAL_LABEL: meta["name"]}
    pod_labels = {**meta.get("labels", {}), **labels}  # as Katib's pod webhook: the Trial's labels too
    run_meta = run.setdefault("metadata", {})
    run_meta["name"] = meta["name"]
    run_meta["namespace"] = meta["namespace"]
    run_meta["labels"] = {**run_meta.get("labels", {}), **labels}
    run_meta["ownerReferences"] = [owner_reference(trial)]
    primary = spec.get("primaryContainerName")
    for template in pod_templates(run.get("spec", {})):
        template_meta = template.setdefault("metadata", {})
        template_meta["labels"] = {**template_meta.get("labels", {}), **pod_labels}
        for container in template["spec"]["containers"]:
            if primary and container.get("name") != primary:
                continue
            _set_env(container, "KATIB_TRIAL_NAME", meta["name"])
            _set_env(container, "KATIB_DB_MANAGER_ADDRESS", db_manager_address)
    return run
