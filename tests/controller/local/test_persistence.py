"""controller.local.persistence: written through to a real SQLite store; a resume takes it back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.local.persistence import TrialLedger
from controller.store import MetricLog, ObservationStore, TrialRow, open_store
from kubenas.trials import TrialCondition


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObservationStore]:
    with open_store(str(tmp_path / "kubenas.db")) as opened:
        yield opened


def _row(name: str, condition: TrialCondition) -> TrialRow:
    return TrialRow(name=name, assignments={"lr": "0.1"}, condition=condition, seed=7, workdir=f"/w/{name}",
                    observation={"loss": 0.5} if condition is TrialCondition.SUCCEEDED else {})


def test_each_save_reaches_the_store_and_pending_keeps_creation_order(store: ObservationStore,
                                                                      tmp_path: Path) -> None:
    ledger = TrialLedger(store, "exp", tmp_path)
    for name, condition in [("b", TrialCondition.CREATED), ("a", TrialCondition.RUNNING),
                            ("c", TrialCondition.CREATED)]:
        ledger.save(_row(name, condition))
    ledger.save(_row("a", TrialCondition.SUCCEEDED))
    assert [r.name for r in ledger.pending()] == ["b", "c"]
    assert {r.name: r.condition for r in store.list_trials("exp")} == {
        "b": TrialCondition.CREATED, "a": TrialCondition.SUCCEEDED, "c": TrialCondition.CREATED}


def test_metrics_files_and_pids_are_remembered_per_experiment(store: ObservationStore, tmp_path: Path) -> None:
    ledger, other = TrialLedger(store, "exp", tmp_path), TrialLedger(store, "other", tmp_path)
    path = tmp_path / "metrics" / "t1.log"
    assert not ledger.wrote_metrics_file(path)
    ledger.remember_metrics_file(path, "t1")
    ledger.remember_pid("t1", 4242)
    assert ledger.wrote_metrics_file(path) and not other.wrote_metrics_file(path)
    assert store.get_meta("exp", "trial-pid/t1") == "4242"


def test_reload_reruns_unfinished_trials_and_keeps_their_output(store: ObservationStore, tmp_path: Path) -> None:
    first = TrialLedger(store, "exp", tmp_path)
    for name, condition in [("done", TrialCondition.SUCCEEDED), ("running", TrialCondition.RUNNING),
                            ("killed", TrialCondition.KILLED), ("new", TrialCondition.CREATED)]:
        first.save(_row(name, condition))
    store.report("running", [MetricLog("loss", 0.9, "2026-01-01T00:00:00Z")])
    first.remember_pid("running", 2 ** 22 + 1)  # no such process: nothing is stopped
    logs = first.trial_dir("running")
    logs.mkdir(parents=True)
    (logs / "stdout.log").write_text("first run\n")
    (logs / "stdout.log.1").write_text("its latest part\n")
    (logs / "stdout.interrupted.log").write_text("an earlier interruption\n")

    again = TrialLedger(store, "exp", tmp_path)
    assert again.reload() == 3
    assert {n: r.condition for n, r in again.rows.items()} == {
        "done": TrialCondition.SUCCEEDED, "running": TrialCondition.CREATED, "killed": TrialCondition.CREATED,
        "new": TrialCondition.CREATED}
    assert again.rows["running"].seed == 7 and again.rows["running"].assignments == {"lr": "0.1"}
    assert again.rows["done"].observation == {"loss": 0.5}
    assert store.get("running") == []  # its metrics start afresh
    assert not (logs / "stdout.log").exists()
    assert (logs / "stdout.interrupted.log").read_text() == "an earlier interruption\n"
    assert (logs / "stdout.interrupted.2.log").read_text() == "first run\n"
    assert (logs / "stdout.interrupted.2.log.1").read_text() == "its latest part\n"
    assert [r.condition for r in store.list_trials("exp")].count(TrialCondition.CREATED) == 3
