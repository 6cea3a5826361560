"""How every trial of a local run is started, checked once from the trialTemplate (`plan_trials`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.local.errors import RunError
from controller.template import placeholders

__all__ = ["LOCAL_COLLECTORS", "TrialPlan", "plan_trials"]

LOCAL_COLLECTORS = ("StdOut", "File", "Push", "None")
# Kubernetes' rule for env names (C_IDENTIFIER relaxed with '-' and '.'); '=' or NUL would
# otherwise reach the process environment and fail every trial at start.
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


@dataclass(frozen=True)
class TrialPlan:
    """How every trial of the experiment is started, derived once from the trialTemplate."""

    container: Mapping[str, Any]      # the primary container, placeholders still in it
    env: Mapping[str, str]            # the container's env (values, not yet substituted)
    kind: str
    api_version: str
    namespace: str
    collector: str                    # StdOut | File | Push | None
    metrics_format: tuple[str, ...]
    file_path: str                    # File collector: path (may hold placeholders)
    file_format: str                  # TEXT | JSON


def plan_trials(experiment: Any) -> TrialPlan:
    """Check the parts of the trialTemplate a local run needs; raise RunError naming each problem."""
    template = experiment.spec.trial_template
    if template is None or template.trial_spec is None:
        raise RunError("spec.trialTemplate.trialSpec: missing — kubenas run needs an inline trialSpec "
                       "(a trialTemplate from a ConfigMap is read only in the cluster)")
    at, container = _primary_container(template.trial_spec, template.primary_container_name)
    env, env_problems = _literal_env(container, at)
    mc = experiment.spec.metrics_collector_spec
    kind = mc.collector.kind.value
    file_path, file_format = _metrics_file(mc, kind)
    problems = [*_command_problems(container, at), *env_problems, *_collector_problems(kind),
                *_undefined_placeholders(container, file_path, template.trial_parameters)]
    if problems:
        raise RunError(*problems)
    metadata = template.trial_spec.get("metadata") or {}
    namespace = getattr(experiment, "namespace", None) or metadata.get("namespace") or "default"
    return TrialPlan(
        container=container,
        env=env,
        kind=str(template.trial_spec.get("kind") or "Job"),
        api_version=str(template.trial_spec.get("apiVersion") or "batch/v1"),
        namespace=str(namespace),
        collector=kind,
        metrics_format=tuple(mc.metrics_format),
        file_path=file_path,
        file_format=file_format,
    )


def _primary_container(trial_spec: Mapping[str, Any], primary: str) -> tuple[str, Mapping[str, Any]]:
    """(its field path, the container) of a Job-like spec's primary container; RunError if none."""
    pod = ((trial_spec.get("spec") or {}).get("template") or {}).get("spec") or {}
    where, containers = "spec.trialTemplate.trialSpec.spec.template.spec.containers", list(pod.get("containers") or [])
    matches = [c for c in containers if isinstance(c, dict) and c.get("name") == primary]
    if not matches:
        names = [c.get("name") for c in containers if isinstance(c, dict)]
        raise RunError(f"spec.trialTemplate.primaryContainerName: {primary!r} — no container of that name "
                       f"in {where} (found: {', '.join(map(str, names)) or 'none'})")
    return f"{where}[{containers.index(matches[0])}]", matches[0]


def _command_problems(container: Mapping[str, Any], at: str) -> list[str]:
    problems = []
    if not container.get("command"):
        problems.append(f"{at}.command: missing — kubenas run starts the command and args "
                        f"itself (an image's entrypoint is not known locally)")
    for key in ("command", "args"):
        value = container.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)):
            problems.append(f"{at}.{key}: {value!r} — must be a list of strings")
    return problems


def _literal_env(container: Mapping[str, Any], at: str) -> tuple[dict[str, str], list[str]]:
    """The container's env as name -> literal value, and a problem per entry a process cannot get."""
    env: dict[str, str] = {}
    problems = []
    for i, item in enumerate(container.get("env") or []):
        name = item.get("name") if isinstance(item, dict) else None
        if not name:
            problems.append(f"{at}.env[{i}].name: {item!r} — every env entry needs a name")
        elif not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            problems.append(f"{at}.env[{i}].name: {name!r} — must be letters, digits, '_', '-' or '.', "
                            f"not starting with a digit (what Kubernetes and a process environment accept)")
        elif "valueFrom" in item:
            problems.append(f"{at}.env[{i}].valueFrom: {item['valueFrom']!r} — not supported by "
                            f"kubenas run (no Kubernetes API here); give a literal value")
        else:
            env[str(name)] = "" if item.get("value") is None else str(item.get("value"))
    return env, problems


def _collector_problems(kind: str) -> list[str]:
    if kind in LOCAL_COLLECTORS:
        return []
    return [f"spec.metricsCollectorSpec.collector.kind: {kind!r} — kubenas run supports {', '.join(LOCAL_COLLECTORS)}"]


def _metrics_file(mc: Any, kind: str) -> tuple[str, str]:
    """(path, format) of the File collector's metrics file; ("", "TEXT") for the others."""
    fsp = mc.source.file_system_path if mc.source is not None else None
    if kind != "File" or fsp is None:
        return "", "TEXT"
    return fsp.path, fsp.format.value if fsp.format is not None else "TEXT"


def _undefined_placeholders(container: Mapping[str, Any], file_path: str, parameters: Sequence[Any]) -> list[str]:
    defined = {p.name for p in parameters}
    problems = []
    for text in sorted(placeholders({"c": container, "p": file_path})):
        name = text[len("${trialParameters."):-1] if text.startswith("${trialParameters.") else None
        if name is not None and name not in defined:
            problems.append(f"spec.trialTemplate: {text!r} — not in trialParameters "
                            f"({', '.join(sorted(defined)) or 'none defined'})")
    return problems
