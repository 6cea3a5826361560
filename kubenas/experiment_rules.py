"""Katib's Experiment webhook rules plus ours: every check returns all the errors it finds.

Each rule is a function `(meta, spec) -> Iterable[FieldError]` listed in `RULES`; paths are
full (`spec.trialTemplate.trialParameters[0].reference`). Rules see a defaulted spec.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kubenas.experiment_errors import FieldError
from kubenas.experiment_model import (
    CollectorKind,
    ExperimentSpec,
    FileFormat,
    FileSystemKind,
    ObjectMeta,
)
from kubenas.metrics import MetricFormatError, compile_filters, filter_problem, metrics_path_problem
from kubenas.space.errors import SpaceError
from kubenas.space.nas import NasConfig
from kubenas.space.parameters import ParameterSpec
from kubenas.space.search_space import name_problem, presence_problem

__all__ = ["INT32_MAX", "MAX_NAME_LENGTH", "META_KEYS", "RULES", "check_spec", "placeholders"]

MAX_NAME_LENGTH = 40
INT32_MAX = 2**31 - 1
NAME_PATTERN = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# Katib substitutes ${trialParameters.<name>} from assignments and ${trialSpec.<key>} from trial metadata.
PLACEHOLDER = re.compile(r"\$\{trialParameters\.(.+?)\}")
META_REFERENCE = re.compile(r"\$\{trialSpec\.(.+?)\}")
META_INDEXED = re.compile(r"(.+)\[(.+)\]")
META_KEYS = ("Name", "Namespace", "Kind", "APIVersion", "Labels", "Annotations")

Rule = Callable[[ObjectMeta, ExperimentSpec], Iterable[FieldError]]


def _is_meta_reference(reference: str) -> bool:
    match = META_REFERENCE.fullmatch(reference)
    if not match:
        return False
    key = match.group(1)
    indexed = META_INDEXED.fullmatch(key)
    return key in META_KEYS or bool(indexed and indexed.group(1) in ("Labels", "Annotations"))


def _listing(names: Iterable[Any], limit: int = 20) -> str:
    """`a, b, c` for an error message: at most `limit` names, then how many more (an error per
    item must not each carry a list of thousands)."""
    shown = list(dict.fromkeys(map(str, names)))
    more = f", … ({len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def placeholders(trial_spec: Any) -> list[str]:
    """Names used as `${trialParameters.<name>}` anywhere in a trial spec, in first-use order."""
    text = json.dumps(trial_spec, ensure_ascii=False)
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def check_name(meta: ObjectMeta, spec: ExperimentSpec) -> Iterator[FieldError]:
    if not meta.name:
        yield FieldError("metadata.name", meta.name or None, "required: a lower-case DNS label, at most 40 characters")
        return
    if not NAME_PATTERN.fullmatch(meta.name):
        yield FieldError("metadata.name", meta.name, "must be lower-case letters, digits and '-', start with a letter and end with a letter or digit (e.g. 'my-experiment')")
    if len(meta.name) > MAX_NAME_LENGTH:
        yield FieldError("metadata.name", meta.name, f"must be at most {MAX_NAME_LENGTH} characters (has {len(meta.name)})")
    if meta.namespace is not None and not NAME_PATTERN.fullmatch(meta.namespace):
        yield FieldError("metadata.namespace", meta.namespace, "must be a DNS label: lower-case letters, digits and '-'")


def check_counts(meta: ObjectMeta, spec: ExperimentSpec) -> Iterator[FieldError]:
    limit = f"at most {INT32_MAX}"
    max_trials, parallel, failed = spec.max_trial_count, spec.parallel_trial_count, spec.max_failed_trial_count
    if max_trials is not None and not 0 < max_trials <= INT32_MAX:
        yield FieldError("spec.maxTrialCount", max_trials, f"must be an integer > 0 and {limit}")
    if not 0 < parallel <= INT32_MAX:
        yield FieldError("spec.parallelTrialCount", parallel, f"must be an integer > 0 and {limit}")
    elif max_trials is not None and max_trials > 0 and parallel > max_trials:
        yield FieldError("spec.parallelTrialCount", parallel, f"must be <= spec.maxTrialCount ({max_trials})")
    if failed is not None:
        if not 0 <= failed <= INT32_MAX:
            yield FieldError("spec.maxFailedTrialCount", failed, f"must be an integer >= 0 and {limit}")
        elif max_trials is not None and max_trials > 0 and failed > max_trials:
            yield FieldError("spec.maxFailedTrialCount", failed, f"must be <= spec.maxTrialCount ({max_trials})")


def check_objective(meta: ObjectMeta, spec: ExperimentSpec) -> Iterator[FieldError]:
    obj = spec.objective
    if obj is None:
        yield FieldError("spec.objective", None, "required: type (minimize|maximize) and objectiveMetricName")
        return
    if not obj.objective_metric_name:
        yield FieldError("spec.objective.objectiveMetricName", obj.objective_metric_name, "must be a non-empty metric name")
    if obj.goal is not None and not math.isfinite(obj.goal):
        yield FieldError("spec.objective.goal", obj.goal, "must be a finite number")
    seen: set[str] = set()
    for i, name in enumerate(obj.additional_metric_names):
        where = f"spec.objective.additionalMetricNames[{i}]"
        if not name:
            yield FieldError(where, name, "must be a non-empty metric name")
        elif name == obj.objective_metric_name:
            yield FieldError(where, name, "must not repeat spec.objective.objectiveMetricName")
        elif name in seen:
            yield FieldError(where, name, "metric names must be unique")
        seen.add(name)
    metrics = (obj.objective_metric_name, *obj.additional_metric_names)
    named: set[str] = set()
    for i, strategy in enumerate(obj.metric_strategies):
        where = f"spec.objective.metricStrategies[{i}].name"
        if strategy.name not in metrics:
            yield FieldError(where, strategy.name, f"must be the objective or an additional metric: {_listing(metrics)}")
        elif strategy.name in named:
            yield FieldError(where, strategy.name, "each metric may have one strategy")
        named.add(strategy.name)


def _check_settings(where: str, settings: Iterable[Any]) -> Iterator[FieldError]:
    seen: set[str] = set()
    for i, setting in enumerate(settings):
        if not setting.name:
            yield FieldError(f"{where}[{i}].name", setting.name, "must be a non-empty setting name")
        elif setting.name in seen:
            yield FieldError(f"{where}[{i}].name", setting.name, "setting names must be unique")
        seen.add(setting.name)


def check_algorithm(meta: ObjectMeta, spec: ExperimentSpec) -> Iterator[FieldError]:
    if spec.algorithm is None:
        yield FieldError("spec.algorithm", None, "required: algorithmName (e.g. random, grid, enas, darts)")
    else:
        if not spec.algorithm.algorithm_name:
            yield FieldError("spec.algorithm.algorithmName", spec.algorithm.algorithm_name, "must be a non-empty algorithm name")
        yield from _check_settings("spec.algorithm.algorithmSettings", spec.algorithm.algorithm_settings)
    if spec.early_stopping is not None:
        if not spec.early_stopping.algorithm_name:
            yield FieldError("spec.earlyStopping.algorithmName", spec.early_stopping.algorithm_name, "must be a non-empty algorithm name")
        yield from _check_settings("spec.earlyStopping.algorithmSettings", spec.early_stopping.algorithm_settings)


def _space_error(exc: SpaceError, prefix: str = "spec.") -> FieldError:
    return FieldError(f"{prefix}{exc.field}", exc.value, exc.allowed)


def _check_parameter(i: int, p: ParameterSpec) -> Iterator[FieldError]:
    try:
        p.normalized().check(f"parameters[{i}].")
    except SpaceError as exc:
        yield _space_error(exc)


def check_search_space(meta: ObjectMeta, spec: ExperimentSpec) -> Iterator[FieldError]:
    problem = presence_problem(spec.parameters, spec.nas_config)
    if problem is not None:
        yield _space_error(problem)
    seen: set[str] = set()
    for i, p in enumerate(spec.parameters):
        problem = name_problem(i, p.name, seen)
        if problem is not None:
            yield _space_error(problem)
        yield from _check_parameter(i, p)
    if spec.nas_config is not None:
        yield from _check_nas(spec.nas_config)


def _check_nas(config: NasConfig) -> Iterator[FieldError]:
    # Every part apart, so one bad operation does not hide the rest.
    for problem in config.normalized().problems():
        yield _space_error(problem)
    for i, op in enumerate(config.operations):
        seen: set[str] = set()
        for j, p in enumerate(op.parameters):
            if p.name in seen:
                yield FieldError(f"spec.nasConfig.operations[{i}].parameters[{j}].name", p.name, "parameter names must be unique within an operation")
            seen.add(p.name)


def check_trial_template(meta: ObjectMeta, spec: ExperimentSpec) -> Iterator[FieldError]:
    t = spec.trial_template
    base = "spec.trialTemplate"
    if t is None:
        yield FieldError(base, None, "required: trialParameters and a trialSpec (or configMap)")
        return
    if not t.primary_container_name:
        yield FieldError(f"{base}.primaryContainerName", t.primary_container_name, "must name the container that runs training")
    if t.trial_spec is None and t.config_map is None:
        yield FieldError(f"{base}.trialSpec", None, "one of trialSpec or configMap must be set")
    if t.trial_spec is not None and t.config_map is not None:
        yield FieldError(f"{base}.configMap", t.config_map.config_map_name, "only one of trialSpec or configMap may be set")
    if t.config_map is not None:
        for key, value in (("configMapName", t.config_map.config_map_name), ("configMapNamespace", t.config_map.config_map_namespace),
                           ("templatePath", t.config_map.template_path)):
            if not value:
                yield FieldError(f"{base}.configMap.{key}", value, "required for a configMap trial template")
    # Without a usable source or kind the error above says it all; conditions would be noise.
    if t.config_map is not None or t.trial_kind:
        kind = t.trial_kind or "(from configMap)"
        for key, value in (("successCondition", t.success_condition), ("failureCondition", t.failure_condition)):
            if not value:
                yield FieldError(f"{base}.{key}", value, f"required for trial kind {kind!r}: defaults exist only for Job and Kubeflow training jobs")
    yield from _check_trial_parameters(spec)
    if t.trial_spec is not None:
        yield from _check_trial_spec(t.trial_spec, t.primary_container_name)


def _check_trial_parameters(spec: ExperimentSpec) -> Iterator[FieldError]:
    t = spec.trial_template
    assert t is not None
    base = "spec.trialTemplate.trialParameters"
    # Built once: with thousands of parameters, per-item lists and texts made this check quadratic.
    parameter_names = {p.name for p in spec.parameters}
    allowed_references = _listing(p.name for p in spec.parameters)
    names: set[str] = set()
    references: set[str] = set()
    for i, tp in enumerate(t.trial_parameters):
        if not tp.name or "{" in tp.name or "}" in tp.name:
            yield FieldError(f"{base}[{i}].name", tp.name, "must be a non-empty name without '{' or '}'")
        elif tp.name in names:
            yield FieldError(f"{base}[{i}].name", tp.name, "trialParameters names must be unique")
        names.add(tp.name)
        if not tp.reference:
            yield FieldError(f"{base}[{i}].reference", tp.reference, "must name a parameter (or ${trialSpec.Name}-style metadata)")
        elif tp.reference in references:
            yield FieldError(f"{base}[{i}].reference", tp.reference, "each reference may be used by one trialParameter")
        elif spec.parameters and tp.reference not in parameter_names and not _is_meta_reference(tp.reference):
            yield FieldError(f"{base}[{i}].reference", tp.reference,
                             f"must be a spec.parameters name ({allowed_references}) or trial metadata: ${{trialSpec.<{'|'.join(META_KEYS)}>}}")
        references.add(tp.reference)
    if t.trial_spec is None:
        return  # a ConfigMap template is only readable in the cluster
    used = placeholders(t.trial_spec)
    spec_kind = (t.trial_spec.get("apiVersion"), t.trial_spec.get("kind"))
    containers = _dig(t.trial_spec, "spec", "template", "spec", "containers")
    if spec_kind == ("batch/v1", "Job") and not (isinstance(containers, list) and containers):
        used = [*used, *names]  # no containers to put them in: that error alone says what to fix
    used_names = set(used)
    for i, tp in enumerate(t.trial_parameters):
        if tp.name and "{" not in tp.name and "}" not in tp.name and tp.name not in used_names:
            yield FieldError(f"{base}[{i}].name", tp.name, f"is never used: put ${{trialParameters.{tp.name}}} in spec.trialTemplate.trialSpec")
    defined = _listing(sorted(names)) or "none"
    for name in used:
        if name not in names:
            yield FieldError("spec.trialTemplate.trialSpec", f"${{trialParameters.{name}}}",
                             f"is not defined in spec.trialTemplate.trialParameters (defined: {defined})")


def _dig(tree: Any, *keys: str) -> Any:
    """tree[k1][k2]...; None where a level is missing or not a mapping (user YAML may be anything)."""
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _check_trial_spec(trial_spec: dict[str, Any], primary: str) -> Iterator[FieldError]:
    base = "spec.trialTemplate.trialSpec"
    for key in ("apiVersion", "kind"):
        if not isinstance(trial_spec.get(key), str) or not trial_spec.get(key):
            yield FieldError(f"{base}.{key}", trial_spec.get(key), "required: the trial resource's apiVersion and kind (e.g. batch/v1, Job)")
    metadata = trial_spec.get("metadata") or {}
    if isinstance(metadata, dict):
        for key in ("name", "namespace"):
            if metadata.get(key):
                yield FieldError(f"{base}.metadata.{key}", metadata[key], "must be omitted: each trial gets its own name and the experiment's namespace")
    if trial_spec.get("apiVersion") != "batch/v1" or trial_spec.get("kind") != "Job":
        return  # other kinds (TFJob, PyTorchJob, custom) are not inspected, as in Katib
    containers = _dig(trial_spec, "spec", "template", "spec", "containers")
    where = f"{base}.spec.template.spec.containers"
    if not isinstance(containers, list) or not containers:
        yield FieldError(where, containers, "a Job trialSpec needs a non-empty list of containers")
        return
    names = [c.get("name") for c in containers if isinstance(c, dict)]
    if primary and primary not in names:
        yield FieldError("spec.trialTemplate.primaryContainerName", primary,
                         f"must name one of the Job's containers: {_listing(names) or 'none'}")


def check_metrics_collector(meta: ObjectMeta, spec: ExperimentSpec) -> Iterator[FieldError]:
    mc = spec.metrics_collector_spec
    kind = mc.collector.kind
    base = "spec.metricsCollectorSpec"
    fsp = mc.source.file_system_path if mc.source else None
    wants_path = {CollectorKind.FILE: FileSystemKind.FILE, CollectorKind.TENSORFLOW_EVENT: FileSystemKind.DIRECTORY}.get(kind)
    if wants_path is not None:
        path = fsp.path if fsp else ""
        if not path.startswith("/"):
            yield FieldError(f"{base}.source.fileSystemPath.path", path or None, f"an absolute path is required for collector kind {kind.value}")
        elif (path_problem := metrics_path_problem(path)) is not None:
            yield FieldError(f"{base}.source.fileSystemPath.path", path, path_problem)
        if fsp is not None and fsp.kind is not wants_path:
            yield FieldError(f"{base}.source.fileSystemPath.kind", fsp.kind.value if fsp.kind else None, f"must be {wants_path.value} for collector kind {kind.value}")
    if kind is CollectorKind.FILE and fsp is not None and fsp.format is FileFormat.JSON and mc.source and mc.source.filter:
        yield FieldError(f"{base}.source.filter", list(mc.source.filter.metrics_format), "must be omitted when the metrics file format is JSON")
    if kind is CollectorKind.TENSORFLOW_EVENT and fsp is not None and fsp.format is not None:
        yield FieldError(f"{base}.source.fileSystemPath.format", fsp.format.value, "must be empty for collector kind TensorFlowEvent")
    if kind is CollectorKind.CUSTOM and not mc.collector.custom_collector:
        yield FieldError(f"{base}.collector.customCollector", None, "a container spec is required for collector kind Custom")
    if kind is CollectorKind.PROMETHEUS_METRIC and mc.source and mc.source.http_get:
        port: Any = mc.source.http_get.get("port")
        url_path: Any = mc.source.http_get.get("path")
        if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
            yield FieldError(f"{base}.source.httpGet.port", port, "must be a port number 1-65535")
        if not (isinstance(url_path, str) and url_path.startswith("/")):
            yield FieldError(f"{base}.source.httpGet.path", url_path, "must be an absolute URL path (e.g. /metrics)")
    for i, pattern in enumerate(mc.metrics_format):
        try:
            compile_filters([pattern])
        except MetricFormatError:
            try:
                groups = re.compile(pattern).groups
                reason = f"this one has {groups} group(s)" if groups < 2 else str(filter_problem(pattern))
            except re.error as exc:
                reason = f"this one does not compile: {exc}"
            yield FieldError(f"{base}.source.filter.metricsFormat[{i}]", pattern,
                             f"must be a regular expression with two groups (metric name, value); {reason}")


RULES: tuple[Rule, ...] = (
    check_name,
    check_counts,
    check_objective,
    check_algorithm,
    check_search_space,
    check_trial_template,
    check_metrics_collector,
)


def check_spec(meta: ObjectMeta, spec: ExperimentSpec) -> list[FieldError]:
    """Every rule's errors, in rule order. `spec` must already carry Katib's defaults."""
    errors: list[FieldError] = []
    for rule in RULES:
        errors.extend(rule(meta, spec))
    return errors
