"""Helpers shared by the evolution, bayesian and tpe tests.

`search` runs a real algorithm in a loop against a synthetic objective (real algorithm, real
numbers; the "trainer" is a formula); `round_trip` asks a real gRPC server once."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import grpc
import pytest

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_free import EvolutionSettings
from kubenas.api.v1beta1 import api_pb2
from kubenas.nb201 import Cell201
from kubenas.proto_convert import objective_to_proto, search_space_to_proto, trial_to_proto
from kubenas.space import SearchSpace
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.base import Problem
from suggestion.algorithms.points import PointSpace, point_space
from suggestion.algorithms.registry import algorithm_class
from tests.suggestion.contract import OBJECTIVE, nb201_nas, param
from tests.suggestion.servers import suggestion_stub

NB201 = SearchSpace(nas_config=nb201_nas())
NB201_SETTINGS = {"search_mode": "nb201"}


def stamp(i: int) -> str:
    """An RFC 3339 completion time, one second per trial index."""
    return f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"


def trial(name: str, assignments: Mapping[str, str], value: float | None,
          condition: TrialCondition = TrialCondition.SUCCEEDED, when: int | None = None) -> TrialRecord:
    metrics = {} if value is None else {"accuracy": value}
    return TrialRecord(name, dict(assignments), condition, metrics,
                       completion_time=None if when is None else stamp(when))


def nb201_reward(assignments: Mapping[str, str]) -> float:
    """Synthetic NB201 accuracy: the number of nor_conv_3x3 edges (0..6)."""
    return float(Cell201.from_string(assignments["architecture"]).ops.count("nor_conv_3x3"))


def search(algorithm: str, space: SearchSpace, settings: Mapping[str, str],
           reward: Callable[[Mapping[str, str]], float], budget: int, batch: int, seed: int) -> list[float]:
    """Run `budget` trials `batch` at a time; return the best reward after each trial."""
    algo = algorithm_class(algorithm)()
    problem = Problem("exp", space, OBJECTIVE, {**settings, "random_state": str(seed)})
    history: list[TrialRecord] = []
    while len(history) < budget:
        for s in algo.suggest(problem, history, min(batch, budget - len(history))):
            i = len(history)
            history.append(trial(f"t-{i:04d}", s.assignments, reward(s.assignments), when=i))
    best, out = float("-inf"), []
    for t in history:
        best = max(best, t.metrics["accuracy"])
        out.append(best)
    return out


def points_of(space: SearchSpace, settings: Mapping[str, str]) -> PointSpace:
    """The point view an algorithm searches for `space` under `settings`."""
    return point_space(space, dict(parse_settings(settings, EvolutionSettings)))


def differences(a: Sequence[object], b: Sequence[object]) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def random_history(space: SearchSpace, settings: Mapping[str, str], count: int, seed: int = 0,
                   value: Callable[[int], float] = float) -> list[TrialRecord]:
    points = points_of(space, settings)
    rng = random.Random(seed)
    return [trial(f"h-{i:03d}", points.assignments(points.random(rng)), value(i), when=i) for i in range(count)]


QUADRATIC = SearchSpace(parameters=(
    param("x", "double", lo="-5", hi="5"),
    param("y", "double", lo="-5", hi="5"),
))


def quadratic(assignments: Mapping[str, str]) -> float:
    """Maximum 0 at (1.5, -2)."""
    return -((float(assignments["x"]) - 1.5) ** 2) - (float(assignments["y"]) + 2) ** 2


def experiment(algorithm: str, space: SearchSpace, settings: Mapping[str, str]) -> api_pb2.Experiment:
    spec = search_space_to_proto(space)
    spec.objective.CopyFrom(objective_to_proto(OBJECTIVE))
    spec.algorithm.algorithm_name = algorithm
    for key, value in settings.items():
        spec.algorithm.algorithm_settings.add(name=key, value=value)
    return api_pb2.Experiment(name=f"{algorithm}-exp", spec=spec)


def round_trip(algorithm: str, space: SearchSpace, settings: Mapping[str, str], history: Sequence[TrialRecord],
               n: int, bad_setting: tuple[str, str]) -> list[dict[str, str]]:
    """GetSuggestions for `n` from a real server; checks a bad setting gets INVALID_ARGUMENT."""
    exp = experiment(algorithm, space, settings)
    with suggestion_stub(algorithm) as stub:
        stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp))
        reply = stub.GetSuggestions(api_pb2.GetSuggestionsRequest(
            experiment=exp, current_request_number=n, total_request_number=len(history) + n,
            trials=[trial_to_proto(t, OBJECTIVE) for t in history]))
        bad = experiment(algorithm, space, {**settings, bad_setting[0]: bad_setting[1]})
        with pytest.raises(grpc.RpcError) as info:
            stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=bad))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert bad_setting[0] in details and repr(bad_setting[1]) in details, details
    return [{a.name: a.value for a in pa.assignments} for pa in reply.parameter_assignments]
