"""`kubenas controller`: thin kopf handlers over `controller.kube.reconcile`.

Each handler builds nothing itself: it calls one reconcile step with the resource body and
lets kopf retry (TemporaryError) when the step is waiting for something. Timers make the
controller level-based, so a restart simply picks every running experiment up again.
kopf keeps a finalizer on the three kinds (timers and the Trial delete handler need it); the
Trial's deletion handler removes its observation log from the store before the Trial goes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from controller.kube.adapter import KubeApi
from controller.kube.reconcile import (
    Context,
    finalize_trial,
    reconcile_experiment,
    reconcile_suggestion,
    reconcile_trial,
)
from controller.kube.status import is_finished, latest_condition
from controller.local_suggestion import SuggestionServerError
from kubenas.trials import TrialCondition

__all__ = ["RESOURCES", "OperatorEnvironmentError", "run_operator"]

log = logging.getLogger(__name__)

GROUP, VERSION = "kubeflow.org", "v1beta1"
RESOURCES = ("experiments", "suggestions", "trials")
# Seconds between reconcile steps of one object; smaller reacts faster and costs more API calls.
class OperatorEnvironmentError(ValueError):
    """An environment variable of the controller holds an unusable value."""


def _seconds_from_env(name: str, default: float) -> float:
    text = os.environ.get(name, "")
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.1 <= value <= 3600:  # also false for nan
        raise OperatorEnvironmentError(f"{name}: invalid value {text!r}: must be a number of seconds in [0.1, 3600]")
    return value


INTERVAL_S = _seconds_from_env("KUBENAS_RECONCILE_INTERVAL", 3.0)
# After an unexpected error in a step, retry this much later (kopf's default is 60 s).
BACKOFF_S = max(5.0, INTERVAL_S)
HEALTH_ENDPOINT = os.environ.get("KUBENAS_HEALTH_ENDPOINT", "http://0.0.0.0:8080/healthz")
_FINISHED_TRIAL = {c.value for c in TrialCondition if c.finished}
_context: Context | None = None


def _ctx() -> Context:
    global _context
    if _context is None:
        _context = Context(
            api=KubeApi(),
            config_namespace=os.environ.get("KUBENAS_NAMESPACE", "kubenas-system"),
            db_address=os.environ.get("KUBENAS_DB_MANAGER_ADDRESS") or None,
        )
    return _context


@kopf.on.startup()
def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    # The CRDs are installed before the controller (same kustomization), so no CRD or
    # namespace watching is needed, nor the RBAC for it.
    settings.scanning.disabled = True
    settings.persistence.finalizer = "kubenas.kubeflow.org/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubenas.kubeflow.org")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kubenas.kubeflow.org")
    settings.posting.level = logging.WARNING


def load_cluster_config() -> str:
    """Configure the kubernetes client: the pod's service account in a cluster, else the
    kubeconfig (KUBECONFIG or ~/.kube/config). Returns which; SystemExit with the reason if neither."""
    from kubernetes import config

    try:
        config.load_incluster_config()
        return "in-cluster service account"
    except config.ConfigException:
        pass
    try:
        config.load_kube_config()
    except (config.ConfigException, OSError) as exc:
        where = os.environ.get("KUBECONFIG", "~/.kube/config")
        raise SystemExit(f"error: kubenas controller: no cluster credentials: not in a pod, and the "
                         f"kubeconfig {where} is unusable ({exc})") from None
    return f"kubeconfig {os.environ.get('KUBECONFIG', '~/.kube/config')}"


# Timers only: kopf runs one object's timer ticks one after another, so no two steps of the
# same Suggestion ever call GetSuggestions at once (a change handler would run beside the
# timer). A restart needs nothing special: the timers start again on every object.
@kopf.timer(GROUP, VERSION, "experiments", interval=INTERVAL_S, backoff=BACKOFF_S)
def experiment_handler(body: kopf.Body, **_: Any) -> None:
    reconcile_experiment(_ctx(), dict(body))


def _trial_running(status: Any, **_: Any) -> bool:
    return latest_condition((status or {}).get("conditions")) not in _FINISHED_TRIAL


def _running(status: Any, **_: Any) -> bool:
    """Timers of finished Suggestions and Trials stop (a finished object needs no more steps)."""
    return not is_finished((status or {}).get("conditions"))


@kopf.timer(GROUP, VERSION, "suggestions", interval=INTERVAL_S, backoff=BACKOFF_S, when=_running)
def suggestion_handler(body: kopf.Body, **_: Any) -> None:
    try:
        ready = reconcile_suggestion(_ctx(), dict(body))
    except SuggestionServerError as exc:
        raise kopf.TemporaryError(f"suggestion server: {exc}", delay=5) from None
    if not ready:
        raise kopf.TemporaryError("waiting for the suggestion Deployment to be ready", delay=3)


@kopf.timer(GROUP, VERSION, "trials", interval=INTERVAL_S, backoff=BACKOFF_S, when=_trial_running)
def trial_handler(body: kopf.Body, **_: Any) -> None:
    reconcile_trial(_ctx(), dict(body))


@kopf.on.delete(GROUP, VERSION, "trials")
def trial_deleted(body: kopf.Body, **_: Any) -> None:
    finalize_trial(_ctx(), dict(body))


def run_operator(namespace: str | None = None) -> None:
    """Run the operator until SIGTERM; all namespaces unless `namespace` is given.

    Outside the cluster the kubeconfig is used; set KUBENAS_SUGGESTION_ADDRESS and
    KUBENAS_DB_MANAGER_ADDRESS to reach port-forwarded servers (see README.md).
    """
    log.info("kubenas controller using the %s", load_cluster_config())
    kopf.run(
        standalone=True,
        clusterwide=namespace is None,
        namespaces=[namespace] if namespace else [],
        liveness_endpoint=HEALTH_ENDPOINT,
    )
