"""Hyperband (Li et al. 2018) as Katib's `hyperband` runs it: successive halving in brackets,
with the bracket state carried in the algorithm settings.

Settings (Katib's): `resource_name` names the parameter that is the budget (epochs, ...);
`r_l` is the largest budget R; `eta` the halving rate (default 3). With
s_max = floor(log(r_l) / log(eta)), bracket s = s_max .. 0 starts n = ceil((s_max + 1) *
eta^s / (s + 1)) random configurations at budget int(r) with r = r_l / eta^s (rung 0);
rung i + 1 gets the best ceil(ceil(n * eta^-i) / eta) trials of rung i, again, at budget
int(r * eta^(i + 1)) (a float rounding error never drops a budget below the integer it
equals, as it does in Katib's service). A bracket's last rung is not waited for: the next
bracket starts at once.

State (Katib's setting names `s_max`, `b_l`, `r`, `n`, `current_s`, `current_i`,
`evaluating_trials`) is returned in every reply's algorithm settings; the controller stores it
(Katib: Suggestion status.algorithmSettings) and sends it back on the next request, so the
algorithm itself keeps nothing. `evaluating_trials` counts the trials of rung `current_i`
issued so far: unlike Katib's service, which makes a whole rung per call and uses the
request's size as the bracket's n, a rung larger than the request is issued over several
calls and n is the bracket's own size. Each trial is labelled with its bracket and rung, so
a rung's results are found by label (not by start time); a rung is judged once every trial
of it has finished, ranking its Succeeded trials (failed ones are not promoted; a rung
without any ends its bracket). When every bracket is issued the search raises
SearchSpaceExhausted; while a rung runs, a call returns no suggestions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.schedules import DEFAULT_ETA, HyperbandSettings
from kubenas.space import SearchSpace, SpaceError
from kubenas.trials import ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import (
    Algorithm,
    InvalidSettings,
    Problem,
    Proposal,
    SearchSpaceExhausted,
    Suggestion,
)
from suggestion.algorithms.sampling import history_rng, sample_value

__all__ = ["BRACKET_LABEL", "RUNG_LABEL", "Hyperband", "HyperbandState", "max_parallel"]

BRACKET_LABEL = "hyperband.kubenas.io/bracket"
RUNG_LABEL = "hyperband.kubenas.io/rung"
# The largest bracket must fit parallelTrialCount, an int32.
MAX_BRACKET = 2**31 - 1



def _check_state(settings: Mapping[str, Any], s_max: int) -> None:
    """The state settings within what the brackets of these r_l and eta can reach (a changed
    r_l or eta on a resumed run can leave them outside)."""
    restart = "the bracket state; remove the state settings to start the brackets again"
    if settings["s_max"] >= 0 and settings["s_max"] != s_max:
        raise InvalidSettings("s_max", settings["s_max"], f"must be {s_max} for these r_l and eta ({restart})")
    if settings["current_s"] > s_max:
        raise InvalidSettings("current_s", settings["current_s"], f"must be at most s_max={s_max} ({restart})")
    if settings["current_s"] >= 0 and settings["current_i"] > settings["current_s"]:
        raise InvalidSettings("current_i", settings["current_i"],
                              f"must be at most current_s={settings['current_s']} ({restart})")
    for name in ("n", "evaluating_trials"):
        if settings[name] > MAX_BRACKET:
            raise InvalidSettings(name, settings[name], f"must be at most {MAX_BRACKET} ({restart})")


def _s_max(r_l: float, eta: float) -> int:
    # Katib truncates log(r_l)/log(eta); the epsilon keeps exact powers (1000 = 10^3) exact.
    return max(0, int(math.log(r_l) / math.log(eta) + 1e-9))


def max_parallel(r_l: float, eta: float) -> int:
    """Katib's lower bound on parallelTrialCount: the size of the largest bracket, eta^s_max."""
    return math.ceil(eta ** _s_max(r_l, eta))


def _bracket_size(s_max: int, s: int, eta: float) -> int:
    return int(math.ceil(float(s_max + 1) * (float(eta**s) / float(s + 1))))


@dataclass(frozen=True)
class HyperbandState:
    """The settings Katib's service round-trips, resolved (Katib's HyperBandParam.convert)."""

    resource_name: str
    eta: float
    r_l: float
    s_max: int
    b_l: float
    r: float
    n: int
    current_s: int
    current_i: int
    evaluating_trials: int

    @classmethod
    def resolve(cls, settings: Mapping[str, Any]) -> HyperbandState:
        eta = settings["eta"] if settings["eta"] > 0 else DEFAULT_ETA
        r_l = settings["r_l"]
        s_max = settings["s_max"] if settings["s_max"] >= 0 else _s_max(r_l, eta)
        current_s = settings["current_s"]
        if current_s == -1:  # every bracket issued
            return cls(settings["resource_name"], eta, r_l, s_max, settings["b_l"], settings["r"], settings["n"],
                       -1, 0, 0)
        current_s = current_s if current_s >= 0 else s_max
        return cls(
            resource_name=settings["resource_name"], eta=eta, r_l=r_l, s_max=s_max,
            b_l=settings["b_l"] if settings["b_l"] >= 0 else (s_max + 1) * r_l,
            r=settings["r"] if settings["r"] >= 0 else r_l / eta**current_s,
            n=settings["n"] if settings["n"] >= 0 else _bracket_size(s_max, current_s, eta),
            current_s=current_s, current_i=max(settings["current_i"], 0),
            evaluating_trials=settings["evaluating_trials"],
        )

    def next_bracket(self) -> HyperbandState:
        s = self.current_s - 1
        if s < 0:
            return replace(self, current_s=-1, current_i=0, evaluating_trials=0)
        return replace(self, current_s=s, current_i=0, evaluating_trials=0,
                       n=_bracket_size(self.s_max, s, self.eta), r=self.r_l / self.eta**s)

    def budget(self) -> str:
        """The resource value of rung `current_i`: int(r * eta^i) as Katib's, except that a product
        a rounding error puts just below an integer counts as that integer (Katib's float
        r_l * eta^-s gives 729 * 3^-6 = 0.999..., so its r_l=729, eta=3 starts at 0 epochs, and
        r_l=100 ends at 99)."""
        return str(int(self.r * self.eta**self.current_i + 1e-9))

    def settings(self) -> dict[str, str]:
        """As Katib's service writes them (its order; numbers as Python prints them)."""
        return {"eta": repr(self.eta), "s_max": str(self.s_max), "r_l": repr(self.r_l), "b_l": repr(self.b_l),
                "r": repr(self.r), "n": str(self.n), "current_s": str(self.current_s),
                "current_i": str(self.current_i), "resource_name": self.resource_name,
                "evaluating_trials": str(self.evaluating_trials)}


class Hyperband(Algorithm):
    """Katib's hyperband: random configurations, successive halving over `resource_name`."""

    name = "hyperband"
    settings_model = HyperbandSettings
    supports_nas = False
    may_return_fewer = True
    description = ("Hyperband (successive halving in brackets) over the budget parameter resource_name; "
                   "eta, r_l, random_state; bracket state round-tripped in the settings as Katib's")

    def validate(self, problem: Problem) -> None:
        self._parse(problem)

    def _parse(self, problem: Problem) -> dict[str, Any]:
        if problem.space.nas_config is not None:
            raise SpaceError("nasConfig", "a NAS search space",
                             "hyperband varies the parameter named by resource_name (the budget) of "
                             "spec.parameters; for NAS use random, grid, evolution, tpe, enas or darts")
        settings = parse_settings(problem.settings, HyperbandSettings).model_dump()
        problem.space.check()
        for required, what in (("resource_name", "the name of the parameter that is the budget, e.g. num-epochs"),
                               ("r_l", "the largest budget, a positive number")):
            if settings[required] is None:
                raise InvalidSettings(required, None, f"required (as in Katib): {what}")
        names = [p.name for p in problem.space.parameters]
        if settings["resource_name"] not in names:
            shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
            raise InvalidSettings("resource_name", settings["resource_name"],
                                  f"must name one of spec.parameters: {shown}")
        eta = settings["eta"] if settings["eta"] > 0 else DEFAULT_ETA
        s_max = _s_max(settings["r_l"], eta)
        if s_max * math.log(eta) > math.log(MAX_BRACKET):
            raise InvalidSettings("r_l", settings["r_l"],
                                  f"with eta={eta:g} the largest bracket (eta^s_max) would hold more than "
                                  f"{MAX_BRACKET} trials (parallelTrialCount is an int32): a smaller r_l or a larger eta")
        _check_state(settings, s_max)
        least = max_parallel(settings["r_l"], eta)
        parallel = problem.parallel_trial_count
        if parallel is not None and parallel < least:
            raise InvalidSettings("parallelTrialCount", parallel,
                                  f"must be at least {least} (eta^s_max with eta={eta:g}, r_l={settings['r_l']:g}: "
                                  f"the largest bracket runs at once, as Katib requires)")
        return settings

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        return self.propose(problem, history, n).suggestions

    def propose(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> Proposal:
        settings = self._parse(problem)
        state = HyperbandState.resolve(settings)
        if n <= 0:
            return Proposal([], {**problem.settings, **state.settings()})
        if state.current_s < 0:
            raise SearchSpaceExhausted(n, 0)
        rng = history_rng(settings["random_state"], history)
        out: list[Suggestion] = []
        while len(out) < n and state.current_s >= 0:
            rung = _Rung(state, history, problem)
            if rung.target is None:  # the rung before is still running
                break
            if state.evaluating_trials < rung.target:
                take = min(n - len(out), rung.target - state.evaluating_trials)
                out += rung.issue(state.evaluating_trials, take, problem.space, rng)
                state = replace(state, evaluating_trials=state.evaluating_trials + take)
            elif state.current_i >= state.current_s or rung.target == 0:
                state = state.next_bracket()  # the last rung is not waited for
            elif rung.finished:
                state = replace(state, current_i=state.current_i + 1, evaluating_trials=0)
            else:
                break
        return Proposal(out, {**problem.settings, **state.settings()})


class _Rung:
    """Rung `current_i` of bracket `current_s`: how many trials it has (None: not known until the
    rung before finishes), whether all of it has finished, and its trials to issue."""

    def __init__(self, state: HyperbandState, history: Sequence[TrialRecord], problem: Problem) -> None:
        self.state = state
        members = _members(history, state.current_s, state.current_i)
        issued = state.evaluating_trials
        self.finished = len(members) >= issued and all(t.condition.finished for t in members)
        self.parents: list[TrialRecord] = []
        self.target: int | None
        if state.current_i == 0:
            self.target = state.n
            return
        before = _members(history, state.current_s, state.current_i - 1)
        if any(not t.condition.finished for t in before):
            self.target = None
            return
        wanted = math.ceil(math.ceil(state.n * state.eta ** (-(state.current_i - 1))) / state.eta)
        self.parents = _ranked(before, problem)[:wanted]
        self.target = len(self.parents)

    def issue(self, start: int, count: int, space: SearchSpace, rng: random.Random) -> list[Suggestion]:
        state = self.state
        labels = {BRACKET_LABEL: str(state.current_s), RUNG_LABEL: str(state.current_i)}
        budget = {state.resource_name: state.budget()}
        if state.current_i == 0:
            return [Suggestion({**{p.name: sample_value(p, rng) for p in space.parameters}, **budget}, labels)
                    for _ in range(count)]
        return [Suggestion({**t.assignments, **budget}, labels) for t in self.parents[start:start + count]]


def _members(history: Sequence[TrialRecord], s: int, i: int) -> list[TrialRecord]:
    bracket, rung = str(s), str(i)
    return [t for t in history if t.labels.get(BRACKET_LABEL) == bracket and t.labels.get(RUNG_LABEL) == rung]


def _ranked(trials: Sequence[TrialRecord], problem: Problem) -> list[TrialRecord]:
    """Succeeded trials with a number for the objective, best first (ties: history order)."""
    sign = -1.0 if problem.objective.type is ObjectiveType.MAXIMIZE else 1.0
    scored = [(sign * v, k, t) for k, t in enumerate(trials)
              if t.condition is TrialCondition.SUCCEEDED and (v := t.value(problem.objective)) is not None
              and not math.isnan(v)]
    return [t for _, _, t in sorted(scored, key=lambda x: (x[0], x[1]))]
