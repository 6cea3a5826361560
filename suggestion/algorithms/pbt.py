"""Population based training (Jaderberg et al. 2017) by Katib's settings, labels and directories.

A population of `n_population` members trains in steps; each step is one trial that
starts from a checkpoint and leaves one. Every trial carries Katib's labels
`pbt.suggestion.katib.kubeflow.org/generation` (how many steps its checkpoint has behind
it) and, after the first step, `.../parent` (the trial whose checkpoint it starts from),
plus ours, `pbt.suggestion.kubenas.kubeflow.org/member` (which member it advances).

The state is recomputed from the request's history (the controller sends each trial's
labels back), so a restarted server continues where it was. Each call fills its slots in
this order:
1. members not yet started (up to `n_population`): a random point, generation 0;
2. members whose last trial has ended, the one that ended first first:
   - Failed or Killed: the same trial again (same point, parent, generation), as Katib
     re-queues it;
   - ranked in the bottom `truncation_threshold` of the population (by each member's
     latest objective value; a member whose last trial ended without a value ranks last):
     *exploit* a member of the top `truncation_threshold` picked at random: start from its
     checkpoint (it is the parent) with its hyperparameters, explored as below;
   - otherwise *explore*: start from the member's own checkpoint with its hyperparameters
     perturbed (x0.8 or x1.2 for numbers, the neighbouring list value for the others) or,
     with `resample_probability` p, each one redrawn from its feasible space with
     probability p;
3. if every member is busy (parallelTrialCount above n_population), a new member.

Differences from Katib's service, on purpose: Katib's exploit gives the bottom member the
top member's hyperparameters but copies the bottom member's own checkpoint (its parent
label names itself), so no weights move; here the checkpoint and the parent label are the
top member's, as in the paper, and the copied hyperparameters are explored. Katib forms
generations in batches of n_population (with extra members while one is unfinished);
here each member moves on as soon as its trial ends, so no worker waits.

Trial directories: with a state directory (always in `kubenas run`; resumePolicy
FromVolume in a cluster) each proposal's directory `<state>/<experiment>/<trial>` is made
before the reply (see `kubenas.trial_dirs`), holding a copy of the parent's directory,
which is why pbt names its trials. Without one (an in-memory server) only labels are sent.
HPO only: a checkpoint does not carry over to another architecture.
"""

from __future__ import annotations

import logging
import shutil
import string
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any

from kubenas import rfc3339
from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.schedules import PBT_REQUIRED, PbtSettings
from kubenas.space import SpaceError
from kubenas.trial_dirs import trial_dir
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.points import (
    CATEGORICAL,
    FLOAT,
    INT,
    ORDINAL,
    Dimension,
    HpoPoints,
    Point,
    point_space,
)
from suggestion.algorithms.reward import REWARD_LIMIT, reward
from suggestion.algorithms.sampling import history_rng, snap

__all__ = ["GENERATION_LABEL", "MEMBER_LABEL", "PARENT_LABEL", "Pbt", "perturb"]

log = logging.getLogger(__name__)

GENERATION_LABEL = "pbt.suggestion.katib.kubeflow.org/generation"
PARENT_LABEL = "pbt.suggestion.katib.kubeflow.org/parent"
MEMBER_LABEL = "pbt.suggestion.kubenas.kubeflow.org/member"

PERTURB_FACTORS = (0.8, 1.2)
# A value a perturbation cannot move (0, a small int, a coarse grid) moves by one grid step,
# or by this fraction of the range when the parameter has no grid.
_NUDGE = 0.05
_NAME_LETTERS = 8
# Below every reward (rewards are clipped to +-REWARD_LIMIT): a member whose last trial ended
# without a value.
_NO_VALUE = -2 * REWARD_LIMIT
_RETRY = (TrialCondition.FAILED, TrialCondition.KILLED)


@dataclass(frozen=True)
class _Step:
    """One trial of a member, as read from the history."""

    trial: TrialRecord
    member: int
    generation: int
    parent: str | None
    # Which of a member's trials is later: by completion, then position in the history (not
    # by generation: a member that exploits a member behind it goes back in generations).
    key: tuple[datetime, int]
    point: Point = ()  # read only for the trials a call uses (a head, a latest valued one)


@dataclass(frozen=True)
class _Member:
    index: int
    head: _Step              # its latest trial
    scored: _Step | None     # its latest trial with an objective value
    value: float | None      # what it ranks by (None: not ranked yet)


class Pbt(Algorithm):
    """Population based training; trial directories from the parent's, Katib's labels."""

    name = "pbt"
    settings_model = PbtSettings
    supports_nas = False
    description = "population based training: exploit (truncation) and explore (perturb or resample), " \
                  "checkpoints in suggestion_trial_dir copied from the parent; n_population, " \
                  "truncation_threshold, resample_probability, random_state; HPO"

    def validate(self, problem: Problem) -> None:
        self._parse(problem)

    def _parse(self, problem: Problem) -> tuple[dict[str, Any], HpoPoints]:
        for name, example in PBT_REQUIRED.items():
            if name not in problem.settings:
                raise InvalidSettings(name, None, f"missing; pbt requires it (as Katib does), e.g. {example}")
        settings = parse_settings(problem.settings, PbtSettings).model_dump()
        if problem.space.nas_config is not None:
            raise SpaceError("nasConfig", "a NAS search space",
                             "pbt tunes hyperparameters of one model (a checkpoint does not carry over to "
                             "another architecture); for NAS use random, grid, evolution, bayesian, tpe, "
                             "sobol, enas or darts")
        if "/" in problem.experiment or problem.experiment in ("", ".", ".."):
            raise InvalidSettings("experiment name", problem.experiment,
                                  "pbt keeps each trial's directory under it: a plain name")
        points = point_space(problem.space, settings)
        assert isinstance(points, HpoPoints)
        return settings, points

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, points = self._parse(problem)
        if n <= 0:
            return []
        rng = history_rng(settings["random_state"], history)
        members = _members(points, problem, history)
        ranked = [m for m in members.values() if m.value is not None]
        low, high = _bounds([m.value for m in ranked if m.value is not None], settings["truncation_threshold"])
        upper = [m for m in ranked if m.value is not None and m.value > _NO_VALUE and m.value >= high]
        ready = sorted((m for m in members.values() if m.head.trial.condition.finished),
                       key=lambda m: (rfc3339.parse_or_earliest(m.head.trial.completion_time), m.index))
        seen: set[Hashable] = set()
        names = {t.name for t in history}
        out: list[Suggestion] = []
        for _ in range(n):
            if len(members) >= settings["n_population"] and ready:
                member = ready.pop(0)
                point, parent, generation = self._next_step(member, upper, low, settings, points, rng)
                index = member.index
            else:  # a member not yet started (or one more than n_population when all are busy)
                index = _free_index(members)
                point, parent, generation = points.random_unseen(seen, rng), None, 0
            members[index] = members.get(index) or _placeholder(index)
            name = _new_name(problem.experiment, names, rng)
            labels = {GENERATION_LABEL: str(generation), MEMBER_LABEL: str(index)}
            if parent is not None:
                labels[PARENT_LABEL] = parent
            out.append(Suggestion(points.assignments(point), labels, name))
        root = self.state.directory
        if root is not None:
            with self.state.lock(f"pbt:{problem.experiment}"):
                for s in out:
                    _prepare_dir(root, problem.experiment, s.trial_name, s.labels.get(PARENT_LABEL))
        return out

    def _next_step(self, member: _Member, upper: Sequence[_Member], low: float, settings: Mapping[str, Any],
                   points: HpoPoints, rng: Random) -> tuple[Point, str | None, int]:
        head = member.head
        if head.trial.condition in _RETRY:
            return head.point, head.parent, head.generation
        donors = [m for m in upper if m.index != member.index and m.scored is not None]
        value = member.value if member.value is not None else _NO_VALUE
        if donors and value < low:
            donor = donors[rng.randrange(len(donors))].scored
            assert donor is not None
            return _explore(donor.point, settings, points, rng), donor.trial.name, donor.generation + 1
        if member.scored is not head:  # ended without a value and nobody to copy: again, explored
            return _explore(head.point, settings, points, rng), head.parent, head.generation
        return _explore(head.point, settings, points, rng), head.trial.name, head.generation + 1


def _placeholder(index: int) -> _Member:
    # A member started by this call: busy, so it is neither ready nor ranked.
    return _Member(index, _Step(TrialRecord("", {}), index, 0, None, (rfc3339.EARLIEST, -1)), None, None)


def _free_index(members: Mapping[int, _Member]) -> int:
    index = 0
    while index in members:
        index += 1
    return index


def _label_int(labels: Mapping[str, str], key: str) -> int | None:
    text = labels.get(key, "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


@lru_cache(maxsize=1 << 16)
def _completion(text: str | None) -> datetime:
    # Every call sees the whole history again: each time is parsed once per process.
    return rfc3339.parse_or_earliest(text)


def _members(points: HpoPoints, problem: Problem, history: Sequence[TrialRecord]) -> dict[int, _Member]:
    """Each member's head and latest valued trial; trials without pbt's labels, or whose
    assignments do not fit the space, are not members'."""
    steps: dict[int, list[_Step]] = {}
    for order, trial in enumerate(history):
        member, generation = _label_int(trial.labels, MEMBER_LABEL), _label_int(trial.labels, GENERATION_LABEL)
        if member is None or generation is None:
            continue
        parent = trial.labels.get(PARENT_LABEL) or None
        key = (_completion(trial.completion_time), order)
        steps.setdefault(member, []).append(_Step(trial, member, generation, parent, key))
    out: dict[int, _Member] = {}
    for index, chain in steps.items():
        found = _member(index, chain, points, problem)
        if found is not None:
            out[index] = found
    return out


def _member(index: int, chain: list[_Step], points: HpoPoints, problem: Problem) -> _Member | None:
    chain = sorted(chain, key=lambda s: s.key, reverse=True)  # latest first
    readable: dict[int, _Step | None] = {}

    def read(i: int) -> _Step | None:  # decoding is the costly part: only what is looked at
        if i not in readable:
            point = points.decode(chain[i].trial.assignments)
            readable[i] = replace(chain[i], point=point) if point is not None else None
        return readable[i]

    running = [i for i, s in enumerate(chain) if not s.trial.condition.finished]
    head = next((s for i in (running or range(len(chain))) if (s := read(i)) is not None), None)
    if head is None:
        return None
    scored, score = None, None
    for i, step in enumerate(chain):
        value = reward(step.trial, problem.objective)
        if value is not None and (scored := read(i)) is not None:
            score = value
            break
    if head.trial.condition.finished and head.trial.condition not in _RETRY and scored is not head:
        score = _NO_VALUE  # its last step ended without a value: it ranks last
    return _Member(index, head, scored, score)


def _bounds(values: Sequence[float], threshold: float) -> tuple[float, float]:
    """Katib's truncation bounds: the `threshold` and `1 - threshold` quantiles (linear)."""
    if not values:
        return float("-inf"), float("inf")
    import numpy as np

    low, high = np.quantile(np.asarray(values, dtype=float), (threshold, 1 - threshold))
    return float(low), float(high)


def _explore(point: Point, settings: Mapping[str, Any], points: HpoPoints, rng: Random) -> Point:
    p = settings["resample_probability"]
    if p is None:
        return tuple(perturb(d, v, rng) for d, v in zip(points.dims, point))
    fresh = points.random(rng)
    return tuple(fresh[i] if rng.random() < p else v for i, v in enumerate(point))


def perturb(d: Dimension, value: Any, rng: Random) -> Any:
    """Katib's perturbation of one value: a number times 0.8 or 1.2 (clipped to its range, on
    its grid), a list value's neighbour in the list (wrapping round)."""
    if d.kind in (CATEGORICAL, ORDINAL):
        if d.size < 2:
            return value
        order = list(range(d.size)) if d.kind == CATEGORICAL else sorted(range(d.size), key=lambda i: d.values[i])
        at = order.index(int(value))
        return order[(at + rng.choice((-1, 1))) % d.size]
    assert d.kind in (INT, FLOAT) and d.spec is not None
    factor = rng.choice(PERTURB_FACTORS)
    raw = float(value) * factor
    new = snap(d.spec, min(max(raw, d.low), d.high))
    if new == value:
        up = raw > value or (raw == value and factor > 1)
        step = float(d.spec.step) if d.spec.step else (1.0 if d.kind == INT else (d.high - d.low) * _NUDGE)
        new = snap(d.spec, min(max(float(value) + (step if up else -step), d.low), d.high))
    return new


def _new_name(experiment: str, taken: set[str], rng: Random) -> str:
    """`<experiment>-<8 lowercase letters>`, the shape of Katib's controller's trial names."""
    while True:
        name = f"{experiment}-{''.join(rng.choice(string.ascii_lowercase) for _ in range(_NAME_LETTERS))}"
        if name not in taken:
            taken.add(name)
            return name


def _prepare_dir(root: Path, experiment: str, trial: str, parent: str | None) -> None:
    """The trial's directory, afresh: a copy of the parent's, or empty for a first step."""
    target = trial_dir(root, experiment, trial)
    if target.exists():
        shutil.rmtree(target)  # a retried request: the same names, made again
    target.parent.mkdir(parents=True, exist_ok=True)
    source = trial_dir(root, experiment, parent) if parent else None
    if source is not None and source.is_dir():
        shutil.copytree(source, target, symlinks=True)
        return
    if source is not None:
        log.warning("pbt: the directory of %s's parent %s is missing (%s); %s starts empty",
                    trial, parent, source, trial)
    target.mkdir()
