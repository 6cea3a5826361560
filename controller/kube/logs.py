"""StdOut metrics collection in the cluster: the primary container's log, read through the API.

Katib's StdOut collector runs as a sidecar; kubenas reads the same log from the API server
instead, so trial pods need no extra container and no shared process namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from kubenas.metrics import MetricPoint, compile_filters, parse_lines
from kubenas.trials import Objective

__all__ = ["LogReader", "collect_stdout", "metrics_from_log", "primary_pod"]

log = logging.getLogger(__name__)


class LogReader(Protocol):
    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...
    def pod_log(self, namespace: str, pod: str, container: str | None) -> str: ...


def metrics_from_log(text: str, objective: Objective, metrics_format: Sequence[str] = ()) -> list[MetricPoint]:
    """Every objective metric printed in `text`, in order (Katib's regex or the experiment's filters).
    With filters, a captured value that is not a number (a genotype) is kept as text, as Katib does."""
    return parse_lines(text.splitlines(), objective.metric_names, compile_filters(list(metrics_format)),
                       keep_text=bool(metrics_format))


def primary_pod(pods: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The pod whose log counts: the newest one that has started (a Job may have retried)."""
    started = [p for p in pods if (p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")]
    if not started:
        return None
    return max(started, key=lambda p: p["metadata"].get("creationTimestamp") or "")


def collect_stdout(
    api: LogReader, namespace: str, label_selector: str, container: str | None,
    objective: Objective, metrics_format: Sequence[str] = (),
) -> list[MetricPoint]:
    """Read the primary container's log of the trial's pod and parse its metrics."""
    pod = primary_pod(api.list_pods(namespace, label_selector))
    if pod is None:
        log.info("no started pod matches %s in %s; no metrics", label_selector, namespace)
        return []
    return metrics_from_log(api.pod_log(namespace, pod["metadata"]["name"], container), objective, metrics_format)
