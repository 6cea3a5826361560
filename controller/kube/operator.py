"""`kubenas controller`: thin kopf handlers over `controller.kube.step` and `controller.kube.cleanup`.

One worker per Experiment (a kopf daemon) runs `experiment_step` again and again, in a
worker thread so the event loop (and the liveness probe) never waits on the API server or a
gRPC call. Watch events of Experiments, Trials and Jobs wake the worker of their experiment
at once; without events it looks again every KUBENAS_RECONCILE_INTERVAL seconds (live
observations, early stopping). One worker per experiment means one step at a time: no two
GetSuggestions for one Suggestion overlap. A restart needs nothing special: the workers start
again on every Experiment and resume from what the API server holds.

Only Experiments carry a finalizer (a daemon needs one, and the deletion handler deletes the
trials' observation logs); see `controller.kube.cleanup`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from controller.kube.adapter import KubeApi
from controller.kube.cleanup import (
    DELETE_TRIES,
    FINALIZER,
    delete_experiment_logs,
    release_legacy_finalizers,
)
from controller.kube.context import Context
from controller.kube.render import EXPERIMENT_LABEL
from controller.kube.step import experiment_step

__all__ = ["RESOURCES", "OperatorEnvironmentError", "run_operator"]

log = logging.getLogger(__name__)

GROUP, VERSION = "kubeflow.org", "v1beta1"
RESOURCES = ("experiments", "suggestions", "trials")


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


# Seconds between steps of one experiment when no event comes; smaller reads running trials'
# logs more often (live observations, early stopping) and costs more API calls.
INTERVAL_S = _seconds_from_env("KUBENAS_RECONCILE_INTERVAL", 3.0)
# After an unexpected error in a step, try again this much later.
BACKOFF_S = max(5.0, INTERVAL_S)
HEALTH_ENDPOINT = os.environ.get("KUBENAS_HEALTH_ENDPOINT", "http://0.0.0.0:8080/healthz")
# Trials of one experiment reconciled side by side (API reads, log reads, DBManager calls).
TRIAL_WORKERS = 8
_context: Context | None = None
_pool: ThreadPoolExecutor | None = None
_namespace: str | None = None
_wakers: dict[tuple[str, str], asyncio.Event] = {}


def _ctx() -> Context:
    global _context
    if _context is None:
        _context = Context(
            api=KubeApi(),
            config_namespace=os.environ.get("KUBENAS_NAMESPACE", "kubenas-system"),
            db_address=os.environ.get("KUBENAS_DB_MANAGER_ADDRESS") or None,
            config_ttl_s=5.0,
        )
    return _context


def _trial_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(TRIAL_WORKERS, thread_name_prefix="trial")
    return _pool


@kopf.on.startup()
async def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    # The CRDs are installed before the controller (same kustomization), so no CRD or
    # namespace watching is needed, nor the RBAC for it.
    settings.scanning.disabled = True
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubenas.kubeflow.org")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kubenas.kubeflow.org")
    settings.posting.level = logging.WARNING
    # kopf says "Handler ... succeeded" for every watch event (hundreds a second in a burst);
    # the worker logs what matters, and warnings and errors still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    await asyncio.to_thread(release_legacy_finalizers, _ctx().api, _namespace)


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


def _wake(namespace: str | None, experiment: str | None) -> None:
    waker = _wakers.get((namespace or "", experiment or ""))
    if waker is not None:
        waker.set()


@kopf.daemon(GROUP, VERSION, "experiments", cancellation_timeout=10.0)
async def experiment_worker(meta: kopf.Meta, stopped: kopf.DaemonStopped, **_: Any) -> None:
    key = (str(meta["namespace"]), str(meta["name"]))
    waker = _wakers.setdefault(key, asyncio.Event())
    waiting_for: str | None = None
    stopping = asyncio.ensure_future(_until_stopped(stopped))  # ends a wait at once on deletion or shutdown
    try:
        while not stopped:
            waker.clear()  # an event during the step wakes the next one at once
            try:
                began = time.monotonic()
                step = await asyncio.to_thread(experiment_step, _ctx(), *key, INTERVAL_S, _trial_pool())
                delay = step.delay
                log.debug("step of %s/%s: %.0f ms, %d API calls, %d writes, next in %.1f s",
                          *key, 1000 * (time.monotonic() - began), step.calls, step.writes, delay)
                if step.waiting != waiting_for and step.waiting is not None:
                    log.info("experiment %s/%s is waiting for %s", *key, step.waiting)
                waiting_for = step.waiting
            except Exception:
                log.exception("step of experiment %s/%s failed; trying again in %.0f s", *key, BACKOFF_S)
                delay = BACKOFF_S
            if delay > 0:
                woken = asyncio.ensure_future(waker.wait())
                await asyncio.wait({woken, stopping}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
            else:
                await asyncio.sleep(0)  # let the loop breathe between back-to-back steps
    finally:
        stopping.cancel()
        if _wakers.get(key) is waker:
            del _wakers[key]


async def _until_stopped(stopped: kopf.DaemonStopped) -> None:
    await stopped.wait()


@kopf.on.event(GROUP, VERSION, "experiments")
async def experiment_changed(meta: kopf.Meta, **_: Any) -> None:
    _wake(meta.get("namespace"), meta.get("name"))


@kopf.on.event(GROUP, VERSION, "trials")
async def trial_changed(meta: kopf.Meta, **_: Any) -> None:
    _wake(meta.get("namespace"), (meta.get("labels") or {}).get(EXPERIMENT_LABEL))


@kopf.on.event("batch", "v1", "jobs", labels={EXPERIMENT_LABEL: kopf.PRESENT})
async def job_changed(meta: kopf.Meta, **_: Any) -> None:
    _wake(meta.get("namespace"), (meta.get("labels") or {}).get(EXPERIMENT_LABEL))


@kopf.on.delete(GROUP, VERSION, "experiments")
async def experiment_deleted(body: kopf.Body, retry: int, **_: Any) -> None:
    """Delete the trials' observation logs; after DELETE_TRIES failures let the Experiment go anyway."""
    meta = body["metadata"]
    try:
        count = await asyncio.to_thread(delete_experiment_logs, _ctx(), dict(body))
    except Exception as exc:
        if retry + 1 < DELETE_TRIES:
            raise kopf.TemporaryError(f"deleting the observation logs failed ({exc}); trying again", delay=5) from None
        log.warning("experiment %s/%s deleted, but its observation logs could not be deleted after %d tries "
                    "(%s); they stay in the store", meta["namespace"], meta["name"], DELETE_TRIES, exc)
        return
    log.info("experiment %s/%s deleted with the observation logs of its %d trials", meta["namespace"], meta["name"],
             count)


def run_operator(namespace: str | None = None) -> None:
    """Run the operator until SIGTERM; all namespaces unless `namespace` is given.

    Outside the cluster the kubeconfig is used; set KUBENAS_SUGGESTION_ADDRESS and
    KUBENAS_DB_MANAGER_ADDRESS to reach port-forwarded servers (see README.md).
    """
    global _namespace
    _namespace = namespace
    log.info("kubenas controller using the %s", load_cluster_config())
    kopf.run(
        standalone=True,
        clusterwide=namespace is None,
        namespaces=[namespace] if namespace else [],
        liveness_endpoint=HEALTH_ENDPOINT,
    )
