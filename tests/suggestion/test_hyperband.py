"""hyperband: Katib's brackets and successive halving, its settings and validation, and the
bracket state that travels in the algorithm settings (in process and over gRPC)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import grpc
import pytest

from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import settings_from_proto
from kubenas.space import SearchSpace, SpaceError
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem, SearchSpaceExhausted
from suggestion.algorithms.hyperband import BRACKET_LABEL, RUNG_LABEL, Hyperband
from tests.suggestion.contract import CONTRACT_SPACES, param
from tests.suggestion.servers import experiment, request, suggestion_stub

SPACE = SearchSpace(parameters=(param("lr", "double", lo="0.01", hi="0.1"),
                                param("momentum", "double", lo="0.5", hi="0.9"),
                                param("num-epochs", "int", lo="1", hi="1")))
ACC = Objective(ObjectiveType.MAXIMIZE, "accuracy")
BASE = {"resource_name": "num-epochs", "r_l": "9", "eta": "3", "random_state": "3"}


def score(assignments: Mapping[str, str]) -> float:
    """Better with a larger lr, and with more epochs (what the budget buys)."""
    return float(assignments["lr"]) * 10 + int(assignments["num-epochs"])


def tag(t: TrialRecord | object) -> tuple[int, int]:
    labels = t.labels  # type: ignore[attr-defined]
    return int(labels[BRACKET_LABEL]), int(labels[RUNG_LABEL])


class Driver:
    """Plays the controller: sends the settings of the previous reply back, merged (Katib's
    appendAlgorithmSettingsFromSuggestion), and completes trials when told."""

    def __init__(self, settings: Mapping[str, str], space: SearchSpace = SPACE, objective: Objective = ACC,
                 parallel: int | None = 9) -> None:
        self.settings, self.space, self.objective, self.parallel = dict(settings), space, objective, parallel
        self.history: list[TrialRecord] = []
        self.algo = Hyperband()

    def ask(self, n: int) -> list[TrialRecord]:
        problem = Problem("exp", self.space, self.objective, self.settings, parallel_trial_count=self.parallel)
        proposal = self.algo.propose(problem, self.history, n)
        assert proposal.settings is not None
        self.settings = {**self.settings, **proposal.settings}
        new = [TrialRecord(f"t{len(self.history) + k:03d}", dict(s.assignments), TrialCondition.RUNNING,
                           labels=dict(s.labels)) for k, s in enumerate(proposal.suggestions)]
        self.history += new
        return new

    def finish(self, value: Callable[[Mapping[str, str]], float] = score,
               condition: TrialCondition = TrialCondition.SUCCEEDED) -> None:
        self.history = [t if t.condition.finished else
                        TrialRecord(t.name, t.assignments, condition,
                                    {"accuracy": value(t.assignments)} if condition is TrialCondition.SUCCEEDED
                                    else {}, t.labels)
                        for t in self.history]


def test_brackets_and_budgets_are_katibs_and_the_best_are_promoted() -> None:
    drive = Driver(BASE)
    rounds = []
    while True:
        try:
            new = drive.ask(9)
        except SearchSpaceExhausted as exc:
            assert exc.remaining == 0
            break
        rounds.append([(*tag(t), int(t.assignments["num-epochs"])) for t in new])
        drive.finish()
    # r_l=9, eta=3: s_max=2; bracket 2: 9 at 1 epoch, 3 at 3, 1 at 9; bracket 1: 5 at 3, 2 at 9;
    # bracket 0: 3 at 9. A bracket's last rung is not waited for: the next bracket follows in the reply.
    assert rounds == [[(2, 0, 1)] * 9, [(2, 1, 3)] * 3, [(2, 2, 9)] + [(1, 0, 3)] * 5,
                      [(1, 1, 9)] * 2 + [(0, 0, 9)] * 3]
    by_rung: dict[tuple[int, int], list[TrialRecord]] = {}
    for t in drive.history:
        by_rung.setdefault(tag(t), []).append(t)
    for (s, i), trials in by_rung.items():
        if i == 0:
            continue
        before = sorted(by_rung[(s, i - 1)], key=lambda t: -t.metrics["accuracy"])
        promoted = [{k: v for k, v in t.assignments.items() if k != "num-epochs"} for t in trials]
        assert promoted == [{k: v for k, v in t.assignments.items() if k != "num-epochs"}
                            for t in before[:len(trials)]]
    assert drive.settings["current_s"] == "-1"


@pytest.mark.parametrize(("r_l", "first", "last"), [("729", "1", "729"), ("100", "1", "100"), ("10", "1", "10")])
def test_budgets_are_not_cut_by_rounding(r_l: str, first: str, last: str) -> None:
    # Katib's float r_l * eta^-s makes 729 * 3^-6 = 0.999... (0 epochs) and 100 end at 99.
    drive = Driver({**BASE, "r_l": r_l}, parallel=None)
    assert {t.assignments["num-epochs"] for t in drive.ask(1)} == {first}
    drive.settings = {**drive.settings, "current_s": "0", "n": "-1", "r": "-1", "evaluating_trials": "0"}
    assert {t.assignments["num-epochs"] for t in drive.ask(1)} == {last}


def test_a_running_rung_is_waited_for_and_the_state_kept() -> None:
    drive = Driver(BASE)
    assert len(drive.ask(9)) == 9
    state = dict(drive.settings)
    assert drive.ask(5) == [] and drive.settings == state
    drive.finish()
    assert [tag(t) for t in drive.ask(5)] == [(2, 1)] * 3


def test_a_rung_larger_than_the_request_is_issued_over_several_calls() -> None:
    drive = Driver(BASE, parallel=None)
    assert [len(drive.ask(4)) for _ in range(3)] == [4, 4, 1]
    assert drive.settings["evaluating_trials"] == "9" and drive.ask(4) == []
    drive.finish()
    first, second = drive.ask(2), drive.ask(2)
    assert [tag(t) for t in first + second] == [(2, 1)] * 3
    assert len({t.assignments["lr"] for t in first + second}) == 3  # three different configs promoted


def test_failed_trials_are_not_promoted_and_an_all_failed_rung_ends_its_bracket() -> None:
    drive = Driver(BASE)
    drive.ask(9)
    drive.history = [t if k % 3 else TrialRecord(t.name, t.assignments, TrialCondition.FAILED, {}, t.labels)
                     for k, t in enumerate(drive.history)]
    drive.finish()
    failed = {t.assignments["lr"] for t in drive.history if t.condition is TrialCondition.FAILED}
    promoted = drive.ask(9)
    assert len(promoted) == 3 and not failed & {t.assignments["lr"] for t in promoted}
    drive.finish(condition=TrialCondition.FAILED)
    # Rung 2 has no one to promote: bracket 1 starts.
    assert {tag(t) for t in drive.ask(9)} == {(1, 0)}


def test_minimize_promotes_the_smallest() -> None:
    loss = Objective(ObjectiveType.MINIMIZE, "accuracy")
    drive = Driver(BASE, objective=loss)
    drive.ask(9)
    drive.finish()
    lrs = sorted(float(t.assignments["lr"]) for t in drive.history)
    assert sorted(float(t.assignments["lr"]) for t in drive.ask(9)) == lrs[:3]


def test_katibs_own_state_settings_are_read_as_katib_writes_them() -> None:
    # What Katib's service returns after its first bracket (floats as Python prints them).
    katib = {**BASE, "eta": "3.0", "s_max": "2", "r_l": "9.0", "b_l": "27.0", "r": "3.0", "n": "5",
             "current_s": "1", "current_i": "0", "evaluating_trials": "0"}
    drive = Driver(katib)
    new = drive.ask(9)
    assert [(*tag(t), t.assignments["num-epochs"]) for t in new] == [(1, 0, "3")] * 5
    assert {k: drive.settings[k] for k in ("current_s", "current_i", "evaluating_trials", "n", "r", "b_l")} == \
        {"current_s": "1", "current_i": "0", "evaluating_trials": "5", "n": "5", "r": "3.0", "b_l": "27.0"}
    with pytest.raises(SearchSpaceExhausted):
        Driver({**katib, "current_s": "-1"}).ask(1)


def test_the_reply_settings_carry_every_katib_state_name() -> None:
    drive = Driver({"resource_name": "num-epochs", "r_l": "2", "eta": "2"}, parallel=2)
    drive.ask(2)
    assert list(drive.settings) == ["resource_name", "r_l", "eta", "s_max", "b_l", "r", "n", "current_s",
                                    "current_i", "evaluating_trials"]
    assert drive.settings["s_max"] == "1" and drive.settings["b_l"] == "4.0" and drive.settings["r"] == "1.0"


@pytest.mark.parametrize(("settings", "setting", "says"), [
    ({"r_l": "9"}, "resource_name", "required"),
    ({"resource_name": "num-epochs"}, "r_l", "required"),
    ({"resource_name": "epochs", "r_l": "9"}, "resource_name", "lr, momentum, num-epochs"),
    ({"resource_name": "num-epochs", "r_l": "0"}, "r_l", "positive"),
    ({"resource_name": "num-epochs", "r_l": "nine"}, "r_l", "positive"),
    ({"resource_name": "num-epochs", "r_l": "9", "eta": "1"}, "eta", "> 1"),
    ({"resource_name": "num-epochs", "r_l": "9", "current_i": "x"}, "current_i", "integer"),
    ({"resource_name": "num-epochs", "r_l": "9", "r_max": "9"}, "r_max", "allowed settings"),
    # Hostile sizes: a bracket past int32 is refused before anything is computed with it.
    ({"resource_name": "num-epochs", "r_l": "1e308", "eta": "1.0000001"}, "r_l", "more than 2147483647"),
    ({"resource_name": "num-epochs", "r_l": "1e300", "eta": "2"}, "r_l", "int32"),
    # State out of reach of these r_l and eta (e.g. r_l lowered before a resume).
    ({"resource_name": "num-epochs", "r_l": "9", "current_s": "5"}, "current_s", "at most s_max=2"),
    ({"resource_name": "num-epochs", "r_l": "9", "s_max": "4"}, "s_max", "must be 2"),
    ({"resource_name": "num-epochs", "r_l": "9", "current_s": "1", "current_i": "2"}, "current_i", "current_s=1"),
    ({"resource_name": "num-epochs", "r_l": "9", "n": "99999999999"}, "n", "at most"),
])
def test_bad_settings_are_refused_naming_the_setting(settings: dict[str, str], setting: str, says: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        Hyperband().validate(Problem("exp", SPACE, ACC, settings, parallel_trial_count=9))
    assert info.value.setting == setting and says in str(info.value), str(info.value)


@pytest.mark.parametrize(("r_l", "eta", "least"), [("9", "3", 9), ("2", "2", 2), ("1000", "10", 1000),
                                                    ("10", "3", 9), ("9", "0", 9)])
def test_parallel_trial_count_must_hold_the_largest_bracket(r_l: str, eta: str, least: int) -> None:
    settings = {"resource_name": "num-epochs", "r_l": r_l, "eta": eta}
    Hyperband().validate(Problem("exp", SPACE, ACC, settings, parallel_trial_count=least))
    with pytest.raises(InvalidSettings) as info:
        Hyperband().validate(Problem("exp", SPACE, ACC, settings, parallel_trial_count=least - 1))
    assert info.value.setting == "parallelTrialCount" and f"at least {least}" in str(info.value)


def test_nas_spaces_are_refused_naming_nas_config() -> None:
    with pytest.raises(SpaceError) as info:
        Hyperband().validate(Problem("exp", CONTRACT_SPACES["nas_macro"], ACC, {"resource_name": "x", "r_l": "9"}))
    assert info.value.field == "nasConfig"


def test_over_grpc_the_reply_carries_the_state_and_may_be_short() -> None:
    settings = {"resource_name": "num-epochs", "r_l": "9", "eta": "3"}
    with suggestion_stub("hyperband") as stub:
        exp = experiment(SPACE, "hyperband", settings)
        exp.spec.parallel_trial_count = 9
        reply = stub.GetSuggestions(request(exp, 12))
        assert len(reply.parameter_assignments) == 9  # the bracket, not the request
        state = settings_from_proto(reply.algorithm.algorithm_settings)
        assert state["current_s"] == "2" and state["evaluating_trials"] == "9"
        assert all(dict(a.labels) == {BRACKET_LABEL: "2", RUNG_LABEL: "0"} for a in reply.parameter_assignments)
        exp.spec.parallel_trial_count = 3
        with pytest.raises(grpc.RpcError) as info:
            stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "parallelTrialCount" in (info.value.details() or "")
        exp.spec.parallel_trial_count = 9
        del exp.spec.algorithm.algorithm_settings[:]
        for key, value in {**state, "current_s": "-1"}.items():
            exp.spec.algorithm.algorithm_settings.add(name=key, value=value)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetSuggestions(request(exp, 1))
        assert info.value.code() is grpc.StatusCode.OUT_OF_RANGE
