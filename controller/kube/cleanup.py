"""Deletion that always finishes: owner references and garbage collection, one finalizer.

Trials, their Jobs, the Suggestion and its Deployment, Service and PVC are all owned
(ownerReferences) by the Experiment, and carry no finalizer: the cluster's garbage collector
deletes them whether or not a controller runs. Only the Experiment carries
`kubenas.kubeflow.org/finalizer`, so that its trials' observation logs leave the store with
it: the deletion handler deletes them all in one pass, and gives up (with a warning, logs
left in the store) after a bounded number of failed tries, so a lost DBManager never keeps
an Experiment from going. Controllers before this one kept the finalizer on every Trial and
Suggestion; `release_legacy_finalizers` removes those at start, so old objects do not block.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.kube.context import API, Context, experiment_selector

__all__ = ["DELETE_TRIES", "FINALIZER", "delete_experiment_logs", "release_legacy_finalizers"]

log = logging.getLogger(__name__)

FINALIZER = "kubenas.kubeflow.org/finalizer"
#: Tries of the Experiment's deletion handler before it lets the Experiment go regardless.
DELETE_TRIES = 5
_DELETE_WORKERS = 16


def delete_experiment_logs(ctx: Context, body: Mapping[str, Any]) -> int:
    """Delete the observation log of every Trial of the experiment from the store; return how
    many. Called while the Experiment is being deleted: its finalizer keeps the Trials (and so
    their names) until this returns. The deletes go side by side over one channel."""
    meta = body["metadata"]
    trials = ctx.api.list_objects(API, "Trial", meta["namespace"], experiment_selector(meta["name"]))
    names = [t["metadata"]["name"] for t in trials]
    with ctx.db() as db, ThreadPoolExecutor(_DELETE_WORKERS) as pool:
        list(pool.map(db.delete, names))
    return len(names)


def release_legacy_finalizers(api: Any, namespace: str | None) -> int:
    """Remove FINALIZER from every Trial and Suggestion (in `namespace`, or all); return how many.
    A Trial already being deleted then goes at once."""
    released = 0
    for kind in ("Trial", "Suggestion"):
        for obj in api.list_all(API, kind, namespace):
            meta = obj["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            if FINALIZER not in finalizers:
                continue
            api.set_finalizers(kind, meta["namespace"], meta["name"], [f for f in finalizers if f != FINALIZER])
            released += 1
    if released:
        log.info("removed the finalizer %s of an older controller from %d Trials and Suggestions",
                 FINALIZER, released)
    return released
