"""The dashboard's view of a cluster: Experiments, Suggestions and Trials from the
Kubernetes API (get/list only, the RBAC the dashboard's overlay grants), metric logs from
the DBManager's GetObservationLog. A trial's stdout is its pod's log, which the dashboard
is not allowed to read: the page says how to read it with kubectl instead.

An experiment's id is `<namespace>.<name>`: a namespace is a DNS label (no dots), so the
first dot separates the two, and the id is one URL path segment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from dashboard.source import (
    DataSource,
    ExperimentDetail,
    ExperimentSummary,
    LogTail,
    MetricLogView,
    NotFound,
    SourceError,
    StatusChange,
    TrialDetail,
    TrialView,
    best_trial,
    count_conditions,
    objective_of,
)
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.rfc3339 import TimeFormatError, parse
from kubenas.trials import Objective, ObjectiveType

__all__ = ["DEFAULT_DB_MANAGER", "ClusterSource"]

log = logging.getLogger(__name__)

GROUP, VERSION = "kubeflow.org", "v1beta1"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"   # what the controller puts on every Trial
DEFAULT_DB_MANAGER = "kubenas-db-manager.kubenas-system:6789"
_RPC_TIMEOUT_S = 5.0
_API_TIMEOUT_S = 10


def _condition(conditions: Sequence[Mapping[str, Any]] | None) -> tuple[str, str]:
    """(type, reason or message) of the most recent condition whose status is True."""
    current = [c for c in conditions or [] if str(c.get("status")) == "True"]
    if not current:
        return "Created", ""
    last = current[-1]
    return str(last.get("type", "Unknown")), str(last.get("reason") or last.get("message") or "")


def _observation(objective: Objective | None, status: Mapping[str, Any]) -> dict[str, float | str]:
    """One value per metric of a Trial's Katib observation ({name, min, max, latest} strings)."""
    out: dict[str, float | str] = {}
    for metric in (status.get("observation") or {}).get("metrics") or []:
        name = str(metric.get("name", ""))
        pick = "latest"
        if objective is not None and name == objective.metric_name:
            pick = "min" if objective.type is ObjectiveType.MINIMIZE else "max"
        text = metric.get(pick, metric.get("latest"))
        try:
            out[name] = float(text)
        except (TypeError, ValueError):
            if text not in (None, "", "unavailable"):
                out[name] = str(text)
    return out


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (parse(end) - parse(start)).total_seconds()
    except TimeFormatError:
        return None


def _trial_view(trial: Mapping[str, Any], objective: Objective | None) -> TrialView:
    status = trial.get("status") or {}
    condition, reason = _condition(status.get("conditions"))
    assignments = {str(a.get("name")): str(a.get("value")) for a in
                   (trial.get("spec") or {}).get("parameterAssignments") or []}
    return TrialView(
        name=str(trial["metadata"]["name"]),
        condition=condition,
        assignments=assignments,
        observation=_observation(objective, status),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        duration_s=_duration(status.get("startTime"), status.get("completionTime")),
        message=reason,
    )


class ClusterSource(DataSource):
    """Reads through a kubernetes `ApiClient` and a DBManager address (host:port)."""

    def __init__(self, api_client: Any, db_manager: str, namespace: str | None = None) -> None:
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.db_manager = db_manager
        self._channel = grpc.insecure_channel(db_manager)
        self._stub = api_pb2_grpc.DBManagerStub(self._channel)
        # finished trials' logs do not change: read each once
        self._finished_logs: dict[str, list[MetricLogView]] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, namespace: str | None = None, db_manager: str | None = None) -> ClusterSource:
        """In a pod, its service account; elsewhere the kubeconfig. SourceError when neither works."""
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            try:
                config.load_kube_config()
            except (config.ConfigException, OSError) as exc:
                raise SourceError(f"no cluster to read: not in a pod and no usable kubeconfig ({exc})") from None
        return cls(client.ApiClient(), db_manager or DEFAULT_DB_MANAGER, namespace)

    def close(self) -> None:
        self._channel.close()

    # --- the Kubernetes API -------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _request_timeout=_API_TIMEOUT_S, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise SourceError(f"the Kubernetes API refused to {what}: {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise SourceError(f"the Kubernetes API does not answer ({what}): {exc}") from None

    def _list(self, plural: str, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        kwargs = {"label_selector": selector} if selector else {}
        if namespace:
            found = self._call(f"list {plural} in {namespace}", self.api.list_namespaced_custom_object,
                               GROUP, VERSION, namespace, plural, **kwargs)
        else:
            found = self._call(f"list {plural}", self.api.list_cluster_custom_object, GROUP, VERSION, plural, **kwargs)
        return list((found or {}).get("items") or [])

    def _get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._call(f"get {plural} {namespace}/{name}", self.api.get_namespaced_custom_object,
                           GROUP, VERSION, namespace, plural, name)
        return found if isinstance(found, dict) else None

    @staticmethod
    def _id(obj: Mapping[str, Any]) -> str:
        return f"{obj['metadata'].get('namespace', 'default')}.{obj['metadata']['name']}"

    def _experiment(self, experiment_id: str) -> dict[str, Any]:
        namespace, dot, name = experiment_id.partition(".")
        found = self._get("experiments", namespace, name) if dot and namespace and name else None
        if found is None or (self.namespace and namespace != self.namespace):
            known = [self._id(e) for e in self._list("experiments", self.namespace)]
            raise NotFound("experiment", experiment_id, known)
        return found

    def _trials(self, experiment: Mapping[str, Any]) -> list[dict[str, Any]]:
        meta = experiment["metadata"]
        trials = self._list("trials", meta.get("namespace", "default"), f"{EXPERIMENT_LABEL}={meta['name']}")
        return sorted(trials, key=lambda t: (t["metadata"].get("creationTimestamp") or "", t["metadata"]["name"]))

    def _summary(self, experiment: Mapping[str, Any], trials: Sequence[TrialView] | None,
                 objective: Objective | None) -> ExperimentSummary:
        status = experiment.get("status") or {}
        condition, reason = _condition(status.get("conditions"))
        optimal = status.get("currentOptimalTrial") or {}
        best_name = optimal.get("bestTrialName") or None
        best_value: float | str | None = None
        if trials is not None:
            best = best_trial(objective, trials)
            best_name = best.name if best else None
            best_value = best.observation.get(objective.metric_name) if best and objective else None
        elif objective is not None:
            best_value = _observation(objective, optimal).get(objective.metric_name)
        if trials is not None:
            counts = count_conditions(trials)
        else:
            counts = {"total": int(status.get("trials") or 0), "Succeeded": int(status.get("trialsSucceeded") or 0),
                      "Running": int(status.get("trialsRunning") or 0), "Failed": int(status.get("trialsFailed") or 0),
                      "EarlyStopped": int(status.get("trialsEarlyStopped") or 0),
                      "Killed": int(status.get("trialsKilled") or 0)}
        spec = experiment.get("spec") or {}
        meta = experiment["metadata"]
        return ExperimentSummary(
            id=self._id(experiment),
            name=str(meta["name"]),
            algorithm=str((spec.get("algorithm") or {}).get("algorithmName", "")),
            status=condition,
            reason=reason,
            objective_metric=objective.metric_name if objective else "",
            objective_type=objective.type.value if objective else "",
            best_trial=best_name,
            best_value=best_value,
            counts=counts,
            created=meta.get("creationTimestamp"),
            location=f"namespace {meta.get('namespace', 'default')}",
        )

    # --- the interface ------------------------------------------------------------------
    def problems(self) -> list[str]:
        return []

    def experiments(self) -> list[ExperimentSummary]:
        # the list shows the Experiment's own status (no Trial list per row): one request in all
        out = [self._summary(e, None, objective_of(e)) for e in self._list("experiments", self.namespace)]
        return sorted(out, key=lambda s: s.created or "", reverse=True)

    def experiment(self, experiment_id: str) -> ExperimentDetail:
        experiment = self._experiment(experiment_id)
        objective = objective_of(experiment)
        trials = [_trial_view(t, objective) for t in self._trials(experiment)]
        meta = experiment["metadata"]
        spec = {"apiVersion": experiment.get("apiVersion"), "kind": experiment.get("kind"),
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace")},
                "spec": experiment.get("spec") or {}}
        suggestion = self._get("suggestions", meta.get("namespace", "default"), meta["name"])
        record = None
        if suggestion is not None:
            record = {"suggestion": {"algorithm": (suggestion.get("spec") or {}).get("algorithm"),
                                     "requests": (suggestion.get("spec") or {}).get("requests"),
                                     "status": {k: v for k, v in (suggestion.get("status") or {}).items()
                                                if k != "suggestions"}}}
        return ExperimentDetail(self._summary(experiment, trials, objective), trials, spec,
                                "the Experiment resource in the cluster", record,
                                bool((experiment.get("spec") or {}).get("earlyStopping")))

    def _logs(self, trial: TrialView) -> list[MetricLogView]:
        with self._lock:
            cached = self._finished_logs.get(trial.name)
        if cached is not None:
            return cached
        try:
            reply = self._stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name=trial.name),
                                                 timeout=_RPC_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise SourceError(f"the DBManager at {self.db_manager} does not answer: "
                              f"{exc.code().name} {exc.details() or ''}".strip()) from None  # type: ignore[attr-defined]
        logs = [MetricLogView(m.metric.name, m.metric.value, m.time_stamp) for m in reply.observation_log.metric_logs]
        if trial.condition not in ("Created", "Running"):
            with self._lock:
                self._finished_logs[trial.name] = logs
        return logs

    def curves(self, experiment_id: str) -> dict[str, dict[str, list[float]]]:
        detail = self.experiment(experiment_id)
        out: dict[str, dict[str, list[float]]] = {}
        for trial in detail.trials:
            for entry in self._logs(trial):
                try:
                    value = float(entry.value)
                except ValueError:
                    continue
                if value == value and abs(value) != float("inf"):
                    out.setdefault(trial.name, {}).setdefault(entry.metric, []).append(value)
        return out

    def trial(self, experiment_id: str, trial_name: str) -> TrialDetail:
        experiment = self._experiment(experiment_id)
        namespace = experiment["metadata"].get("namespace", "default")
        objective = objective_of(experiment)
        raw = self._get("trials", namespace, trial_name) if trial_name else None
        labels = ((raw or {}).get("metadata") or {}).get("labels") or {}
        if raw is None or labels.get(EXPERIMENT_LABEL) != experiment["metadata"]["name"]:
            raise NotFound("trial", trial_name, [t["metadata"]["name"] for t in self._trials(experiment)])
        view = _trial_view(raw, objective)
        conditions = sorted((raw.get("status") or {}).get("conditions") or [],
                            key=lambda c: str(c.get("lastTransitionTime") or ""))
        history = [StatusChange(str(c.get("type")) + ("" if str(c.get("status")) == "True" else f" ({c.get('status')})"),
                                c.get("lastTransitionTime"), str(c.get("message") or c.get("reason") or ""))
                   for c in conditions]
        summary = self._summary(experiment, None, objective)
        return TrialDetail(summary, view, self._logs(view), history, {str(k): str(v) for k, v in labels.items()}, {})

    def log_tail(self, experiment_id: str, trial_name: str, max_bytes: int) -> LogTail:
        detail = self.trial(experiment_id, trial_name)
        namespace = detail.experiment.location.removeprefix("namespace ")
        return LogTail("", 0, False, available=False,
                       note=f"the dashboard may not read pod logs; kubectl -n {namespace} logs job/{trial_name}")
