"""The one interface every early-stopping algorithm implements.

An algorithm turns the experiment's finished trials (and, through `fetch_log`, their
metric logs) into `StopRule`s; it never stops anything itself. Instances are shared by
every experiment a server serves and called from several threads: keep no per-experiment
state on `self`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from kubenas.algorithm_settings import AlgorithmSettings, parse_settings
from kubenas.early_stopping import StopRule
from kubenas.trials import Objective, TrialRecord

__all__ = ["EarlyStoppingAlgorithm", "LogFetcher", "RulesProblem"]

#: (trial name, metric name) -> that metric's numeric values in report order.
LogFetcher = Callable[[str, str], Sequence[float]]


@dataclass(frozen=True)
class RulesProblem:
    """What GetEarlyStoppingRules asks: the experiment's objective, raw settings and trials."""

    experiment: str
    objective: Objective
    settings: Mapping[str, str] = field(default_factory=dict)
    trials: Sequence[TrialRecord] = ()


class EarlyStoppingAlgorithm(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    settings_model: ClassVar[type[AlgorithmSettings]] = AlgorithmSettings

    def parse(self, settings: Mapping[str, str]) -> AlgorithmSettings:
        """Typed settings with defaults; raises InvalidSettings naming the setting, value and range."""
        return parse_settings(settings, self.settings_model)

    @abstractmethod
    def rules(self, problem: RulesProblem, fetch_log: LogFetcher) -> list[StopRule]:
        """The rules running trials must obey now (empty: none yet). Must not mutate `problem`."""
