"""Early-stopping rules: the shared stop decision (kubenas.early_stopping) and medianstop's rule."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubenas.api.v1beta1 import api_pb2
from kubenas.early_stopping import (
    Comparison,
    RuleError,
    StopRule,
    StopWatch,
    rule_from_dict,
    rule_from_proto,
    rule_to_dict,
    rule_to_proto,
    rules_met,
)
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings
from suggestion.early_stopping import early_stopping_class, early_stopping_names
from suggestion.early_stopping.base import RulesProblem
from suggestion.early_stopping.medianstop import MedianStop
from suggestion.early_stopping.registry import UnknownEarlyStopping

MAX = Objective(ObjectiveType.MAXIMIZE, "acc")
MIN = Objective(ObjectiveType.MINIMIZE, "loss")


def _pts(metric: str, values: list[float]) -> list[tuple[str, float | str]]:
    return [(metric, v) for v in values]


def test_rule_is_checked_only_from_start_step_on():
    rule = StopRule("acc", 0.5, Comparison.LESS, start_step=3)
    assert not rules_met([rule], MAX, _pts("acc", [0.1, 0.2]))       # below, but only 2 reports
    assert rules_met([rule], MAX, _pts("acc", [0.1, 0.2, 0.3]))      # third report: best 0.3 < 0.5


def test_objective_metric_is_compared_as_best_so_far():
    rule = StopRule("acc", 0.5, Comparison.LESS, start_step=2)
    # one early good step keeps a trial alive although its later values are below the bar
    assert not rules_met([rule], MAX, _pts("acc", [0.6, 0.1, 0.1, 0.1]))
    loss_rule = StopRule("loss", 1.0, Comparison.GREATER, start_step=2)
    assert not rules_met([loss_rule], MIN, _pts("loss", [0.5, 3.0, 3.0]))
    assert rules_met([loss_rule], MIN, _pts("loss", [2.0, 3.0]))


def test_other_metrics_are_compared_as_reported_and_all_rules_must_be_met():
    rules = [StopRule("acc", 0.5, Comparison.LESS, 1), StopRule("epoch", 3, Comparison.EQUAL, 0)]
    watch = StopWatch(rules, MAX)
    assert not watch.feed("acc", 0.2)          # first rule met, second not yet
    assert not watch.feed("epoch", 2)
    assert watch.feed("epoch", 3)              # met rules stay met: now every rule is
    assert watch.feed("acc", 0.99)             # and a stop stays a stop


def test_no_rules_never_stop_and_unrelated_or_text_values_are_ignored():
    assert not rules_met([], MAX, _pts("acc", [0.0] * 10))
    watch = StopWatch([StopRule("acc", 0.5, Comparison.LESS, 1)], MAX)
    assert not watch.feed("loss", 0.0)
    assert not watch.feed_all([("acc", "Genotype(...)")])
    assert not watch.feed("acc", float("nan"))
    assert watch.feed("acc", 0.4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-10, 10), max_size=30), st.floats(-10, 10), st.integers(0, 10))
def test_stop_matches_the_definition(values, threshold, start):
    """Stop iff some report k >= start_step has best-so-far below the threshold (maximize)."""
    rule = StopRule("acc", threshold, Comparison.LESS, start)
    expected = any(max(values[:k]) < threshold for k in range(max(start, 1), len(values) + 1))
    assert rules_met([rule], MAX, _pts("acc", values)) is expected


def test_wire_and_resource_forms_round_trip():
    rule = StopRule("Validation-accuracy", 0.8123456789012345, Comparison.LESS, 4)
    msg = rule_to_proto(rule)
    assert (msg.name, msg.comparison, msg.start_step) == ("Validation-accuracy", api_pb2.LESS, 4)
    assert float(msg.value) == rule.value
    assert rule_from_proto(msg) == rule
    assert rule_to_dict(rule) == {"name": "Validation-accuracy", "value": "0.8123456789012345",
                                  "comparison": "less", "startStep": 4}
    assert rule_from_dict(rule_to_dict(rule)) == rule
    assert rule_from_dict({"name": "a", "value": "1", "comparison": "GREATER"}).comparison is Comparison.GREATER


@pytest.mark.parametrize(("data", "field"), [
    ({"name": "a", "value": "x", "comparison": "less"}, "value"),
    ({"name": "a", "value": "inf", "comparison": "less"}, "value"),
    ({"name": "a", "value": "1", "comparison": "about"}, "comparison"),
    ({"name": "", "value": "1", "comparison": "less"}, "name"),
    ({"name": "a", "value": "1", "comparison": "less", "startStep": -1}, "startStep"),
    ({"name": "a", "value": "1", "comparison": "less", "startStep": "2"}, "startStep"),
])
def test_bad_rules_name_the_field(data, field):
    with pytest.raises(RuleError) as info:
        rule_from_dict(data)
    assert info.value.field == field
    assert field in str(info.value)


def test_unknown_wire_comparison_is_rejected():
    with pytest.raises(RuleError, match="comparison"):
        rule_from_proto(api_pb2.EarlyStoppingRule(name="a", value="1", comparison=api_pb2.UNKNOWN_COMPARISON))


# --- medianstop (pure) -----------------------------------------------------------------------
def _trials(n: int, condition: TrialCondition = TrialCondition.SUCCEEDED) -> list[TrialRecord]:
    return [TrialRecord(name=f"t{i}", assignments={}, condition=condition) for i in range(n)]


def test_registry_knows_medianstop_and_rejects_others_with_the_list():
    assert early_stopping_names() == ["medianstop"]
    assert early_stopping_class("medianstop") is MedianStop
    with pytest.raises(UnknownEarlyStopping) as info:
        early_stopping_class("truncation")
    assert "'truncation'" in str(info.value) and "medianstop" in str(info.value)


def test_medianstop_defaults_are_katibs():
    assert dict(MedianStop().parse({})) == {"min_trials_required": 3, "start_step": 4}


@pytest.mark.parametrize(("raw", "setting"), [
    ({"min_trials_required": "0"}, "min_trials_required"),
    ({"min_trials_required": "two"}, "min_trials_required"),
    ({"start_step": "0"}, "start_step"),
    ({"start_step": "1.5"}, "start_step"),
    ({"patience": "3"}, "patience"),
])
def test_medianstop_bad_settings_name_setting_value_and_range(raw, setting):
    with pytest.raises(InvalidSettings) as info:
        MedianStop().parse(raw)
    assert info.value.setting == setting
    assert repr(raw[setting]) in str(info.value)
    assert ">= 1" in str(info.value) or "allowed settings: min_trials_required, start_step" in str(info.value)


def test_medianstop_takes_a_true_median_of_first_start_step_averages():
    logs = {"t0": [0.1, 0.3, 0.9, 0.9], "t1": [0.5, 0.5, 0.0], "t2": [0.8, 0.9, 1.0], "t3": [0.2]}
    asked = []

    def fetch(trial: str, metric: str) -> list[float]:
        asked.append((trial, metric))
        return logs[trial]

    problem = RulesProblem("e", MAX, {"start_step": "2", "min_trials_required": "3"},
                           [*_trials(4), TrialRecord("r", {}, TrialCondition.RUNNING),
                            TrialRecord("s", {}, TrialCondition.EARLY_STOPPED)])
    (rule,) = MedianStop().rules(problem, fetch)
    averages = [0.2, 0.5, 0.85, 0.2]
    assert rule == StopRule("acc", statistics.median(averages), Comparison.LESS, 2)
    assert rule.value == pytest.approx(0.35)
    assert rule.value != pytest.approx(sum(averages) / 4)  # Katib's mean would be 0.4375
    assert sorted(t for t, _ in asked) == ["t0", "t1", "t2", "t3"]  # running/early-stopped are not read


def test_medianstop_gives_no_rule_before_enough_trials_succeeded():
    problem = RulesProblem("e", MIN, {"min_trials_required": "3"}, [*_trials(2), *_trials(5, TrialCondition.FAILED)])
    assert MedianStop().rules(problem, lambda t, m: [1.0]) == []


def test_medianstop_for_minimize_compares_greater_and_skips_empty_logs():
    problem = RulesProblem("e", MIN, {"min_trials_required": "2", "start_step": "1"}, _trials(3))
    logs = {"t0": [3.0], "t1": [], "t2": [1.0]}
    (rule,) = MedianStop().rules(problem, lambda t, m: logs[t])
    assert (rule.comparison, rule.value, rule.start_step) == (Comparison.GREATER, 2.0, 1)
    logs["t2"] = []
    assert MedianStop().rules(problem, lambda t, m: logs[t]) == []  # one trial with values < 2 required
