"""The reward rule: what a trial's objective value means to every algorithm.

One rule, applied here and nowhere else, so no history can poison any algorithm:

- Only a Succeeded or EarlyStopped trial with a value for the objective metric has a
  reward (an early-stopped trial counts with the value it reached, as Katib does).
- A value that is not a finite number (NaN, +inf, -inf) is no value: the trial counts as
  a failed one (each algorithm then treats it as it treats any failed trial).
- A finite value is clipped to [-REWARD_LIMIT, REWARD_LIMIT] before use, so every sum,
  square and variance an algorithm computes stays finite in float64 (and a reward fits
  float32). Values beyond the limit compare equal to it.
- The reward is the value for maximize and its negation for minimize (larger is better).
"""

from __future__ import annotations

import math

from kubenas.trials import Objective, TrialCondition, TrialRecord

__all__ = ["REWARD_LIMIT", "reward"]

# Far beyond any real metric (an accuracy, a loss, a latency, a FLOP count), far below
# float32's 3.4e38 and float64's 1.8e308 even when squared and summed over many trials.
REWARD_LIMIT = 1e30

_EVALUATED = (TrialCondition.SUCCEEDED, TrialCondition.EARLY_STOPPED)


def reward(trial: TrialRecord, objective: Objective) -> float | None:
    """The trial's reward under the rule above, or None if it has none (failed or pending)."""
    if trial.condition not in _EVALUATED:
        return None
    value = trial.value(objective)
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return objective.reward(min(max(value, -REWARD_LIMIT), REWARD_LIMIT))
