"""Early stopping in the cluster: the rules a Trial carries, and marking a Trial EarlyStopped.

The Suggestion's status holds the rules of Katib's EarlyStopping service (refreshed with
every GetSuggestions); each Trial gets the rules current when it is made, in
`spec.earlyStoppingRules` (Katib's shape). While the trial runs, the reconcile step reads
its metrics so far and, once `kubenas.early_stopping.rules_met`, deletes its workload and
marks it EarlyStopped with the observation so far.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from controller.kube import status
from kubenas import rfc3339
from kubenas.early_stopping import RuleError, StopRule, rule_from_dict
from kubenas.trials import TrialCondition

__all__ = ["describe", "early_stopped_status", "trial_rules", "trial_status_sink"]

log = logging.getLogger(__name__)

_OPS = {"less": "<", "greater": ">", "equal": "=="}


def trial_rules(spec: Mapping[str, Any]) -> tuple[StopRule, ...]:
    """The Trial's `spec.earlyStoppingRules` as rules; a malformed one is logged and skipped
    (it cannot be applied, and failing the trial for it would lose its training)."""
    out = []
    for i, item in enumerate(spec.get("earlyStoppingRules") or ()):
        try:
            out.append(rule_from_dict(item))
        except (RuleError, AttributeError) as exc:
            log.warning("spec.earlyStoppingRules[%d] ignored: %s", i, exc)
    return tuple(out)


def describe(rules: Sequence[StopRule]) -> str:
    """`accuracy < 0.6 from report 4` for each rule (for the objective its best value is compared)."""
    return ", ".join(f"{r.metric} {_OPS[r.comparison.value]} {r.value:.6g} from report {max(r.start_step, 1)}"
                     for r in rules)


def early_stopped_status(old: Mapping[str, Any] | None, message: str, now: str,
                         observation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Trial status once stopped early (Katib's condition type EarlyStopped, reason TrialEarlyStopped)."""
    return status.trial_status(old, TrialCondition.EARLY_STOPPED, message, now, observation)


class _StatusApi(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None: ...


def trial_status_sink(api: _StatusApi, namespace: str) -> Callable[[str], None]:
    """What EarlyStopping.SetTrialStatus does in the cluster (Katib's behaviour): the Trial in
    `namespace` gets the EarlyStopped condition. Raises LookupError for an unknown trial."""

    def mark(trial_name: str) -> None:
        trial = api.get("kubeflow.org/v1beta1", "Trial", namespace, trial_name)
        if trial is None:
            raise LookupError(f"trial {namespace}/{trial_name} not found")
        now = rfc3339.now()
        api.patch_status("Trial", namespace, trial_name,
                         early_stopped_status(trial.get("status"), "Trial is early stopped", now))

    return mark
