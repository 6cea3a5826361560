"""pbt: Katib's settings and rules; exploit copies a top member's checkpoint, explore perturbs;
the population is recomputed from the history's labels; trial directories on disk."""

from __future__ import annotations

from pathlib import Path
from random import Random

import pytest

from kubenas.space import SearchSpace, SpaceError
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem, Suggestion
from suggestion.algorithms.pbt import GENERATION_LABEL, MEMBER_LABEL, PARENT_LABEL, Pbt, perturb
from suggestion.algorithms.points import point_space
from suggestion.state import DirectoryStateStore
from tests.suggestion.contract import OBJECTIVE, nb201_nas, param
from tests.suggestion.model_based import stamp
from tests.suggestion.servers import experiment, suggestion_stub

SPACE = SearchSpace(parameters=(
    param("lr", "double", lo="0.0001", hi="0.02", step="0.0001"),
    param("units", "int", lo="1", hi="64"),
    param("optimizer", "categorical", values=("sgd", "adam", "rmsprop")),
))
SETTINGS = {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "5",
            "truncation_threshold": "0.2", "random_state": "1"}


def problem(**overrides: str) -> Problem:
    return Problem("exp", SPACE, OBJECTIVE, {**SETTINGS, **overrides})


def ended(s: Suggestion, value: float | None, when: int,
          condition: TrialCondition = TrialCondition.SUCCEEDED) -> TrialRecord:
    metrics = {} if value is None else {"accuracy": value}
    return TrialRecord(s.trial_name, dict(s.assignments), condition, metrics, dict(s.labels), completion_time=stamp(when))


def generation_zero(algo: Pbt, values: list[float]) -> tuple[list[Suggestion], list[TrialRecord]]:
    first = algo.suggest(problem(), [], len(values))
    return first, [ended(s, v, i) for i, (s, v) in enumerate(zip(first, values))]


@pytest.mark.parametrize("missing", ["suggestion_trial_dir", "n_population", "truncation_threshold"])
def test_katibs_required_settings_are_required(missing: str) -> None:
    settings = {k: v for k, v in SETTINGS.items() if k != missing}
    with pytest.raises(InvalidSettings) as info:
        Pbt().validate(Problem("exp", SPACE, OBJECTIVE, settings))
    assert info.value.setting == missing
    assert str(info.value).startswith(f"{missing}: ") and "missing; pbt requires it" in str(info.value)


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("n_population", "4", ">= 5"),
    ("n_population", "5.5", ">= 5"),
    ("truncation_threshold", "1.5", "[0, 1]"),
    ("truncation_threshold", "-0.1", "[0, 1]"),
    ("resample_probability", "2", "[0, 1]"),
    ("suggestion_trial_dir", "checkpoints", "absolute path"),
    ("suggestion_trial_dir", "/a/../b", "'..'"),
    ("suggestion_trial_dir", "/", "absolute path below /"),
])
def test_bad_values_are_named_with_what_is_allowed(name: str, value: str, allowed: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        Pbt().validate(problem(**{name: value}))
    assert info.value.setting == name and info.value.value == value
    assert allowed in str(info.value), str(info.value)


@pytest.mark.parametrize(("name", "value"), [("n_population", "5"), ("truncation_threshold", "0"),
                                             ("truncation_threshold", "1"), ("resample_probability", "None"),
                                             ("resample_probability", "0.25")])
def test_katibs_limits_are_accepted(name: str, value: str) -> None:
    Pbt().validate(problem(**{name: value}))


def test_a_nas_space_is_refused_naming_nasconfig() -> None:
    with pytest.raises(SpaceError) as info:
        Pbt().validate(Problem("exp", SearchSpace(nas_config=nb201_nas()), OBJECTIVE, SETTINGS))
    assert info.value.field == "nasConfig" and "checkpoint" in str(info.value)


def test_the_first_population_is_generation_zero_with_one_member_each() -> None:
    first = Pbt().suggest(problem(), [], 5)
    assert [s.labels[GENERATION_LABEL] for s in first] == ["0"] * 5
    assert sorted(s.labels[MEMBER_LABEL] for s in first) == ["0", "1", "2", "3", "4"]
    assert all(PARENT_LABEL not in s.labels for s in first)
    names = [s.trial_name for s in first]
    assert len(set(names)) == 5 and all(n.startswith("exp-") and len(n) == len("exp-") + 8 for n in names)


def test_the_bottom_member_starts_from_a_top_members_checkpoint(tmp_path: Path) -> None:
    algo = Pbt(DirectoryStateStore(tmp_path))
    values = [0.9, 0.1, 0.5, 0.6, 0.7]
    first, history = generation_zero(algo, values)
    for s in first:  # each trial leaves a checkpoint naming itself
        (tmp_path / "exp" / s.trial_name / "ckpt.txt").write_text(s.trial_name)
    child = algo.suggest(problem(), history, 5)
    by_member = {s.labels[MEMBER_LABEL]: s for s in child}
    worst = by_member["1"]
    top = first[0]  # 0.9 is the only value >= the 0.8 quantile
    assert worst.labels[PARENT_LABEL] == top.trial_name
    assert worst.labels[GENERATION_LABEL] == "1"
    assert (tmp_path / "exp" / worst.trial_name / "ckpt.txt").read_text() == top.trial_name
    # The others explore from their own checkpoints.
    for index in ("0", "2", "3", "4"):
        s = by_member[index]
        own = first[int(index)]
        assert s.labels[PARENT_LABEL] == own.trial_name and s.labels[GENERATION_LABEL] == "1"
        assert (tmp_path / "exp" / s.trial_name / "ckpt.txt").read_text() == own.trial_name


def test_only_members_whose_trial_ended_move_on() -> None:
    algo = Pbt()
    first, history = generation_zero(algo, [0.9, 0.1, 0.5, 0.6, 0.7])
    history = [h if i == 3 else TrialRecord(h.name, h.assignments, TrialCondition.RUNNING, {}, h.labels)
               for i, h in enumerate(history)]
    (child,) = algo.suggest(problem(), history, 1)
    assert child.labels[MEMBER_LABEL] == "3" and child.labels[PARENT_LABEL] == first[3].trial_name


def test_explore_perturbs_every_value_by_katibs_factors() -> None:
    algo = Pbt()
    first, history = generation_zero(algo, [0.5] * 5)  # all equal: nobody is below the bottom bound
    children = algo.suggest(problem(), history, 5)
    for s in children:
        parent = next(f for f in first if f.trial_name == s.labels[PARENT_LABEL])
        assert parent.labels[MEMBER_LABEL] == s.labels[MEMBER_LABEL]
        old, new = float(parent.assignments["lr"]), float(s.assignments["lr"])
        assert new == pytest.approx(min(0.02, round(old * 0.8, 4)), abs=1e-4) \
            or new == pytest.approx(min(0.02, round(old * 1.2, 4)), abs=1e-4) or new == 0.02, (old, new)
        assert s.assignments["optimizer"] != parent.assignments["optimizer"]  # a neighbour in the list


def test_resample_probability_zero_keeps_and_one_redraws() -> None:
    keep = Pbt()
    first, history = generation_zero(keep, [0.5] * 5)
    kept = keep.suggest(problem(resample_probability="0"), history, 5)
    assert sorted(tuple(sorted(s.assignments.items())) for s in kept) == \
        sorted(tuple(sorted(s.assignments.items())) for s in first)
    redrawn = keep.suggest(problem(resample_probability="1"), history, 5)
    assert {s.assignments["lr"] for s in redrawn} != {s.assignments["lr"] for s in first}


def test_a_failed_trial_is_run_again_from_the_same_checkpoint(tmp_path: Path) -> None:
    algo = Pbt(DirectoryStateStore(tmp_path))
    first, history = generation_zero(algo, [0.9, 0.1, 0.5, 0.6, 0.7])
    children = algo.suggest(problem(), history, 5)
    (tmp_path / "exp" / children[2].labels[PARENT_LABEL] / "ckpt.txt").write_text("parent")
    history += [ended(s, None, 10 + i, TrialCondition.RUNNING) for i, s in enumerate(children)]
    history[5 + 2] = ended(children[2], None, 20, TrialCondition.FAILED)
    again = algo.suggest(problem(), history, 1)[0]
    assert dict(again.assignments) == dict(children[2].assignments)
    assert {k: again.labels[k] for k in (MEMBER_LABEL, GENERATION_LABEL, PARENT_LABEL)} == \
        {k: children[2].labels[k] for k in (MEMBER_LABEL, GENERATION_LABEL, PARENT_LABEL)}
    assert again.trial_name not in {t.name for t in history}
    assert (tmp_path / "exp" / again.trial_name / "ckpt.txt").read_text() == "parent"


def test_a_member_whose_trial_ended_without_a_value_exploits_the_best() -> None:
    algo = Pbt()
    first, history = generation_zero(algo, [0.9, 0.1, 0.5, 0.6, 0.7])
    history[2] = ended(first[2], None, 2, TrialCondition.METRICS_UNAVAILABLE)
    children = {s.labels[MEMBER_LABEL]: s for s in algo.suggest(problem(), history, 5)}
    assert children["2"].labels[PARENT_LABEL] == first[0].trial_name


def test_parallel_trials_beyond_the_population_start_new_members() -> None:
    algo = Pbt()
    first = algo.suggest(problem(), [], 7)
    assert sorted(int(s.labels[MEMBER_LABEL]) for s in first) == list(range(7))


def test_the_population_is_read_back_from_the_history_alone() -> None:
    first, history = generation_zero(Pbt(), [0.9, 0.1, 0.5, 0.6, 0.7])
    a = Pbt().suggest(problem(), history, 5)
    b = Pbt().suggest(problem(), list(reversed(history)), 5)
    assert [(dict(s.assignments), dict(s.labels), s.trial_name) for s in a] == \
        [(dict(s.assignments), dict(s.labels), s.trial_name) for s in b]


def test_generations_grow_along_each_line() -> None:
    algo = Pbt()
    history: list[TrialRecord] = []
    rng = Random(0)
    for _ in range(6):
        for s in algo.suggest(problem(), history, 5):
            history.append(ended(s, rng.random(), len(history)))
    generation = {t.name: int(t.labels[GENERATION_LABEL]) for t in history}
    for t in history:
        if PARENT_LABEL in t.labels:
            assert generation[t.name] == generation[t.labels[PARENT_LABEL]] + 1
    assert max(generation.values()) == 5


@pytest.mark.parametrize(("value", "expected"), [(2, {1, 3}), (10, {8, 12}), (1, {1, 2}), (64, {51, 64})])
def test_perturbing_an_int_moves_it_a_grid_step_at_least_and_clips_at_its_bounds(value: int, expected: set[int]) -> None:
    # 2 x 0.8 and 2 x 1.2 round back to 2: it moves one step instead; at a bound it stays (clipped).
    dim = point_space(SPACE, {}).dims[1]
    assert {perturb(dim, value, Random(seed)) for seed in range(20)} == expected


def test_perturbing_a_list_value_moves_to_a_neighbour_wrapping_round() -> None:
    dim = point_space(SPACE, {}).dims[2]
    assert {perturb(dim, 0, Random(seed)) for seed in range(20)} == {1, 2}


def test_the_grpc_round_trip_carries_trial_names_and_labels_both_ways() -> None:
    from kubenas.api.v1beta1 import api_pb2
    from kubenas.proto_convert import trial_to_proto

    with suggestion_stub("pbt") as stub:
        def ask(trials: list[TrialRecord], n: int) -> list[Suggestion]:
            reply = stub.GetSuggestions(api_pb2.GetSuggestionsRequest(
                experiment=experiment(SPACE, "pbt", SETTINGS), current_request_number=n,
                trials=[trial_to_proto(t, OBJECTIVE) for t in trials]), timeout=30)
            return [Suggestion(dict((a.name, a.value) for a in p.assignments), dict(p.labels), p.trial_name)
                    for p in reply.parameter_assignments]

        first = ask([], 5)
        assert [s.labels[GENERATION_LABEL] for s in first] == ["0"] * 5
        assert all(s.trial_name.startswith("exp-") for s in first)
        children = ask([ended(s, 0.1 * i, i) for i, s in enumerate(first)], 5)
    assert {s.labels[GENERATION_LABEL] for s in children} == {"1"}
    assert {s.labels[PARENT_LABEL] for s in children} <= {s.trial_name for s in first}
