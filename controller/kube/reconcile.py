"""One reconcile step per resource kind: read state, call the pure functions, write through the API.

Level-based and idempotent: every step recomputes from what the API server holds, so a
controller restart resumes each experiment where it was. Trials are named and recorded in
the Suggestion's status *before* any Trial is created, and creation of an existing name is a
no-op, so no trial is lost or made twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import yaml

from controller.dbmanager import DBManagerClient
from controller.grpc_clients import EarlyStoppingClient, SuggestionClient, SuggestionServerError
from controller.kube import early_stopping, render, status
from controller.kube.config import ConfigError, ControllerConfig, parse_config_map
from controller.kube.logs import collect_stdout
from controller.logic import (
    count_trials,
    experiment_outcome,
    experiment_seed,
    new_trial_name,
    overlay_settings,
    suggestions_ended,
    trials_to_request,
)
from controller.template import TemplateError, meta_values, substitute, trial_parameter_values
from kubenas import proto_convert, rfc3339
from kubenas.early_stopping import rule_to_dict, rules_met
from kubenas.experiment import Experiment, SpecError, load_experiment_dict
from kubenas.experiment_yaml import YamlBombError, load_yaml_documents
from kubenas.metrics import MetricPoint
from kubenas.trials import TrialCondition

__all__ = [
    "CLUSTER_COLLECTORS",
    "Api",
    "Context",
    "early_stopping_address",
    "reconcile_experiment",
    "reconcile_suggestion",
    "reconcile_trial",
    "suggestion_address",
]

log = logging.getLogger(__name__)

API = render.API_VERSION
#: Collectors the cluster runtime implements; others fail the experiment with a message.
CLUSTER_COLLECTORS = ("StdOut", "Push", "None")


class Api(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...
    def list_objects(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...
    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def patch_spec(self, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None: ...
    def config_map(self, namespace: str, name: str) -> dict[str, str] | None: ...
    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...
    def pod_log(self, namespace: str, pod: str, container: str | None) -> str: ...


def suggestion_address(service: str, namespace: str) -> str:
    """Where the controller reaches a suggestion Service. In the cluster the Service DNS name;
    outside (development) `KUBENAS_SUGGESTION_ADDRESS`, e.g. `localhost:6789` next to a
    `kubectl port-forward svc/<experiment>-<algorithm> 6789`."""
    template = os.environ.get("KUBENAS_SUGGESTION_ADDRESS", "{service}.{namespace}:" + str(render.SUGGESTION_PORT))
    return template.format(service=service, namespace=namespace)


def early_stopping_address(service: str, namespace: str) -> str:
    """Where the controller reaches a suggestion Service's EarlyStopping port (Katib: 6788);
    outside the cluster `KUBENAS_EARLY_STOPPING_ADDRESS`, e.g. `localhost:6788`."""
    template = os.environ.get("KUBENAS_EARLY_STOPPING_ADDRESS",
                              "{service}.{namespace}:" + str(render.EARLY_STOPPING_PORT))
    return template.format(service=service, namespace=namespace)


def _now() -> str:
    return rfc3339.now()


@dataclass
class Context:
    """What a reconcile step needs besides the resource: the API, where config lives, clocks and addresses."""

    api: Api
    config_namespace: str = "kubenas-system"
    config_name: str = "katib-config"
    now: Callable[[], str] = _now
    address_of: Callable[[str, str], str] = suggestion_address
    db_address: str | None = None  # overrides the ConfigMap's dbManagerAddress (development)
    clients: dict[str, SuggestionClient] = field(default_factory=dict)
    early_stopping_address_of: Callable[[str, str], str] = early_stopping_address
    early_stopping_clients: dict[str, EarlyStoppingClient] = field(default_factory=dict)
    db_clients: dict[str, DBManagerClient] = field(default_factory=dict)
    # Seconds a read katib-config is reused (0: read on every use). The operator reuses it
    # briefly: without that, every trial would cost a ConfigMap read for the DBManager address.
    config_ttl_s: float = 0.0
    _config_cache: list[tuple[float, ControllerConfig]] = field(default_factory=list)

    def config(self) -> ControllerConfig:
        if self._config_cache and time.monotonic() - self._config_cache[0][0] < self.config_ttl_s:
            return self._config_cache[0][1]
        data = self.api.config_map(self.config_namespace, self.config_name)
        if data is None:
            raise ConfigError("ConfigMap", f"{self.config_namespace}/{self.config_name}",
                              "not found; install manifests/base, or set KUBENAS_NAMESPACE to where it is")
        config = parse_config_map(data)
        self._config_cache[:] = [(time.monotonic(), config)]
        return config

    def suggestion_client(self, address: str) -> SuggestionClient:
        if address not in self.clients:
            self.clients[address] = SuggestionClient(address, timeout_s=600.0)
        return self.clients[address]

    def early_stopping_client(self, address: str) -> EarlyStoppingClient:
        if address not in self.early_stopping_clients:
            self.early_stopping_clients[address] = EarlyStoppingClient(
                address, self.db_address or self.config().db_manager_address)
        return self.early_stopping_clients[address]

    def db(self) -> contextlib.AbstractContextManager[DBManagerClient]:
        """The DBManager client, one channel per address for the controller's life (a `with`
        block does not close it: a channel per call costs a connection per trial)."""
        address = self.db_address or self.config().db_manager_address
        if address not in self.db_clients:
            self.db_clients[address] = DBManagerClient(address)
        return contextlib.nullcontext(self.db_clients[address])


def _ns_name(body: Mapping[str, Any]) -> tuple[str, str]:
    return body["metadata"]["namespace"], body["metadata"]["name"]


def _fresh(ctx: Context, kind: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resource as the API server holds it now. A watch cache may lag behind our own last
    status patch; appending suggestions to a stale list would lose some and ask again."""
    ns, name = _ns_name(body)
    return ctx.api.get(API, kind, ns, name)


def _selector(label: str, value: str) -> str:
    return f"{label}={value}"


# --- Experiment ----------------------------------------------------------------------

def _load(body: Mapping[str, Any]) -> Experiment:
    data = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    return load_experiment_dict(data)


def _cluster_check(exp: Experiment) -> str | None:
    kind = exp.spec.metrics_collector_spec.collector.kind.value
    if kind not in CLUSTER_COLLECTORS:
        return (f"spec.metricsCollectorSpec.collector.kind: invalid value {kind!r}: "
                f"the kubenas controller collects {', '.join(CLUSTER_COLLECTORS)}")
    return None


def _fail_experiment(ctx: Context, body: Mapping[str, Any], message: str) -> None:
    ns, name = _ns_name(body)
    old = body.get("status") or {}
    conditions = status.experiment_conditions(old.get("conditions"), None, ctx.now(), failure=message)
    ctx.api.patch_status("Experiment", ns, name, {"conditions": conditions, "completionTime": ctx.now()})
    log.warning("experiment %s/%s failed: %s", ns, name, message)


def _trial_template(ctx: Context, exp: Experiment, namespace: str) -> dict[str, Any]:
    template = exp.spec.trial_template
    assert template is not None  # the experiment rules require one
    if template.trial_spec is not None:
        return template.trial_spec
    source = template.config_map
    assert source is not None
    data = ctx.api.config_map(source.config_map_namespace or namespace, source.config_map_name) or {}
    if source.template_path not in data:
        raise TemplateError(f"configMap {source.config_map_name}/{source.template_path}",
                            f"the ConfigMap has keys: {', '.join(sorted(data)) or 'none'}")
    try:
        documents = load_yaml_documents(data[source.template_path])
    except (yaml.YAMLError, YamlBombError) as exc:
        raise TemplateError(source.template_path, f"the template is not usable YAML: {exc}") from None
    loaded = documents[0] if len(documents) == 1 else None
    if not isinstance(loaded, dict):
        raise TemplateError(source.template_path, "the template must be one YAML mapping")
    return loaded


def _new_trial(ctx: Context, body: Mapping[str, Any], exp: Experiment, assignment: Mapping[str, Any],
               rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    ns, _ = _ns_name(body)
    name = assignment["name"]
    pairs = [(a["name"], a.get("value", "")) for a in assignment.get("parameterAssignments", [])]
    labels = dict(assignment.get("labels") or {})
    template = _trial_template(ctx, exp, ns)
    kind, api_version = str(template.get("kind", "Job")), str(template.get("apiVersion", "batch/v1"))
    values = trial_parameter_values(exp, dict(pairs), name, ns, kind, api_version, labels)
    run_spec = substitute(template, values, meta_values(name, ns, kind, api_version, labels))
    return render.render_trial(body, name, pairs, run_spec, labels, rules or ())


def _finish(ctx: Context, body: Mapping[str, Any], policy: str, algorithm: str) -> None:
    """Free the suggestion server as resumePolicy says: Never and FromVolume delete its
    Deployment and Service (FromVolume keeps the PVC: a later restart resumes ENAS from it),
    LongRunning keeps it running. The Suggestion itself stays, as in Katib: its status is the
    record of what was suggested."""
    ns, name = _ns_name(body)
    service = render.suggestion_service_name(name, algorithm)
    if policy == "LongRunning":
        return
    suggestion = ctx.api.get(API, "Suggestion", ns, name)
    if suggestion is not None and not status.is_finished((suggestion.get("status") or {}).get("conditions")):
        kept = ", state volume kept" if policy == "FromVolume" else ""
        _suggestion_condition(ctx, suggestion, "Succeeded", True, "SuggestionSucceeded",
                              f"experiment finished; deployment removed{kept}")
    ctx.api.delete("apps/v1", "Deployment", ns, service)
    ctx.api.delete("v1", "Service", ns, service)


def _reopen(ctx: Context, suggestion: Mapping[str, Any]) -> None:
    """A raised budget restarts a finished experiment: the suggestion is deployed and validated again."""
    conditions = (suggestion.get("status") or {}).get("conditions") or []
    now = ctx.now()
    conditions = status.set_condition(conditions, "Succeeded", False, "SuggestionRestarting", "budget raised", now)
    conditions = status.set_condition(conditions, "Running", False, "SuggestionRestarting", "budget raised", now)
    ns, name = _ns_name(suggestion)
    ctx.api.patch_status("Suggestion", ns, name, {"conditions": conditions})


def reconcile_experiment(ctx: Context, body: Mapping[str, Any], listed: bool = False,
                         trials: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Status from the trials; the Suggestion asked for what is missing; Trials made from its reply.
    `listed`: the body was just read from the API server, so it is used as is; so were
    `trials` (the experiment's Trials) when given. Returns the Trials it made."""
    ns, name = _ns_name(body)
    if not listed:
        fresh = _fresh(ctx, "Experiment", body)
        if fresh is None:
            return []
        body = fresh
    old = body.get("status") or {}
    if status.has_condition(old.get("conditions"), "Failed"):
        return []
    try:
        exp = _load(body)
    except SpecError as exc:
        _fail_experiment(ctx, body, "; ".join(exc.lines()))
        return []
    problem = _cluster_check(exp)
    if problem:
        _fail_experiment(ctx, body, problem)
        return []
    objective = exp.objective()
    if trials is None:
        trials = ctx.api.list_objects(API, "Trial", ns, _selector(render.EXPERIMENT_LABEL, name))
    records = [status.trial_record(t, objective) for t in trials]
    suggestion = ctx.api.get(API, "Suggestion", ns, name)
    sugg_status = (suggestion or {}).get("status") or {}
    if status.has_condition(sugg_status.get("conditions"), "Failed"):
        failed = next(c for c in sugg_status["conditions"] if c.get("type") == "Failed")
        _fail_experiment(ctx, body, failed.get("message", "the suggestion failed"))
        service = render.suggestion_service_name(name, exp.algorithm_name)
        ctx.api.delete("apps/v1", "Deployment", ns, service)  # the Suggestion stays, to show why
        ctx.api.delete("v1", "Service", ns, service)
        return []
    outcome = experiment_outcome(objective, exp.max_trial_count, exp.max_failed_trial_count, records,
                                 suggestions_exhausted=bool(sugg_status.get("exhausted")))
    was_finished = status.is_finished(old.get("conditions"))
    if was_finished and outcome is None and exp.resume_policy == "Never":
        return []  # Katib: only LongRunning/FromVolume experiments restart when the budget is raised
    now = ctx.now()
    new = {**status.experiment_status(objective, trials),
           "conditions": status.experiment_conditions(old.get("conditions"), outcome, now),
           "startTime": old.get("startTime", now)}
    new["completionTime"] = (old.get("completionTime") or now) if outcome is not None else None
    if _changed(old, new):
        ctx.api.patch_status("Experiment", ns, name, {**new, "lastReconcileTime": now})
    counts = count_trials(records)
    if outcome is not None:
        if not was_finished:
            _kill(ctx, trials, records, counts.active, f"experiment finished: {outcome.reason.value}")
            _finish(ctx, body, exp.resume_policy, exp.algorithm_name)
        return []
    allowed = exp.parallel_trial_count if exp.max_trial_count is None else \
        min(exp.parallel_trial_count, exp.max_trial_count - counts.completed)
    if counts.active > max(allowed, 0):  # parallelTrialCount or maxTrialCount lowered by an edit
        _kill(ctx, trials, records, counts.active - max(allowed, 0), "parallelTrialCount or maxTrialCount lowered")
        return []
    _, total = trials_to_request(exp.parallel_trial_count, exp.max_trial_count, counts.completed, counts.active)
    if suggestion is None:
        ctx.api.create(render.render_suggestion(body, total))
        return []
    if status.has_condition(sugg_status.get("conditions"), "Succeeded"):
        _reopen(ctx, suggestion)
    if total > int(suggestion["spec"].get("requests", 0)):
        ctx.api.patch_spec("Suggestion", ns, name, {"requests": total})
    existing = {t["metadata"]["name"] for t in trials}
    made = []
    for assignment in sugg_status.get("suggestions", []):
        if assignment["name"] not in existing:
            try:
                made.append(ctx.api.create(_new_trial(ctx, body, exp, assignment, sugg_status.get("earlyStoppingRules"))))
            except TemplateError as exc:
                _fail_experiment(ctx, body, str(exc))
                return made
    return made


def _get_or_create(ctx: Context, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return ctx.api.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]) or ctx.api.create(obj)


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a status patch would change anything (skips a write per timer tick)."""
    return any(old.get(key) != value for key, value in new.items())


def _kill(ctx: Context, trials: list[dict[str, Any]], records: list[Any], how_many: int, message: str) -> None:
    """Mark the `how_many` newest active trials Killed and delete their workloads."""
    active = [t for t, r in zip(trials, records) if not r.condition.finished]
    active.sort(key=lambda t: (t["metadata"].get("creationTimestamp") or "", t["metadata"]["name"]), reverse=True)
    for trial in active[:how_many]:
        ns, name = _ns_name(trial)
        run_spec = trial["spec"].get("runSpec") or {}
        ctx.api.patch_status("Trial", ns, name, status.trial_status(
            trial.get("status"), TrialCondition.KILLED, message, ctx.now()))
        ctx.api.delete(run_spec.get("apiVersion", "batch/v1"), run_spec.get("kind", "Job"), ns, name)


# --- Suggestion ----------------------------------------------------------------------

def _suggestion_condition(ctx: Context, body: Mapping[str, Any], type_: str, ok: bool, reason: str,
                          message: str, extra: Mapping[str, Any] | None = None) -> None:
    ns, name = _ns_name(body)
    old = body.get("status") or {}
    conditions = status.set_condition(old.get("conditions") or [], type_, ok, reason, message, ctx.now())
    ctx.api.patch_status("Suggestion", ns, name, {"conditions": conditions, **(extra or {})})


def reconcile_suggestion(ctx: Context, body: Mapping[str, Any], listed: bool = False,
                         experiment: Mapping[str, Any] | None = None,
                         trials: list[dict[str, Any]] | None = None) -> bool:
    """Keep the suggestion server deployed; validate once; fetch what `spec.requests` asks for.

    Returns False while the server is not ready yet; raises SuggestionServerError when it
    cannot be reached (both: the caller retries later). Only INVALID_ARGUMENT fails it.
    `listed`: the body was just read from the API server, so it is used as is; so were
    `experiment` and `trials` (the experiment's Trials, possibly missing the newest, which the
    status still records) when given.
    """
    ns, name = _ns_name(body)
    if not listed:
        fresh = _fresh(ctx, "Suggestion", body)
        if fresh is None:
            return True
        body = fresh
    old = body.get("status") or {}
    if status.is_finished(old.get("conditions")):
        return True
    experiment = experiment or ctx.api.get(API, "Experiment", ns, name)
    if experiment is None:
        return True  # being deleted; owner references clean up
    exp = _load(experiment)
    try:
        controller_config = ctx.config()
        config = controller_config.suggestion(exp.algorithm_name)
        if exp.spec.early_stopping is not None:
            controller_config.early_stopping(exp.spec.early_stopping.algorithm_name)
    except ConfigError as exc:
        _suggestion_condition(ctx, body, "Failed", True, "SuggestionFailed", str(exc))
        return True
    service = render.suggestion_service_name(name, exp.algorithm_name)
    deployment = ctx.api.get("apps/v1", "Deployment", ns, service)
    if deployment is None or int((deployment.get("status") or {}).get("readyReplicas") or 0) < 1:
        # Made (again) only while the server is not up: a ready one needs no three reads per step.
        if body["spec"].get("resumePolicy") == "FromVolume":
            _get_or_create(ctx, render.render_suggestion_pvc(body, config))
        _get_or_create(ctx, render.render_suggestion_service(body))
        deployment = deployment or ctx.api.create(render.render_suggestion_deployment(body, config))
    if int((deployment.get("status") or {}).get("readyReplicas") or 0) < 1:
        if not old.get("conditions"):
            _suggestion_condition(ctx, body, "Created", True, "SuggestionCreated", "Suggestion is created")
        return False
    client = ctx.suggestion_client(ctx.address_of(service, ns))
    experiment_msg = exp.to_proto()
    if not status.has_condition(old.get("conditions"), "Running"):
        try:
            client.validate(experiment_msg)
        except SuggestionServerError as exc:
            if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
                raise  # unreachable or restarting: the caller retries later
            _suggestion_condition(ctx, body, "Failed", True, "SuggestionFailed",
                                  f"ValidateAlgorithmSettings: {exc}")
            return True
        if exp.spec.early_stopping is not None:
            try:
                ctx.early_stopping_client(ctx.early_stopping_address_of(service, ns)).validate(
                    experiment_msg.spec.early_stopping)
            except SuggestionServerError as exc:
                if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                _suggestion_condition(ctx, body, "Failed", True, "SuggestionFailed",
                                      f"ValidateEarlyStoppingSettings: {exc}")
                return True
        _suggestion_condition(ctx, body, "Running", True, "SuggestionRunning", "Suggestion is running")
        return True  # the next step sees the Running condition in a fresh body
    requests, count = int(body["spec"].get("requests", 0)), status.suggestion_count(old)
    if requests <= count or old.get("exhausted"):
        return True
    objective = exp.objective()
    if trials is None:
        trials = ctx.api.list_objects(API, "Trial", ns, _selector(render.EXPERIMENT_LABEL, name))
    recorded = old.get("suggestions") or []
    records = status.suggestion_history(trials, recorded, objective)
    history = [proto_convert.trial_to_proto(r, objective) for r in records]
    # Katib's round trip: what replies returned (hyperband's state) goes back over the spec's settings.
    stored = {s["name"]: str(s.get("value", "")) for s in old.get("algorithmSettings") or []}
    try:
        reply = client.suggest(experiment_msg, history, requests - count, requests, stored)
    except SuggestionServerError as exc:
        if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
            raise
        _suggestion_condition(ctx, body, "Failed", True, "SuggestionFailed", f"GetSuggestions: {exc}")
        return True
    settings = overlay_settings(stored, reply.algorithm_settings)
    exhausted = suggestions_ended(reply.exhausted, len(reply.assignments), sum(not r.condition.finished for r in records))
    if not reply.assignments and not exhausted and settings == stored:
        return True  # the algorithm waits for running trials: nothing to write (no write, no busy step)
    rules = _early_stopping_rules(ctx, exp, experiment_msg, history, service, ns, old)
    made = {t["metadata"]["name"] for t in trials}
    # Names as the local runtime gives them: seeded experiments get the same names on a rerun.
    taken, seed, new = made | {a["name"] for a in recorded}, experiment_seed(exp.algorithm_settings()), []
    for a in reply.assignments:
        trial_name = a.trial_name if a.trial_name and a.trial_name not in taken else new_trial_name(name, taken, seed)
        taken.add(trial_name)
        new.append({"name": trial_name,
                    "parameterAssignments": [{"name": p.name, "value": p.value} for p in a.assignments],
                    **({"labels": dict(a.labels)} if a.labels else {})})
    ctx.api.patch_status("Suggestion", ns, name, {
        # Only suggestions whose Trial is not made yet: the Trials hold the rest, so the
        # Suggestion stays small however many trials the experiment runs.
        "suggestions": [a for a in recorded if a["name"] not in made] + new,
        "suggestionCount": count + len(new),
        "exhausted": exhausted,
        "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
        **({"earlyStoppingRules": rules} if rules is not None else {}),
    })
    return True


def _early_stopping_rules(ctx: Context, exp: Experiment, experiment_msg: Any, history: list[Any], service: str,
                          ns: str, old: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Katib asks GetEarlyStoppingRules along with GetSuggestions; the trials made from this
    reply carry the rules. None: no earlyStopping, or the rules could not be had now (the
    previous ones stay; a lost early stop costs time, a blocked suggestion costs the run)."""
    if exp.spec.early_stopping is None:
        return None
    client = ctx.early_stopping_client(ctx.early_stopping_address_of(service, ns))
    try:
        rules = client.rules(experiment_msg, history)
    except SuggestionServerError as exc:
        log.warning("GetEarlyStoppingRules for %s/%s failed (%s): %s; keeping %d previous rules",
                    ns, exp.name, exc.code, exc, len(old.get("earlyStoppingRules") or []))
        return None
    return [rule_to_dict(r) for r in rules]


# --- Trial ---------------------------------------------------------------------------

def _collector(spec: Mapping[str, Any]) -> str:
    return str(((spec.get("metricsCollector") or {}).get("collector") or {}).get("kind", "StdOut"))


def _stdout_points(ctx: Context, trial: Mapping[str, Any], objective: Any) -> list[MetricPoint]:
    ns, name = _ns_name(trial)
    spec = trial["spec"]
    source = (spec.get("metricsCollector") or {}).get("source") or {}
    filters = ((source.get("filter") or {}).get("metricsFormat")) or ()
    return collect_stdout(ctx.api, ns, _selector(render.TRIAL_LABEL, name),
                          spec.get("primaryContainerName"), objective, filters)


def _points(ctx: Context, trial: Mapping[str, Any], objective: Any) -> list[MetricPoint]:
    """The trial's whole metric log, from the store; StdOut logs are put there first."""
    _, name = _ns_name(trial)
    collector = _collector(trial["spec"])
    if collector == "None":
        return []
    with ctx.db() as db:
        if collector == "StdOut":
            points = _stdout_points(ctx, trial, objective)
            db.delete(name)  # a retried collection must not double the log
            db.report(name, [(p.name, p.stored_value(), p.timestamp) for p in points])
        logs = db.get(name)
    # Text values (a genotype) count only where the experiment's filters can capture them.
    source = (trial["spec"].get("metricsCollector") or {}).get("source") or {}
    keep_text = bool((source.get("filter") or {}).get("metricsFormat"))
    return [p for p in (m.as_point(keep_text) for m in logs) if p is not None]


def reconcile_trial(ctx: Context, body: Mapping[str, Any], listed: bool = False) -> None:
    """Create the workload; follow it to an end; collect metrics; write the Trial status.
    `listed`: the body was just read from the API server (not a watch cache), so it is used as is.
    The workload and its pods are read through `ctx.api` (a step serves them from one listing)."""
    ns, name = _ns_name(body)
    if not listed:
        fresh = _fresh(ctx, "Trial", body)
        if fresh is None:
            return
        body = fresh
    old = body.get("status") or {}
    if status.latest_condition(old.get("conditions")) in {c.value for c in TrialCondition if c.finished}:
        return
    spec = body["spec"]
    objective = status.objective_from_spec(spec.get("objective") or {})
    run_spec = spec["runSpec"]
    run = ctx.api.get(run_spec.get("apiVersion", "batch/v1"), run_spec.get("kind", "Job"), ns, name)
    now = ctx.now()
    if run is None:
        ctx.api.create(render.render_run(body, ctx.db_address or ctx.config().db_manager_address))
        ctx.api.patch_status("Trial", ns, name,
                             status.trial_status(old, TrialCondition.CREATED, "Trial is created", now))
        return
    success, failure = spec.get("successCondition"), spec.get("failureCondition")
    if not status.workload_finished(run, success, failure):
        pods = ctx.api.list_pods(ns, _selector(render.TRIAL_LABEL, name))
        if any((p.get("status") or {}).get("phase") == "Running" for p in pods):
            # While it runs, the log so far gives a live observation (kubectl get trials shows it);
            # the store is written once, from the whole log, when the workload ends.
            so_far = _stdout_points(ctx, body, objective) if _collector(spec) == "StdOut" else None
            if _stop_early(ctx, body, objective, so_far):
                return
            live = status.observation_from_points(objective, so_far) if so_far is not None \
                else old.get("observation")
            new = status.trial_status(old, TrialCondition.RUNNING, "Trial is running", now, live)
            if any(old.get(k) != v for k, v in new.items()):
                ctx.api.patch_status("Trial", ns, name, new)
        return
    observation = status.observation_from_points(objective, _points(ctx, body, objective))
    final = status.trial_outcome(run, success, failure, observation, objective, _collector(spec))
    assert final is not None
    message = {TrialCondition.SUCCEEDED: "Trial has succeeded",
               TrialCondition.FAILED: "Trial has failed",
               TrialCondition.METRICS_UNAVAILABLE: f"metric {objective.metric_name!r} was not reported"}.get(
        final, f"Trial is {final.value}")
    ctx.api.patch_status("Trial", ns, name, status.trial_status(old, final, message, now, observation))
    if not spec.get("retainRun"):
        ctx.api.delete(run_spec.get("apiVersion", "batch/v1"), run_spec.get("kind", "Job"), ns, name)


def _stop_early(ctx: Context, trial: Mapping[str, Any], objective: Any, so_far: list[MetricPoint] | None) -> bool:
    """Apply the Trial's early-stopping rules to its metrics so far (the StdOut log, or the
    store for Push); on a stop, record the log, delete the workload and mark it EarlyStopped."""
    spec = trial["spec"]
    rules = early_stopping.trial_rules(spec)
    collector = _collector(spec)
    if not rules or collector not in ("StdOut", "Push"):
        return False
    ns, name = _ns_name(trial)
    if so_far is None:
        with ctx.db() as db:
            so_far = [p for p in (m.as_point() for m in db.get(name)) if p is not None]
    if not rules_met(rules, objective, ((p.name, p.value) for p in so_far)):
        return False
    if collector == "StdOut":
        with ctx.db() as db:  # the observation log so far, as at a normal end
            db.delete(name)
            db.report(name, [(p.name, p.stored_value(), p.timestamp) for p in so_far])
    observation = status.observation_from_points(objective, so_far)
    message = f"Trial is early stopped: {early_stopping.describe(rules)}"
    ctx.api.patch_status("Trial", ns, name,
                         early_stopping.early_stopped_status(trial.get("status"), message, ctx.now(), observation))
    run_spec = spec["runSpec"]
    ctx.api.delete(run_spec.get("apiVersion", "batch/v1"), run_spec.get("kind", "Job"), ns, name)
    log.info("trial %s/%s stopped early: %s", ns, name, early_stopping.describe(rules))
    return True
