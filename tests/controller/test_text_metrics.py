"""Text-valued objective metrics (Katib's DARTS `Best-Genotype`) through the controller:
collection, observation, trial condition, optimal trial, store, results, wire."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from controller.collector import FileCollector, StdoutCollector, observation_from_log
from controller.dbmanager import DBManagerClient, make_dbmanager_server
from controller.logic import experiment_outcome, optimal_trial, trial_condition
from controller.report import record_of, results_document, results_table
from controller.store import MetricLog, TrialRow
from controller.store_sqlite import SQLiteStore
from kubenas.genotype import Genotype
from kubenas.metrics import MetricPoint
from kubenas.proto_convert import trial_from_proto, trial_to_proto
from kubenas.trials import (
    MetricStrategy,
    Objective,
    ObjectiveType,
    TrialCondition,
    TrialRecord,
    observe,
)

C = TrialCondition
FILTER = [r"([\w-]+)=(Genotype.*)"]
GENO_A = ("Genotype(normal=[('max_pooling_3x3', 0), ('skip_connection', 1)], normal_concat=range(2, 3), "
          "reduce=[('max_pooling_3x3', 0), ('max_pooling_3x3', 1)], reduce_concat=range(2, 3))")
GENO_B = GENO_A.replace("skip_connection", "max_pooling_3x3")
DARTS = Objective(ObjectiveType.MAXIMIZE, "Best-Genotype", goal=0.5)
NUMERIC = Objective(ObjectiveType.MAXIMIZE, "acc", goal=0.9)


# --- collection --------------------------------------------------------------------------------
def test_stdout_collector_keeps_the_genotype_only_with_a_metricsformat_filter() -> None:
    out = f"epoch 1\nCurrent-Genotype={GENO_B}\nBest-Genotype={GENO_A}\n"
    with_filter = StdoutCollector(DARTS.metric_names, FILTER)
    points = with_filter.feed(out) + with_filter.close()
    assert [(p.name, p.value) for p in points] == [("Best-Genotype", GENO_A)]
    default = StdoutCollector(DARTS.metric_names, None)
    assert default.feed(out) + default.close() == []


def test_file_collector_text_format_keeps_text_json_format_does_not(tmp_path: Path) -> None:
    text_file = tmp_path / "m.log"
    text_file.write_text(f"Best-Genotype={GENO_A}\n")
    assert [p.value for p in FileCollector(text_file, DARTS.metric_names, FILTER).close()] == [GENO_A]
    json_file = tmp_path / "m.json"
    json_file.write_text(json.dumps({"Best-Genotype": GENO_A, "acc": 0.5}) + "\n")
    points = FileCollector(json_file, ["Best-Genotype", "acc"], FILTER, format="JSON").close()
    assert [(p.name, p.value) for p in points] == [("acc", 0.5)]


# --- observation and condition -----------------------------------------------------------------
def test_observe_takes_the_latest_text_and_leaves_numbers_to_their_strategy() -> None:
    objective = Objective(ObjectiveType.MAXIMIZE, "Best-Genotype", additional_metric_names=("acc",),
                          strategies={"acc": MetricStrategy.MIN})
    seen = observe(objective, [("Best-Genotype", GENO_A), ("acc", 0.7), ("Best-Genotype", GENO_B), ("acc", 0.2),
                               ("acc", 0.4)])
    assert seen == {"Best-Genotype": GENO_B, "acc": 0.2}
    # a number after a text (or a text after a number) is simply the latest one
    assert observe(objective, [("acc", 0.1), ("acc", "n/a")]) == {"acc": "n/a"}
    assert observe(objective, [("acc", "n/a"), ("acc", 0.3)]) == {"acc": 0.3}


def test_observation_from_store_logs_keeps_text_only_when_asked_and_never_unavailable() -> None:
    logs = [MetricLog("Best-Genotype", GENO_A, "2026-01-01T00:00:01Z"),
            MetricLog("Best-Genotype", "unavailable", "2026-01-01T00:00:02Z")]
    assert observation_from_log(DARTS, logs, keep_text=True) == {"Best-Genotype": GENO_A}
    assert observation_from_log(DARTS, logs) == {}
    assert observation_from_log(DARTS, [MetricPoint("Best-Genotype", GENO_B, "t")]) == {"Best-Genotype": GENO_B}


def test_a_text_objective_observed_means_succeeded() -> None:
    assert trial_condition(0, {"Best-Genotype": GENO_A}, DARTS) is C.SUCCEEDED
    assert trial_condition(0, {}, DARTS) is C.METRICS_UNAVAILABLE
    assert trial_condition(1, {"Best-Genotype": GENO_A}, DARTS) is C.FAILED


# --- optimal trial and goal --------------------------------------------------------------------
def _text_record(name: str, text: str, completed: str | None, condition: C = C.SUCCEEDED) -> TrialRecord:
    return TrialRecord.from_observation(name, {}, condition, {"Best-Genotype": text}, completion_time=completed)


def test_the_optimal_text_trial_is_the_most_recently_completed_succeeded_one() -> None:
    trials = [
        _text_record("t-late", GENO_B, "2026-01-01T10:00:05Z"),
        _text_record("t-early", GENO_A, "2026-01-01T10:00:01.5Z"),
        _text_record("t-killed", GENO_A, "2026-01-01T11:00:00Z", C.KILLED),
        _text_record("t-offset", GENO_A, "2026-01-01T11:00:00+02:00"),  # 09:00Z: earlier than t-late
    ]
    assert optimal_trial(DARTS, trials).name == "t-late"
    assert optimal_trial(DARTS, [*trials, _text_record("t-newest", GENO_A, "2026-01-01T10:00:06Z")]).name == "t-newest"
    # no completion time at all: the later one in the list
    assert optimal_trial(DARTS, [_text_record("a", GENO_A, None), _text_record("b", GENO_B, None)]).name == "b"


def test_a_text_objective_never_reaches_a_goal_but_the_trial_budget_ends_the_experiment() -> None:
    trials = [_text_record("t", GENO_A, "2026-01-01T10:00:05Z")]
    outcome = experiment_outcome(DARTS, max_trials=1, max_failed=None, trials=trials)
    assert outcome is not None and outcome.succeeded
    assert outcome.reason.value == "ExperimentMaxTrialsReached"
    assert experiment_outcome(DARTS, max_trials=2, max_failed=None, trials=trials) is None


def test_numeric_objectives_win_over_text_and_behave_as_before() -> None:
    trials = [
        TrialRecord.from_observation("n1", {}, C.SUCCEEDED, {"acc": 0.5}, completion_time="2026-01-01T00:00:01Z"),
        TrialRecord.from_observation("txt", {}, C.SUCCEEDED, {"acc": "broken"},
                                     completion_time="2026-01-01T00:00:09Z"),
        TrialRecord.from_observation("n2", {}, C.SUCCEEDED, {"acc": 0.95}, completion_time="2026-01-01T00:00:02Z"),
    ]
    assert optimal_trial(NUMERIC, trials).name == "n2"
    assert experiment_outcome(NUMERIC, None, None, trials).reason.value == "ExperimentGoalReached"


# --- store, results, wire ----------------------------------------------------------------------
def test_sqlite_keeps_text_logs_and_text_observations(tmp_path: Path) -> None:
    row = TrialRow("e-1", {"x": "1"}, condition=C.SUCCEEDED, observation={"Best-Genotype": GENO_A, "acc": 0.5},
                   completion_time="2026-01-01T00:00:01Z")
    with SQLiteStore(tmp_path / "kubenas.db") as store:
        store.report("e-1", [MetricLog("Best-Genotype", GENO_A, "2026-01-01T00:00:01Z")])
        store.upsert_trial("e", row)
    with SQLiteStore(tmp_path / "kubenas.db") as store:  # from the file, not memory
        assert [m.value for m in store.get("e-1")] == [GENO_A]
        [loaded] = store.list_trials("e")
    assert loaded.observation == {"Best-Genotype": GENO_A, "acc": 0.5}
    assert isinstance(loaded.observation["acc"], float)


def test_dbmanager_round_trips_a_text_value_over_grpc(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "kubenas.db") as store:
        server, port = make_dbmanager_server(store, port=0)
        try:
            with DBManagerClient(f"127.0.0.1:{port}") as client:
                client.report("t", [("Best-Genotype", GENO_A, "2026-01-01T00:00:01Z")])
                [got] = client.get("t", "Best-Genotype")
        finally:
            server.stop(None).wait()
    assert got.value == GENO_A
    assert observation_from_log(DARTS, [got], keep_text=True) == {"Best-Genotype": GENO_A}


def test_results_document_and_table_carry_the_text(tmp_path: Path) -> None:
    rows = [TrialRow("e-a", {}, condition=C.SUCCEEDED, observation={"Best-Genotype": GENO_A},
                     completion_time="2026-01-01T00:00:01Z"),
            TrialRow("e-b", {}, condition=C.SUCCEEDED, observation={"Best-Genotype": GENO_B},
                     completion_time="2026-01-01T00:00:02Z")]
    doc = json.loads(json.dumps(results_document("e", "darts", DARTS, None, rows)))
    assert doc["best_trial"]["name"] == "e-b"
    assert doc["best_trial"]["objective"] == GENO_B
    assert [t["observation"]["Best-Genotype"] for t in doc["trials"]] == [GENO_A, GENO_B]
    assert Genotype.parse_katib(doc["best_trial"]["objective"]) == Genotype.parse_katib(GENO_B)
    console = Console(file=io.StringIO(), width=300)
    console.print(results_table(DARTS, rows, "e-b"))
    shown = console.file.getvalue()
    assert "Genotype(normal=[('max_pooling_3x3'" in shown  # brackets printed, not taken as markup


def test_trial_to_proto_passes_text_and_trial_from_proto_drops_it_for_algorithms() -> None:
    row = TrialRow("e-a", {"x": "1"}, condition=C.SUCCEEDED, observation={"Best-Genotype": GENO_A, "acc": 0.5})
    record = record_of(row)
    assert record.metrics == {"acc": 0.5} and record.texts == {"Best-Genotype": GENO_A}
    objective = Objective(ObjectiveType.MAXIMIZE, "Best-Genotype", additional_metric_names=("acc",))
    msg = trial_to_proto(record, objective)
    assert {m.name: m.value for m in msg.status.observation.metrics} == {"acc": "0.5", "Best-Genotype": GENO_A}
    back = trial_from_proto(msg, objective)
    assert back.metrics == {"acc": 0.5} and back.texts == {}


@pytest.mark.parametrize("stamp", ["", "yesterday", None])
def test_a_bad_completion_time_counts_as_earliest(stamp: str | None) -> None:
    trials = [_text_record("good", GENO_A, "2026-01-01T00:00:01Z"), _text_record("bad", GENO_B, stamp)]
    assert optimal_trial(DARTS, trials).name == "good"
