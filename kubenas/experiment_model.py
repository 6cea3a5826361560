"""Typed Katib v1beta1 Experiment spec (pydantic v2), its defaults, and its domain objects.

Field names are the YAML's camelCase names (aliases); unknown fields are errors. The search
space's parts (`parameters`, `nasConfig`) are `kubenas.space`'s classes, models and domain
objects at once. Values a cross-field rule must judge (counts, names, ranges) are accepted
here and checked in `experiment_rules`, so one bad value never hides the others.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubenas.space.nas import NasConfig
from kubenas.space.parameters import Distribution, ParameterSpec, ParameterType
from kubenas.spec_model import Float, Int, SpecModel, Text
from kubenas.trials import MetricStrategy, Objective, ObjectiveType

__all__ = [
    "API_VERSION",
    "DEFAULT_PARALLEL_TRIAL_COUNT",
    "DEFAULT_PRIMARY_CONTAINER",
    "JOB_FAILURE_CONDITION",
    "JOB_SUCCESS_CONDITION",
    "KIND",
    "AlgorithmSetting",
    "AlgorithmSpec",
    "CollectorKind",
    "CollectorSpec",
    "ConfigMapSource",
    "EarlyStoppingSpec",
    "ExperimentSpec",
    "FileFormat",
    "FileSystemKind",
    "FileSystemPath",
    "FilterSpec",
    "MetricStrategySpec",
    "MetricsCollectorSpec",
    "ObjectMeta",
    "ObjectiveSpec",
    "ResumePolicy",
    "SourceSpec",
    "TrialParameter",
    "TrialTemplate",
    "apply_defaults",
]

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"
DEFAULT_PARALLEL_TRIAL_COUNT = 3
DEFAULT_PRIMARY_CONTAINER = "training-container"
# Katib's defaults, in its gjson condition syntax, for batch/v1 Job and for Kubeflow training jobs.
JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_JOB_KINDS = ("TFJob", "PyTorchJob", "XGBoostJob", "MPIJob")
KUBEFLOW_JOB_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
TRAIN_JOB_PRIMARY_POD_LABELS = {"jobset.sigs.k8s.io/replicatedjob-name": "node"}
DEFAULT_METRICS_FILE = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIR = "/var/log/katib/tfevent/"
DEFAULT_PROMETHEUS_PATH = "/metrics"
DEFAULT_PROMETHEUS_PORT = 8080


class CollectorKind(str, Enum):
    STDOUT = "StdOut"
    FILE = "File"
    TENSORFLOW_EVENT = "TensorFlowEvent"
    PROMETHEUS_METRIC = "PrometheusMetric"
    CUSTOM = "Custom"
    NONE = "None"
    PUSH = "Push"


class FileSystemKind(str, Enum):
    FILE = "File"
    DIRECTORY = "Directory"


class FileFormat(str, Enum):
    TEXT = "TEXT"
    JSON = "JSON"


class ResumePolicy(str, Enum):
    NEVER = "Never"
    LONG_RUNNING = "LongRunning"
    FROM_VOLUME = "FromVolume"


class ObjectMeta(BaseModel):
    """Kubernetes metadata: only name and namespace matter here; other keys are kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = ""
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class MetricStrategySpec(SpecModel):
    name: str
    value: MetricStrategy


class ObjectiveSpec(SpecModel):
    type: ObjectiveType
    goal: Float | None = None
    objective_metric_name: str
    additional_metric_names: tuple[str, ...] = ()
    metric_strategies: tuple[MetricStrategySpec, ...] = ()

    def to_domain(self) -> Objective:
        return Objective(
            type=self.type,
            metric_name=self.objective_metric_name,
            goal=self.goal,
            additional_metric_names=self.additional_metric_names,
            strategies={s.name: s.value for s in self.metric_strategies},
        )


class AlgorithmSetting(SpecModel):
    name: str
    value: Text = ""


class AlgorithmSpec(SpecModel):
    algorithm_name: str
    algorithm_settings: tuple[AlgorithmSetting, ...] = ()


class EarlyStoppingSpec(SpecModel):
    algorithm_name: str
    algorithm_settings: tuple[AlgorithmSetting, ...] = ()


class TrialParameter(SpecModel):
    name: str
    description: str = ""
    reference: str = ""


class ConfigMapSource(SpecModel):
    config_map_name: str = ""
    config_map_namespace: str = ""
    template_path: str = ""


class TrialTemplate(SpecModel):
    retain: bool = False
    primary_container_name: str = DEFAULT_PRIMARY_CONTAINER
    primary_pod_labels: dict[str, str] | None = None
    success_condition: str = ""
    failure_condition: str = ""
    trial_parameters: tuple[TrialParameter, ...] = ()
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapSource | None = None

    @property
    def trial_kind(self) -> str:
        """The trial resource's kind (`Job`, `TFJob`, ...); "" when it comes from a ConfigMap."""
        kind = (self.trial_spec or {}).get("kind")
        return kind if isinstance(kind, str) else ""


class FileSystemPath(SpecModel):
    path: str = ""
    kind: FileSystemKind | None = None
    format: FileFormat | None = None


class FilterSpec(SpecModel):
    metrics_format: tuple[str, ...] = ()


class SourceSpec(SpecModel):
    http_get: dict[str, Any] | None = None
    file_system_path: FileSystemPath | None = None
    filter: FilterSpec | None = None


class CollectorSpec(SpecModel):
    kind: CollectorKind = CollectorKind.STDOUT
    custom_collector: dict[str, Any] | None = None


class MetricsCollectorSpec(SpecModel):
    source: SourceSpec | None = None
    collector: CollectorSpec = Field(default_factory=CollectorSpec)

    @property
    def metrics_format(self) -> tuple[str, ...]:
        """The experiment's metricsFormat filters (empty = Katib's default regex)."""
        if self.source is None or self.source.filter is None:
            return ()
        return self.source.filter.metrics_format


class ExperimentSpec(SpecModel):
    """`spec` of a Katib v1beta1 Experiment. Presence rules live in `experiment_rules`."""

    objective: ObjectiveSpec | None = None
    algorithm: AlgorithmSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    parallel_trial_count: Int = DEFAULT_PARALLEL_TRIAL_COUNT
    max_trial_count: Int | None = None
    max_failed_trial_count: Int | None = None
    parameters: tuple[ParameterSpec, ...] = ()
    nas_config: NasConfig | None = None
    trial_template: TrialTemplate | None = None
    metrics_collector_spec: MetricsCollectorSpec = Field(default_factory=MetricsCollectorSpec)
    resume_policy: ResumePolicy = ResumePolicy.NEVER


def _default_objective(obj: ObjectiveSpec) -> ObjectiveSpec:
    # As Katib's defaulter: every metric without a strategy gets min (minimize) or max (maximize).
    fallback = MetricStrategy.MIN if obj.type is ObjectiveType.MINIMIZE else MetricStrategy.MAX
    have = {s.name for s in obj.metric_strategies}
    added: list[MetricStrategySpec] = []
    for name in (obj.objective_metric_name, *obj.additional_metric_names):
        if name not in have:
            have.add(name)
            added.append(MetricStrategySpec(name=name, value=fallback))
    return obj.model_copy(update={"metric_strategies": obj.metric_strategies + tuple(added)}) if added else obj


def _default_template(t: TrialTemplate) -> TrialTemplate:
    kind = t.trial_kind
    if t.trial_spec is None:
        return t
    update: dict[str, Any] = {}
    if kind == "Job" or kind == "TrainJob" or kind in KUBEFLOW_JOB_KINDS:
        success = KUBEFLOW_JOB_SUCCESS_CONDITION if kind in KUBEFLOW_JOB_KINDS else JOB_SUCCESS_CONDITION
        update["success_condition"] = t.success_condition or success
        update["failure_condition"] = t.failure_condition or JOB_FAILURE_CONDITION
    if not t.primary_pod_labels and kind in KUBEFLOW_JOB_KINDS:
        update["primary_pod_labels"] = dict(KUBEFLOW_JOB_PRIMARY_POD_LABELS)
    if not t.primary_pod_labels and kind == "TrainJob":
        update["primary_pod_labels"] = dict(TRAIN_JOB_PRIMARY_POD_LABELS)
    return t.model_copy(update=update)


def _default_collector(mc: MetricsCollectorSpec) -> MetricsCollectorSpec:
    kind = mc.collector.kind
    source = mc.source or SourceSpec()
    if kind is CollectorKind.PROMETHEUS_METRIC:
        http = dict(source.http_get or {})
        http.setdefault("path", DEFAULT_PROMETHEUS_PATH)
        if http.get("port") in (None, 0, "0", ""):
            http["port"] = DEFAULT_PROMETHEUS_PORT
        return mc.model_copy(update={"source": source.model_copy(update={"http_get": http})})
    defaults = {
        CollectorKind.FILE: (FileSystemKind.FILE, DEFAULT_METRICS_FILE, FileFormat.TEXT),
        CollectorKind.TENSORFLOW_EVENT: (FileSystemKind.DIRECTORY, DEFAULT_TFEVENT_DIR, None),
    }.get(kind)
    if defaults is None:
        return mc
    fs_kind, path, fmt = defaults
    fsp = source.file_system_path or FileSystemPath()
    fsp = fsp.model_copy(update={"kind": fsp.kind or fs_kind, "path": fsp.path or path, "format": fsp.format or fmt})
    return mc.model_copy(update={"source": source.model_copy(update={"file_system_path": fsp})})


def _default_parameter(p: ParameterSpec) -> ParameterSpec:
    # Katib defaults every distribution to uniform; for list types it means nothing, so only ranges get it.
    numeric = p.type in (ParameterType.DOUBLE, ParameterType.INT)
    if not numeric or p.feasible.distribution is not None:
        return p
    fs = p.feasible.model_copy(update={"distribution": Distribution.UNIFORM})
    return p.model_copy(update={"feasible": fs})


def apply_defaults(spec: ExperimentSpec) -> ExperimentSpec:
    """Katib's defaulting webhook, as a pure function: returns a new spec, never mutates `spec`."""
    update: dict[str, Any] = {
        "metrics_collector_spec": _default_collector(spec.metrics_collector_spec),
        "parameters": tuple(_default_parameter(p) for p in spec.parameters),
    }
    if spec.objective is not None:
        update["objective"] = _default_objective(spec.objective)
    if spec.trial_template is not None:
        update["trial_template"] = _default_template(spec.trial_template)
    return spec.model_copy(update=update)
