"""The experiment state machine as pure functions, shared by the local and Kubernetes runtimes.

Semantics follow Katib v1beta1's experiment and trial controllers:
- request arithmetic: keep `min(parallel, max - completed)` trials active; the Suggestion's
  total request count is every trial so far plus the new ones;
- a trial is *completed* once Succeeded, Failed, Killed, EarlyStopped or MetricsUnavailable;
- the experiment ends, checked in this order, when the best objective reaches the goal
  (Succeeded, GoalReached), when Failed + MetricsUnavailable trials reach a non-zero count
  >= maxFailedTrialCount (Failed), when completed trials reach maxTrialCount (Succeeded,
  MaxTrialsReached), or when the algorithm has no more suggestions and nothing is active
  (Succeeded, SuggestionEndReached);
- a new trial takes the name its algorithm proposed unless that is taken, else
  `<experiment>-<8 letters>`, drawn from the `random_state` setting when there is one; a
  proposed name that is not a Kubernetes object name (DNS-1123 subdomain) is refused
  (`InvalidTrialName`): it names a Trial object and a directory, so `../x` or `a/b` must
  never reach either.

Nothing here does I/O; inputs are not mutated.
"""

from __future__ import annotations

import random
import re
import secrets
import string
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kubenas.errors import InvalidValue
from kubenas.trials import OPTIMAL_CONDITIONS, Objective, TrialCondition, TrialRecord, best_of

__all__ = [
    "OPTIMAL_CONDITIONS",
    "InvalidTrialName",
    "Outcome",
    "OutcomeReason",
    "TrialCounts",
    "active_limit",
    "count_trials",
    "experiment_outcome",
    "experiment_seed",
    "may_ask",
    "new_trial_name",
    "optimal_trial",
    "overlay_settings",
    "returned_changes",
    "suggestions_ended",
    "suggested_trial_name",
    "trial_condition",
    "trial_names",
    "trials_to_request",
    "wait_past",
]




class OutcomeReason(str, Enum):
    """Katib's experiment completion reasons (status.conditions[].reason)."""

    GOAL_REACHED = "ExperimentGoalReached"
    MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
    SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
    FAILED = "ExperimentFailed"


@dataclass(frozen=True)
class Outcome:
    """How an experiment ended."""

    reason: OutcomeReason
    succeeded: bool
    message: str


@dataclass(frozen=True)
class TrialCounts:
    """Experiment status counters (Katib's trialsSucceeded, trialsFailed, ...)."""

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    early_stopped: int = 0
    metrics_unavailable: int = 0

    @property
    def total(self) -> int:
        return self.active + self.completed

    @property
    def active(self) -> int:
        return self.pending + self.running

    @property
    def completed(self) -> int:
        return self.succeeded + self.failed + self.killed + self.early_stopped + self.metrics_unavailable

    @property
    def failed_for_limit(self) -> int:
        """What maxFailedTrialCount is compared with: Failed plus MetricsUnavailable (Katib)."""
        return self.failed + self.metrics_unavailable


_COUNTER = {
    TrialCondition.CREATED: "pending",
    TrialCondition.UNKNOWN: "pending",
    TrialCondition.RUNNING: "running",
    TrialCondition.SUCCEEDED: "succeeded",
    TrialCondition.FAILED: "failed",
    TrialCondition.KILLED: "killed",
    TrialCondition.EARLY_STOPPED: "early_stopped",
    TrialCondition.METRICS_UNAVAILABLE: "metrics_unavailable",
}


def count_trials(trials: Sequence[TrialRecord]) -> TrialCounts:
    """Count trials per condition."""
    counts = dict.fromkeys(_COUNTER.values(), 0)
    for trial in trials:
        counts[_COUNTER[trial.condition]] += 1
    return TrialCounts(**counts)


def active_limit(parallel: int, max_trials: int | None, completed: int) -> int:
    """How many trials may be active now: `parallel`, and no more than the budget has left
    (`max_trials - completed`), never negative. `max_trials=None` means no limit. An edit that
    lowers either leaves the trials active beyond this to be stopped (the cluster does)."""
    wanted = parallel if max_trials is None else min(parallel, max_trials - completed)
    return max(0, wanted)


def trials_to_request(parallel: int, max_trials: int | None, completed: int, active: int) -> tuple[int, int]:
    """(current_request_number, total_request_number) for the next GetSuggestions call.

    current = min(parallel, max_trials - completed) - active, never negative (a shrunken
    limit never asks for a negative number); total = trials so far (completed + active) +
    current, which is what Katib's Suggestion `spec.requests` holds. `max_trials=None`
    means no limit.
    """
    if parallel < 1:
        raise ValueError(f"parallel: invalid value {parallel!r}: must be >= 1")
    if min(completed, active) < 0:
        raise ValueError(f"completed/active: invalid values {completed!r}/{active!r}: must be >= 0")
    current = max(0, active_limit(parallel, max_trials, completed) - active)
    return current, completed + active + current


def overlay_settings(base: Mapping[str, str], updates: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, str]:
    """Katib's merge of algorithm settings, both ways round: before GetSuggestions the
    Suggestion's stored settings over the Experiment's (appendAlgorithmSettingsFromSuggestion),
    after it the reply's `algorithm` settings over the stored ones (updateAlgorithmSettings).
    A name already present takes the new value in its place; a new name is appended."""
    out = dict(base)
    out.update(updates)
    return out


def returned_changes(sent: Mapping[str, str], returned: Sequence[tuple[str, str]]) -> dict[str, str]:
    """What a reply's `algorithm` settings change or add to those its request carried: what the
    controller keeps (and `overlay_settings` merges). A server that echoes the request (kubenas's
    does, for every algorithm) adds nothing, so an echo never pins a setting the Experiment may
    change later (a resumed local run); Katib's hyperband state always differs, so it is kept."""
    return {name: value for name, value in returned if sent.get(name) != value}


def suggestions_ended(exhausted: bool, received: int, active_when_asked: int) -> bool:
    """Whether a GetSuggestions answer ends the search: the algorithm said so (OUT_OF_RANGE,
    nothing remains), or it answered nothing while no trial was active (asking again would get
    the same answer; Katib's hyperband ends so). Nothing while trials run means: wait for them."""
    return exhausted or (received == 0 and active_when_asked == 0)


def wait_past(requested: int, received: int, completed_when_asked: int) -> int | None:
    """After an answer with fewer assignments than asked for (hyperband waits for a rung), the
    completed-trial count to wait past before asking again: the answer cannot change before a
    trial completes. None: ask whenever a slot is free."""
    return completed_when_asked if received < requested else None


def may_ask(waiting_past: int | None, completed: int) -> bool:
    """Whether to call GetSuggestions now, given `wait_past`'s answer to the last call."""
    return waiting_past is None or completed > waiting_past


def optimal_trial(objective: Objective, trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The best trial by the objective metric (`kubenas.trials.best_of`, the one rule)."""
    return best_of(objective, trials, condition=lambda t: t.condition,
                   value=lambda t: _objective_value(objective, t), completion_time=lambda t: t.completion_time)


def _objective_value(objective: Objective, trial: TrialRecord) -> float | str | None:
    value = trial.value(objective)
    return value if value is not None else trial.texts.get(objective.metric_name)


def experiment_outcome(
    objective: Objective,
    max_trials: int | None,
    max_failed: int | None,
    trials: Sequence[TrialRecord],
    suggestions_exhausted: bool = False,
) -> Outcome | None:
    """How the experiment ended, or None while it should go on (see the module docstring)."""
    best = optimal_trial(objective, trials)
    if best is not None:
        value = best.value(objective)
        if value is not None and objective.reached(value):
            return Outcome(OutcomeReason.GOAL_REACHED, True,
                           f"objective {objective.metric_name}={value!r} of trial {best.name} "
                           f"reached the goal {objective.goal!r}")
    counts = count_trials(trials)
    failed = counts.failed_for_limit
    if max_failed is not None and failed != 0 and failed >= max_failed:
        return Outcome(OutcomeReason.FAILED, False,
                       f"{failed} trials failed or had no metrics; maxFailedTrialCount is {max_failed}")
    if max_trials is not None and counts.completed >= max_trials:
        return Outcome(OutcomeReason.MAX_TRIALS_REACHED, True,
                       f"{counts.completed} trials completed; maxTrialCount is {max_trials}")
    if suggestions_exhausted and counts.active == 0:
        return Outcome(OutcomeReason.SUGGESTION_END_REACHED, True,
                       f"the algorithm has no more suggestions after {counts.completed} trials")
    return None


def trial_condition(
    exit_code: int | None,
    observation: Mapping[str, float | str],
    objective: Objective,
    killed: bool = False,
    *,
    collector: str = "StdOut",
    early_stopped: bool = False,
    collection_failed: bool = False,
) -> TrialCondition:
    """The final condition of a trial whose workload has ended; both runtimes decide with it.

    `exit_code` is the process's status locally and 0/1 for a Job that met its success/failure
    condition in the cluster. Metrics that could not be collected (a metrics file that is a
    FIFO or a link, a filter that timed out) fail the trial; an early-stopping verdict
    stands however the workload ended;
    killed (stopped by us) wins over the exit status; a non-zero exit is Failed even when
    metrics were printed; with metrics collector `None` nothing is collected, so a clean exit
    is Succeeded; otherwise a clean exit without the objective metric (as a number or, with a
    metricsFormat filter, as text) is MetricsUnavailable.
    """
    if collection_failed:
        return TrialCondition.FAILED
    if early_stopped:
        return TrialCondition.EARLY_STOPPED
    if killed:
        return TrialCondition.KILLED
    if exit_code != 0:
        return TrialCondition.FAILED
    if collector != "None" and objective.metric_name not in observation:
        return TrialCondition.METRICS_UNAVAILABLE
    return TrialCondition.SUCCEEDED


#: Trial names are the experiment's name, a dash and this many lowercase letters (as Katib's).
TRIAL_SUFFIX_LENGTH = 8


def experiment_seed(settings: Mapping[str, str]) -> int | None:
    """The `random_state` algorithm setting as a number, or None (absent or malformed: the
    suggestion server's validation reports a malformed value)."""
    raw = settings.get("random_state")
    try:
        return None if raw in (None, "") else int(raw)
    except (TypeError, ValueError):
        return None


def new_trial_name(experiment: str, taken: Collection[str], seed: int | None = None) -> str:
    """A trial name not in `taken`: random, or with a seed the same on every rerun.

    A seeded experiment's algorithms draw from the history's trial names, so reproducible
    names make reproducible suggestions; the draw depends on (experiment, seed, len(taken)).
    """
    pick: Any = secrets.SystemRandom() if seed is None else random.Random(f"{experiment}:{seed}:{len(taken)}")
    while True:
        name = f"{experiment}-{''.join(pick.choice(string.ascii_lowercase) for _ in range(TRIAL_SUFFIX_LENGTH))}"
        if name not in taken:
            return name


# Kubernetes' DNS-1123 subdomain: what a Trial (and its Job) may be called.
_TRIAL_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_TRIAL_NAME_MAX = 253
TRIAL_NAME_ALLOWED = ("a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and "
                      f"ending with a letter or digit, at most {_TRIAL_NAME_MAX} characters")


class InvalidTrialName(InvalidValue):
    """A suggestion server proposed a trial name no Trial can have; the suggestion fails."""


def suggested_trial_name(experiment: str, suggested: str, taken: Collection[str], seed: int | None = None) -> str:
    """The name of a trial made from a suggestion: the algorithm's own name for it when it
    gave one that is free, else `new_trial_name` (both runtimes name trials with it).
    Raises InvalidTrialName for a proposed name that is not a Kubernetes object name."""
    if suggested and (len(suggested) > _TRIAL_NAME_MAX or not _TRIAL_NAME.fullmatch(suggested)):
        raise InvalidTrialName("GetSuggestionsReply.parameter_assignments.trial_name", suggested,
                               TRIAL_NAME_ALLOWED)
    return suggested if suggested and suggested not in taken else new_trial_name(experiment, taken, seed)


def trial_names(experiment: str, proposed: Iterable[str], taken: Collection[str], seed: int | None = None) -> list[str]:
    """Names for the assignments of one GetSuggestions reply, in order: the name the algorithm
    proposed when it gave one not taken yet (by an earlier trial or an earlier assignment of
    this reply), else `new_trial_name`. Raises InvalidTrialName (see `suggested_trial_name`)."""
    used = set(taken)
    names = []
    for wish in proposed:
        name = suggested_trial_name(experiment, wish, used, seed)
        used.add(name)
        names.append(name)
    return names
