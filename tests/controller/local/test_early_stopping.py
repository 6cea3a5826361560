"""controller.local.early_stopping against the real EarlyStopping service (medianstop) and a
real DBManager over real SQLite; trial processes are fakes."""

from __future__ import annotations

import queue
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.dbmanager import make_dbmanager_server
from controller.grpc_clients import EarlyStoppingClient
from controller.local.early_stopping import EarlyStopping
from controller.local.processes import LaunchSpec, TrialEvent
from controller.local.running_trial import RunningTrial
from controller.report import record_of
from controller.store import MetricLog, ObservationStore, TrialRow, open_store
from kubenas.trials import TrialCondition
from suggestion.service import make_server
from tests.controller.local.parts import FakeChildProcess, experiment

MEDIANSTOP = {"earlyStopping": {"algorithmName": "medianstop", "algorithmSettings": [
    {"name": "min_trials_required", "value": "1"}, {"name": "start_step", "value": "2"}]}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObservationStore]:
    with open_store(str(tmp_path / "kubenas.db")) as opened:
        yield opened


@pytest.fixture
def client(store: ObservationStore) -> Iterator[EarlyStoppingClient]:
    server, port = make_server("random")
    server.start()
    db_server, db_port = make_dbmanager_server(store, "127.0.0.1", 0)  # started already
    stopper = EarlyStoppingClient(f"127.0.0.1:{port}", f"127.0.0.1:{db_port}", timeout_s=30.0)
    yield stopper
    stopper.close()
    db_server.stop(None).wait()
    server.stop(None).wait()


def _log(store: ObservationStore, trial: str, *losses: float, second: int = 0) -> None:
    store.report(trial, [MetricLog("loss", str(v), f"2026-01-01T00:00:{second + i:02d}Z") for i, v in enumerate(losses)])


def _running(name: str, tmp_path: Path) -> tuple[RunningTrial, FakeChildProcess]:
    spec = LaunchSpec(argv=("python",), env={}, cwd=str(tmp_path), log_path=tmp_path / "log")
    process = FakeChildProcess(name, spec, queue.Queue[TrialEvent]())
    row = TrialRow(name=name, assignments={}, condition=TrialCondition.RUNNING)
    return RunningTrial(process, row, None, None, None), process  # type: ignore[arg-type]


def _done(store: ObservationStore) -> list[Any]:
    _log(store, "done", 0.5, 0.3, 0.2)
    row = TrialRow(name="done", assignments={"lr": "0.05"}, condition=TrialCondition.SUCCEEDED,
                   start_time="2026-01-01T00:00:00Z", completion_time="2026-01-01T00:00:03Z",
                   observation={"loss": 0.2})
    return [record_of(row)]


def test_new_rules_judge_what_running_trials_reported_and_then_pushed(store: ObservationStore, tmp_path: Path,
                                                                      client: EarlyStoppingClient) -> None:
    exp = experiment(extra_spec=MEDIANSTOP)
    notes: list[str] = []
    stopping = EarlyStopping(client, exp.to_proto(), exp.objective(), store, note=notes.append)
    assert stopping.stale and stopping.watch() is None
    bad, bad_process = _running("bad", tmp_path)
    good, good_process = _running("good", tmp_path)
    pushed, pushed_process = _running("pushed", tmp_path)
    _log(store, "bad", 9.0, 8.0)
    _log(store, "good", 0.1, 0.1)
    stopping.refresh(_done(store), [bad, good, pushed])
    assert not stopping.stale and stopping.rules and stopping.rules[0].metric == "loss"
    assert notes[-1].startswith("early stopping rules: loss > ")
    assert bad.early_stop is not None and bad_process.signals == [signal.SIGTERM]
    assert good.early_stop is None and good_process.signals == [] and good.pushed == 2
    assert pushed.watch is not None and pushed.pushed == 0
    _log(store, "pushed", 7.0, 7.0, second=10)  # a Push trial's reports, straight to the store
    stopping.watch_pushed([bad, good, pushed])
    assert pushed.early_stop is not None and pushed.pushed == 2 and pushed_process.signals == [signal.SIGTERM]
    stopping.refresh(_done(store)[:0], [good])  # not stale: nothing asked
    stopping.trial_completed()
    assert stopping.stale


def test_a_service_that_fails_keeps_the_previous_rules(store: ObservationStore, tmp_path: Path) -> None:
    exp = experiment(extra_spec=MEDIANSTOP)
    lost = EarlyStoppingClient("127.0.0.1:9", "127.0.0.1:9", timeout_s=2.0)  # nothing listens there
    notes: list[str] = []
    stopping = EarlyStopping(lost, exp.to_proto(), exp.objective(), store, note=notes.append)
    try:
        stopping.refresh([], [])
    finally:
        lost.close()
    assert stopping.rules == () and not stopping.stale
    assert notes[0].startswith("early stopping rules unavailable (") and notes[0].endswith("keeping the previous ones")


def test_without_spec_early_stopping_nothing_is_asked(store: ObservationStore, tmp_path: Path) -> None:
    exp = experiment()
    stopping = EarlyStopping(None, exp.to_proto(), exp.objective(), store)
    trial, _ = _running("t", tmp_path)
    stopping.refresh([], [trial])
    stopping.trial_completed()
    assert not stopping.stale and stopping.watch() is None and trial.watch is None
