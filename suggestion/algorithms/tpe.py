"""Tree-structured Parzen Estimator: Optuna's TPESampler, driven from the request history.

Stateless: each call builds an in-memory Optuna study, adds every evaluated trial as a
completed one (the reward as its value, oldest first, as Optuna weighs recent trials
more) and every running trial as a running one, then asks for `n` trials. With
`constant_liar` (on) the running and just-asked trials count as bad results, so a batch
spreads out instead of asking the same point `n` times.

Distributions: a categorical or discrete parameter is a CategoricalDistribution over its
values (by index); an int parameter is an IntDistribution with its step, `log` for
logUniform/logNormal (Optuna takes no log scale with a step, so a stepped int is
searched linearly); a double with a step is a stepped FloatDistribution, one without a
FloatDistribution over its unit position (`Dimension.unit`: log-scaled for
logUniform/logNormal); a NAS architecture is one CategoricalDistribution per choice of
its encoding.

Optuna is imported inside `suggest`, so a server for another algorithm never loads it.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_based import MultivariateTpeSettings, TpeSettings
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, Problem, Suggestion
from suggestion.algorithms.points import (
    FLOAT,
    INT,
    Dimension,
    Point,
    PointSpace,
    point_space,
    read_history,
)
from suggestion.algorithms.sampling import history_rng, snap

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

__all__ = ["MultivariateTpe", "Tpe"]

logger = logging.getLogger(__name__)

# Asks before a repeated point is replaced by a random unseen one.
_ASK_TRIES = 8


class Tpe(Algorithm):
    """Random for the first `n_startup_trials` evaluated trials, then TPE (Optuna's)."""

    name = "tpe"
    description = "tree-structured Parzen estimator (Optuna's TPESampler); " \
                  "n_startup_trials, n_ei_candidates, multivariate, random_state, search_mode"

    # Optuna's own defaults; Katib's names (its `tpe` and `multivariate-tpe` take exactly
    # n_startup_trials, n_ei_candidates and random_state).
    settings_model: ClassVar[type[MultivariateTpeSettings]] = TpeSettings

    def validate(self, problem: Problem) -> None:
        point_space(problem.space, dict(parse_settings(problem.settings, self.settings_model)))

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings = parse_settings(problem.settings, self.settings_model)
        points = point_space(problem.space, dict(settings))
        if n <= 0:
            return []
        rng = history_rng(settings.random_state, history)
        optuna = _optuna()
        from optuna.trial import TrialState, create_trial

        view = read_history(points, problem.objective, history)
        dists = {d.name: _distribution(d) for d in points.dims}
        seed = None if settings.random_state is None else rng.getrandbits(32)
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=settings.n_startup_trials,
            n_ei_candidates=settings.n_ei_candidates,
            multivariate=getattr(settings, "multivariate", "true") == "true",
            constant_liar=True,
            seed=seed,
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        known: list[tuple[Point, TrialState, float | None]] = [
            (e.point, TrialState.COMPLETE, e.reward) for e in view.evaluated]
        known += [(p, TrialState.RUNNING, None) for p in view.pending]
        for point, state, value in known:
            try:
                study.add_trial(create_trial(state=state, value=value, params=_params(points, point),
                                             distributions=dists))
            except ValueError as err:  # a value Optuna's grid refuses: the trial is left out
                logger.debug("tpe: trial left out of the study: %s", err)
        seen: set[Hashable] = set(view.seen)
        out: list[Point] = []
        for _ in range(n):
            problem.check_cancelled()
            out.append(_ask(study, points, dists, seen, rng, TrialState.FAIL))
        return [Suggestion(points.assignments(p)) for p in out]


class MultivariateTpe(Tpe):
    """Katib's `multivariate-tpe`: the same sampler, always multivariate (no such setting)."""

    name = "multivariate-tpe"
    description = "multivariate tree-structured Parzen estimator (Optuna's TPESampler); " \
                  "n_startup_trials, n_ei_candidates, random_state, search_mode"
    settings_model = MultivariateTpeSettings


def _ask(study: Any, points: PointSpace, dists: Mapping[str, BaseDistribution], seen: set[Hashable],
         rng: Any, failed: Any) -> Point:
    """A new unseen point from the study; asked trials stay running (the constant liar)."""
    for _ in range(_ASK_TRIES):
        trial = study.ask(fixed_distributions=dict(dists))
        point = tuple(_value(d, trial.params[d.name]) for d in points.dims)
        key = points.key(point)
        if key not in seen:
            seen.add(key)
            return point
        study.tell(trial, state=failed)
    return points.random_unseen(seen, rng)


def _optuna() -> Any:
    import optuna

    # Optuna logs every study creation at INFO; one study per request is our routine.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _distribution(d: Dimension) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if d.indexed:
        return CategoricalDistribution(tuple(range(d.size)))
    assert d.spec is not None
    step = d.spec.step
    # The largest grid value, so Optuna need not move `high` (it warns when it does).
    high = snap(d.spec, d.high)
    if d.kind == INT:
        k = int(step or 1)
        return IntDistribution(int(d.low), int(high), log=d.log and k == 1, step=k)
    if step is not None:
        return FloatDistribution(d.low, float(high), step=float(step))
    # A continuous double is searched by its unit position (log scale included): Optuna
    # overflows on ranges near the float limit, and TPE models a log scale this way anyway.
    return FloatDistribution(0.0, 1.0)


def _continuous(d: Dimension) -> bool:
    return d.kind == FLOAT and d.spec is not None and d.spec.step is None


def _params(points: PointSpace, point: Point) -> dict[str, Any]:
    """Optuna's parameters of one of our points."""
    out: dict[str, Any] = {}
    for d, v in zip(points.dims, point):
        out[d.name] = v if d.indexed else d.unit(v) if _continuous(d) else _snap_to(d, v)
    return out


def _snap_to(d: Dimension, value: Any) -> Any:
    assert d.spec is not None
    return snap(d.spec, min(max(float(value), d.low), d.high))


def _value(d: Dimension, param: Any) -> Any:
    """Our point value of an Optuna parameter (on our own step grid, in our bounds)."""
    if d.indexed:
        return int(param)
    return d.from_unit(float(param)) if _continuous(d) else _snap_to(d, param)
