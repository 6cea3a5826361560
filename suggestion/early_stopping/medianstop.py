"""Katib's median stopping rule, with a true median.

Once `min_trials_required` trials have Succeeded, every succeeded trial's objective metric
is averaged over its first `start_step` reported values, and the rule is "objective worse
than the median of those averages, checked from step `start_step` on": LESS than it for a
maximised objective, GREATER for a minimised one. Katib takes the *mean* of the averages
under the name median; this one takes the median (`statistics.median`: the middle value,
or the mean of the two middle values). Only Succeeded trials count, as in Katib: an
early-stopped trial never lowers the bar for the next ones. A succeeded trial whose log
holds no numeric value of the objective (it cannot happen with our collectors) is skipped.
"""

from __future__ import annotations

import statistics
from typing import ClassVar

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.early_stopping import MedianStopSettings
from kubenas.early_stopping import Comparison, StopRule
from kubenas.trials import ObjectiveType, TrialCondition
from suggestion.early_stopping.base import EarlyStoppingAlgorithm, LogFetcher, RulesProblem

__all__ = ["MedianStop", "median_rule"]

def median_rule(objective_type: ObjectiveType, metric: str, averages: list[float], start_step: int) -> StopRule:
    """The rule for a trial: worse than the median of `averages` (must be non-empty)."""
    comparison = Comparison.LESS if objective_type is ObjectiveType.MAXIMIZE else Comparison.GREATER
    return StopRule(metric, float(statistics.median(averages)), comparison, start_step)


class MedianStop(EarlyStoppingAlgorithm):
    name = "medianstop"
    description = "stop a trial whose best objective after start_step reports is worse than the median"
    settings_model: ClassVar[type[MedianStopSettings]] = MedianStopSettings

    def rules(self, problem: RulesProblem, fetch_log: LogFetcher) -> list[StopRule]:
        settings = parse_settings(problem.settings, self.settings_model)
        start_step, required = settings.start_step, settings.min_trials_required
        metric = problem.objective.metric_name
        succeeded = [t for t in problem.trials if t.condition is TrialCondition.SUCCEEDED]
        if len(succeeded) < required:
            return []
        averages = []
        for trial in succeeded:
            first = list(fetch_log(trial.name, metric))[:start_step]
            if first:
                averages.append(sum(first) / len(first))
        if len(averages) < required:
            return []
        return [median_rule(problem.objective.type, metric, averages, start_step)]
