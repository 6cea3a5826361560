"""HistoryConverter: the same records as a fresh conversion, reused only while nothing changed."""

from __future__ import annotations

from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import objective_to_proto, trial_from_proto, trial_to_proto
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.convert import HistoryConverter

MAXIMIZE = Objective(ObjectiveType.MAXIMIZE, "accuracy")
MINIMIZE = Objective(ObjectiveType.MINIMIZE, "accuracy")


def wire(n: int, condition: TrialCondition = TrialCondition.SUCCEEDED) -> list[api_pb2.Trial]:
    trials = []
    for i in range(n):
        msg = trial_to_proto(TrialRecord(f"t{i}", {"lr": f"0.{i + 1}"}, condition), MAXIMIZE)
        # Reported twice: which value counts depends on the objective's direction.
        msg.status.observation.metrics.add(name="accuracy", value=str(0.5 + i / 100))
        msg.status.observation.metrics.add(name="accuracy", value=str(0.7 + i / 100))
        trials.append(msg)
    return trials


def convert(converter: HistoryConverter, experiment: str, objective: Objective,
            trials: list[api_pb2.Trial]) -> list[TrialRecord]:
    return converter.history(experiment, objective_to_proto(objective), objective, trials)


def test_records_equal_a_fresh_conversion_and_are_reused_when_unchanged() -> None:
    converter = HistoryConverter()
    trials = wire(5)
    first = convert(converter, "e", MAXIMIZE, trials)
    assert first == [trial_from_proto(t, MAXIMIZE) for t in trials]
    assert first[0].metrics == {"accuracy": 0.7}
    trials[2].status.condition = api_pb2.TrialStatus.TrialConditionType.Value("FAILED")
    second = convert(converter, "e", MAXIMIZE, [*trials, *wire(7)[5:]])
    assert [a is b for a, b in zip(first, second)] == [True, True, False, True, True]
    assert second[2].condition is TrialCondition.FAILED
    assert second == [trial_from_proto(t, MAXIMIZE) for t in [*trials, *wire(7)[5:]]]


def test_another_objective_converts_again() -> None:
    converter = HistoryConverter()
    trials = wire(3)
    convert(converter, "e", MAXIMIZE, trials)
    assert [r.metrics["accuracy"] for r in convert(converter, "e", MINIMIZE, trials)] == [0.5, 0.51, 0.52]


def test_experiments_are_kept_apart_and_the_oldest_is_forgotten() -> None:
    converter = HistoryConverter(max_experiments=2)
    trials = wire(2)
    a = convert(converter, "a", MAXIMIZE, trials)
    b = convert(converter, "b", MAXIMIZE, trials)
    assert b == a and b[0] is not a[0]
    assert convert(converter, "a", MAXIMIZE, trials)[0] is a[0]  # "a" is now the most recent
    c = convert(converter, "c", MAXIMIZE, trials)  # evicts "b", the least recent
    assert convert(converter, "b", MAXIMIZE, trials)[0] is not b[0]  # ... which evicts "a"
    assert convert(converter, "c", MAXIMIZE, trials)[0] is c[0]


def test_duplicate_and_empty_requests() -> None:
    converter = HistoryConverter()
    trial = wire(1)[0]
    twice = convert(converter, "e", MAXIMIZE, [trial, trial])
    assert twice[0] is twice[1]
    assert convert(converter, "e", MAXIMIZE, []) == []
