"""The one interface every search algorithm implements.

An algorithm is constructed once per server process with a `StateStore` (stateless ones
ignore it) and then called from any number of threads for any number of experiments:
keep per-experiment state in the store, keyed by `problem.experiment`, never on `self`
unless guarded by a lock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from kubenas.algorithm_settings import AlgorithmSettings, InvalidSettings
from kubenas.space import SearchSpace
from kubenas.trials import Objective, TrialRecord

if TYPE_CHECKING:
    from suggestion.state import StateStore

__all__ = ["Algorithm", "Cancelled", "InvalidSettings", "Problem", "Proposal", "SearchSpaceExhausted", "Suggestion"]


class SearchSpaceExhausted(Exception):
    """Fewer than the requested number of new points remain (grid); becomes OUT_OF_RANGE.

    `remaining` tells the caller how many it may still ask for (0 = the search is over).
    """

    def __init__(self, requested: int, remaining: int) -> None:
        self.requested, self.remaining = requested, remaining
        super().__init__(f"search space exhausted: {requested} assignments requested, {remaining} remain")


class Cancelled(Exception):
    """The caller gave up (its deadline passed or it cancelled); the work was abandoned."""


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Problem:
    """What the experiment asks of an algorithm: its space, objective and raw settings.

    `cancelled` answers True once the caller no longer waits for the answer (the gRPC
    server passes the call's liveness); long loops call `check_cancelled` between steps.
    """

    experiment: str
    space: SearchSpace
    objective: Objective
    settings: Mapping[str, str] = field(default_factory=dict)
    cancelled: Callable[[], bool] = field(default=_never, compare=False, repr=False)
    # spec.parallelTrialCount when known (hyperband checks Katib's rule on it); None: unknown.
    parallel_trial_count: int | None = None

    def check_cancelled(self) -> None:
        """Raise Cancelled if the caller gave up; cheap enough to call every loop step."""
        if self.cancelled():
            raise Cancelled(f"experiment {self.experiment!r}: the caller gave up; work stopped")


@dataclass(frozen=True)
class Suggestion:
    """One new trial: wire-format assignments (name -> text) and optional labels."""

    assignments: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    trial_name: str = ""


@dataclass(frozen=True)
class Proposal:
    """What one GetSuggestions call answers: the suggestions and, when the algorithm keeps
    state in its settings (Katib's hyperband), the settings the controller must send back on
    the next call (GetSuggestionsReply.algorithm); None leaves the request's settings as they are."""

    suggestions: list[Suggestion]
    settings: Mapping[str, str] | None = None


class Algorithm(ABC):
    name: ClassVar[str]
    supports_hpo: ClassVar[bool] = True
    supports_nas: ClassVar[bool] = True
    description: ClassVar[str] = ""
    # True: `propose` may return fewer than `n` (none while it waits for running trials).
    may_return_fewer: ClassVar[bool] = False
    # Its settings (kubenas.algorithm_settings): parsed with `parse_settings`, documented from it.
    settings_model: ClassVar[type[AlgorithmSettings]]

    def __init__(self, state: StateStore | None = None) -> None:
        from suggestion.state import MemoryStateStore

        self.state = state if state is not None else MemoryStateStore()

    @abstractmethod
    def validate(self, problem: Problem) -> None:
        """Raise InvalidSettings if the settings or the space cannot be used.

        Called by ValidateAlgorithmSettings and before every suggest; must not mutate state.
        """

    @abstractmethod
    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        """Return exactly `n` new suggestions given every trial so far (any condition).

        `history` is the full list the controller sent; must work when it is empty or
        when no trial has succeeded. Must not mutate `history`.
        """

    def propose(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> Proposal:
        """What the server answers: `suggest`'s suggestions, settings unchanged. Algorithms whose
        state travels in the settings override this; the same rules as `suggest` apply."""
        return Proposal(self.suggest(problem, history, n))
