"""The Suggestion: its server deployed and validated once, then asked for what `spec.requests`
holds beyond the suggestions it has; released when the experiment ends.

Trials are named and recorded in the Suggestion's status *before* any Trial is created (the
Experiment step makes them), and creation of an existing name is a no-op, so no trial is lost
or made twice. The GetSuggestions round trip is two pure functions: `suggestion_request`
builds the call from the status and the Trials, `status_after_reply` is the status the reply
leaves; `reconcile_suggestion` reads, calls and writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from controller.grpc_clients import SuggestionReply, SuggestionServerError
from controller.kube import render, status
from controller.kube.config import ConfigError, SuggestionConfig
from controller.kube.context import (
    API,
    Context,
    experiment_selector,
    fresh,
    get_or_create,
    load_experiment,
    ns_name,
)
from controller.logic import (
    InvalidTrialName,
    experiment_seed,
    overlay_settings,
    suggestions_ended,
    trial_names,
)
from kubenas import proto_convert
from kubenas.api.v1beta1 import api_pb2
from kubenas.early_stopping import rule_to_dict
from kubenas.experiment import Experiment
from kubenas.trials import Objective

__all__ = [
    "SuggestionRequest",
    "delete_server",
    "failure_message",
    "reconcile_suggestion",
    "release_server",
    "reopen",
    "requests_open",
    "status_after_reply",
    "suggestion_request",
]

log = logging.getLogger(__name__)


# --- decisions -----------------------------------------------------------------------

@dataclass(frozen=True)
class SuggestionRequest:
    """One GetSuggestions call: the experiment, every trial so far, how many new and in all."""

    experiment: api_pb2.Experiment
    history: list[api_pb2.Trial]
    current: int
    total: int
    # Katib's round trip: what earlier replies returned as algorithm settings (hyperband's
    # state) goes back over the spec's settings.
    stored: dict[str, str]
    running: int  # trials of the history not finished yet


def requests_open(suggestion: Mapping[str, Any]) -> int:
    """How many suggestions `spec.requests` asks for beyond those received (0 once the
    algorithm said it has no more)."""
    old = suggestion.get("status") or {}
    if old.get("exhausted"):
        return 0
    return max(0, int(suggestion["spec"].get("requests", 0)) - status.suggestion_count(old))


def suggestion_request(experiment: api_pb2.Experiment, objective: Objective, suggestion: Mapping[str, Any],
                       trials: Sequence[Mapping[str, Any]]) -> SuggestionRequest:
    """The GetSuggestions call for the open requests: the history is every Trial plus every
    suggestion recorded in the status whose Trial is not made yet (`status.suggestion_history`)."""
    old = suggestion.get("status") or {}
    records = status.suggestion_history(trials, old.get("suggestions") or [], objective)
    history = [proto_convert.trial_to_proto(r, objective) for r in records]
    return SuggestionRequest(experiment, history, requests_open(suggestion),
                             int(suggestion["spec"].get("requests", 0)), stored_settings(old),
                             sum(not r.condition.finished for r in records))


def stored_settings(old: Mapping[str, Any]) -> dict[str, str]:
    """The algorithm settings the Suggestion's status keeps (Katib's status.algorithmSettings)."""
    return {s["name"]: str(s.get("value", "")) for s in old.get("algorithmSettings") or []}


def reply_changes_nothing(old: Mapping[str, Any], reply: SuggestionReply, running: int) -> bool:
    """An empty reply that keeps the settings while trials run: the algorithm waits for them
    (hyperband's rung), so nothing is written and no step is spent."""
    stored = stored_settings(old)
    return (not reply.assignments and not suggestions_ended(reply.exhausted, 0, running)
            and overlay_settings(stored, reply.algorithm_settings) == stored)


def status_after_reply(exp: Experiment, old: Mapping[str, Any], reply: SuggestionReply, made: set[str],
                       rules: list[dict[str, Any]] | None, running: int = 0) -> dict[str, Any]:
    """The Suggestion status patch a GetSuggestions reply makes: the new assignments named (as
    the local runtime names them, so seeded experiments get the same names on a rerun) and
    recorded. `made`: the names of the Trials that exist; `rules`: the early-stopping rules
    to keep (None: the previous ones stay); `running`: trials not finished (an empty reply ends
    the search only when none runs)."""
    recorded = old.get("suggestions") or []
    names = trial_names(exp.name, (a.trial_name for a in reply.assignments),
                        made | {a["name"] for a in recorded}, experiment_seed(exp.algorithm_settings()))
    new = [{"name": name,
            "parameterAssignments": [{"name": p.name, "value": p.value} for p in a.assignments],
            **({"labels": dict(a.labels)} if a.labels else {})}
           for name, a in zip(names, reply.assignments)]
    return {
        # Only suggestions whose Trial is not made yet: the Trials hold the rest, so the
        # Suggestion stays small however many trials the experiment runs.
        "suggestions": [a for a in recorded if a["name"] not in made] + new,
        "suggestionCount": status.suggestion_count(old) + len(new),
        "exhausted": suggestions_ended(reply.exhausted, len(reply.assignments), running),
        "algorithmSettings": [{"name": k, "value": v} for k, v in
                              overlay_settings(stored_settings(old), reply.algorithm_settings).items()],
        **({"earlyStoppingRules": rules} if rules is not None else {}),
    }


def failure_message(suggestion: Mapping[str, Any] | None) -> str | None:
    """Why the Suggestion failed, or None while it has not."""
    conditions = ((suggestion or {}).get("status") or {}).get("conditions")
    if not status.has_condition(conditions, "Failed"):
        return None
    failed = next(c for c in conditions or [] if c.get("type") == "Failed")
    return str(failed.get("message", "the suggestion failed"))


def _ready(deployment: Mapping[str, Any] | None) -> bool:
    return deployment is not None and int((deployment.get("status") or {}).get("readyReplicas") or 0) >= 1


# --- reconcile -----------------------------------------------------------------------

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
    suggestion = body if listed else fresh(ctx, "Suggestion", body)
    if suggestion is None or status.is_finished((suggestion.get("status") or {}).get("conditions")):
        return True
    ns, name = ns_name(suggestion)
    experiment = experiment or ctx.api.get(API, "Experiment", ns, name)
    if experiment is None:
        return True  # being deleted; owner references clean up
    exp = load_experiment(experiment)
    config = _server_config(ctx, suggestion, exp)
    if config is None:
        return True
    service = render.suggestion_service_name(name, exp.algorithm_name)
    if not _deploy(ctx, suggestion, config, service):
        return False
    experiment_msg = exp.to_proto()
    if not status.has_condition((suggestion.get("status") or {}).get("conditions"), "Running"):
        _validate(ctx, suggestion, exp, experiment_msg, service)
        return True  # the next step sees the Running condition in a fresh body
    if requests_open(suggestion) > 0:
        if trials is None:
            trials = ctx.api.list_objects(API, "Trial", ns, experiment_selector(name))
        _get_suggestions(ctx, suggestion, exp, suggestion_request(experiment_msg, exp.objective(), suggestion, trials),
                         trials, service)
    return True


def _condition(ctx: Context, suggestion: Mapping[str, Any], type_: str, ok: bool, reason: str, message: str) -> None:
    ns, name = ns_name(suggestion)
    old = suggestion.get("status") or {}
    conditions = status.set_condition(old.get("conditions") or [], type_, ok, reason, message, ctx.now())
    ctx.api.patch_status("Suggestion", ns, name, {"conditions": conditions})


def _server_config(ctx: Context, suggestion: Mapping[str, Any], exp: Experiment) -> SuggestionConfig | None:
    """The katib-config entry of the algorithm (and the early-stopping one must exist); None
    when either is missing, with the Suggestion Failed."""
    try:
        controller_config = ctx.config()
        config = controller_config.suggestion(exp.algorithm_name)
        if exp.spec.early_stopping is not None:
            controller_config.early_stopping(exp.spec.early_stopping.algorithm_name)
    except ConfigError as exc:
        _condition(ctx, suggestion, "Failed", True, "SuggestionFailed", str(exc))
        return None
    return config


def _deploy(ctx: Context, suggestion: Mapping[str, Any], config: SuggestionConfig, service: str) -> bool:
    """Whether the server is ready; while it is not, its Deployment, Service (and state PVC) are
    made where missing: a ready one needs no three reads per step."""
    ns, _ = ns_name(suggestion)
    deployment = ctx.api.get("apps/v1", "Deployment", ns, service)
    if _ready(deployment):
        return True
    if suggestion["spec"].get("resumePolicy") == "FromVolume":
        get_or_create(ctx, render.render_suggestion_pvc(suggestion, config))
    get_or_create(ctx, render.render_suggestion_service(suggestion))
    deployment = deployment or ctx.api.create(render.render_suggestion_deployment(suggestion, config))
    if _ready(deployment):
        return True
    if not (suggestion.get("status") or {}).get("conditions"):
        _condition(ctx, suggestion, "Created", True, "SuggestionCreated", "Suggestion is created")
    return False


def _validate(ctx: Context, suggestion: Mapping[str, Any], exp: Experiment, experiment_msg: api_pb2.Experiment,
              service: str) -> None:
    """ValidateAlgorithmSettings, and ValidateEarlyStoppingSettings with earlyStopping: the
    Suggestion is Running, or Failed with the server's reason."""
    ns, _ = ns_name(suggestion)
    calls = [("ValidateAlgorithmSettings", lambda: ctx.suggestion_client(ctx.address_of(service, ns)).validate(
        experiment_msg))]
    if exp.spec.early_stopping is not None:
        calls.append(("ValidateEarlyStoppingSettings", lambda: ctx.early_stopping_client(
            ctx.early_stopping_address_of(service, ns)).validate(experiment_msg.spec.early_stopping)))
    for method, call in calls:
        try:
            call()
        except SuggestionServerError as exc:
            if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
                raise  # unreachable or restarting: the caller retries later
            _condition(ctx, suggestion, "Failed", True, "SuggestionFailed", f"{method}: {exc}")
            return
    _condition(ctx, suggestion, "Running", True, "SuggestionRunning", "Suggestion is running")


def _get_suggestions(ctx: Context, suggestion: Mapping[str, Any], exp: Experiment, request: SuggestionRequest,
                     trials: Sequence[Mapping[str, Any]], service: str) -> None:
    """GetSuggestions (and GetEarlyStoppingRules) for `request`; the reply goes into the status."""
    ns, name = ns_name(suggestion)
    client = ctx.suggestion_client(ctx.address_of(service, ns))
    try:
        reply = client.suggest(request.experiment, request.history, request.current, request.total, request.stored)
    except SuggestionServerError as exc:
        if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
            raise
        _condition(ctx, suggestion, "Failed", True, "SuggestionFailed", f"GetSuggestions: {exc}")
        return
    old = suggestion.get("status") or {}
    if reply_changes_nothing(old, reply, request.running):
        return
    rules = _early_stopping_rules(ctx, exp, request, service, ns, old)
    made = {t["metadata"]["name"] for t in trials}
    try:
        patch = status_after_reply(exp, old, reply, made, rules, request.running)
    except InvalidTrialName as exc:  # a server's name must never become a Trial (or a path)
        _condition(ctx, suggestion, "Failed", True, "SuggestionFailed", f"GetSuggestions: {exc}")
        return
    ctx.api.patch_status("Suggestion", ns, name, patch)


def _early_stopping_rules(ctx: Context, exp: Experiment, request: SuggestionRequest, service: str,
                          ns: str, old: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Katib asks GetEarlyStoppingRules along with GetSuggestions; the trials made from this
    reply carry the rules. None: no earlyStopping, or the rules could not be had now (the
    previous ones stay; a lost early stop costs time, a blocked suggestion costs the run)."""
    if exp.spec.early_stopping is None:
        return None
    client = ctx.early_stopping_client(ctx.early_stopping_address_of(service, ns))
    try:
        rules = client.rules(request.experiment, request.history)
    except SuggestionServerError as exc:
        log.warning("GetEarlyStoppingRules for %s/%s failed (%s): %s; keeping %d previous rules",
                    ns, exp.name, exc.code, exc, len(old.get("earlyStoppingRules") or []))
        return None
    return [rule_to_dict(r) for r in rules]


# --- the experiment's end ------------------------------------------------------------

def delete_server(ctx: Context, namespace: str, service: str) -> None:
    """Delete the suggestion server's Deployment and Service (the Suggestion and PVC stay)."""
    ctx.api.delete("apps/v1", "Deployment", namespace, service)
    ctx.api.delete("v1", "Service", namespace, service)


def release_server(ctx: Context, experiment: Mapping[str, Any], policy: str, algorithm: str) -> None:
    """Free the suggestion server as resumePolicy says: Never and FromVolume delete its
    Deployment and Service (FromVolume keeps the PVC: a later restart resumes ENAS from it),
    LongRunning keeps it running. The Suggestion itself stays, as in Katib: its status is the
    record of what was suggested."""
    if policy == "LongRunning":
        return
    ns, name = ns_name(experiment)
    suggestion = ctx.api.get(API, "Suggestion", ns, name)
    if suggestion is not None and not status.is_finished((suggestion.get("status") or {}).get("conditions")):
        kept = ", state volume kept" if policy == "FromVolume" else ""
        _condition(ctx, suggestion, "Succeeded", True, "SuggestionSucceeded",
                   f"experiment finished; deployment removed{kept}")
    delete_server(ctx, ns, render.suggestion_service_name(name, algorithm))


def reopen(ctx: Context, suggestion: Mapping[str, Any]) -> None:
    """A raised budget restarts a finished experiment: the suggestion is deployed and validated again."""
    conditions = (suggestion.get("status") or {}).get("conditions") or []
    now = ctx.now()
    conditions = status.set_condition(conditions, "Succeeded", False, "SuggestionRestarting", "budget raised", now)
    conditions = status.set_condition(conditions, "Running", False, "SuggestionRestarting", "budget raised", now)
    ns, name = ns_name(suggestion)
    ctx.api.patch_status("Suggestion", ns, name, {"conditions": conditions})
