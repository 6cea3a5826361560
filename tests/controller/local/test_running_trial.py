"""controller.local.running_trial: stop, kill, end-of-output and message decisions on one trial."""

from __future__ import annotations

import queue
import signal
import time
from pathlib import Path

import pytest

from controller.local.processes import LaunchSpec, TrialEvent
from controller.local.running_trial import (
    EOF_GRACE_S,
    EOF_LIMIT_S,
    STOP_GRACE_S,
    RunningTrial,
    describe_rule,
)
from controller.store import TrialRow
from kubenas.early_stopping import Comparison, StopRule, StopWatch
from kubenas.trials import Objective, ObjectiveType, TrialCondition
from tests.controller.local.parts import FakeChildProcess

LOSS = Objective(ObjectiveType.MINIMIZE, "loss")
RULE = StopRule("loss", 0.5, Comparison.GREATER, start_step=2)


def _trial(tmp_path: Path) -> tuple[RunningTrial, FakeChildProcess]:
    spec = LaunchSpec(argv=("python",), env={}, cwd=str(tmp_path), log_path=tmp_path / "stdout.log")
    process = FakeChildProcess("t1", spec, queue.Queue[TrialEvent]())
    row = TrialRow(name="t1", assignments={}, condition=TrialCondition.RUNNING)
    return RunningTrial(process, row, None, None, None), process  # type: ignore[arg-type]


def test_a_stop_is_sigterm_once_then_sigkill_when_overdue(tmp_path: Path) -> None:
    trial, process = _trial(tmp_path)
    trial.request_stop()
    trial.request_stop()
    assert process.signals == [signal.SIGTERM] and trial.kill_at is not None
    trial.kill_if_overdue(time.monotonic())
    assert process.signals == [signal.SIGTERM]
    trial.kill_if_overdue(time.monotonic() + STOP_GRACE_S + 1)
    assert process.signals == [signal.SIGTERM, signal.SIGKILL] and trial.kill_at is None


def test_the_watch_stops_it_early_once_naming_the_rules(tmp_path: Path) -> None:
    trial, process = _trial(tmp_path)
    trial.watch = StopWatch((RULE,), LOSS)
    trial.judge([("loss", 0.9)])
    assert trial.early_stop is None  # start_step 2: one report is not enough
    trial.judge([("loss", 0.8)])
    assert trial.early_stop == "stopped early: loss > 0.5 from report 2" and process.signals == [signal.SIGTERM]
    trial.judge([("loss", 0.9)])
    assert process.signals == [signal.SIGTERM]


def test_a_trial_that_exited_keeps_its_own_outcome(tmp_path: Path) -> None:
    trial, process = _trial(tmp_path)
    process.exit(0)
    trial.watch = StopWatch((StopRule("loss", 0.5, Comparison.GREATER),), LOSS)
    trial.judge([("loss", 0.9)])
    trial.collection_failed("cannot read it")
    assert trial.early_stop is None and process.signals == []
    assert trial.collect_error == "cannot read it"


def test_its_end_waits_for_queued_output_but_not_forever(tmp_path: Path) -> None:
    trial, process = _trial(tmp_path)
    now = time.monotonic()
    assert not trial.ended(now)
    process.exit(0)
    process.emit("loss=1\n")  # read by its reader, not yet handled
    assert not trial.ended(now) and trial.exited_at == now
    assert not trial.ended(now + EOF_GRACE_S + 1)
    assert trial.ended(now + EOF_LIMIT_S + 1)  # a leftover child that keeps printing
    trial.handled = process.posted
    assert trial.ended(now + EOF_GRACE_S + 1)
    trial.eof = True
    assert trial.ended(now)


@pytest.mark.parametrize(("condition", "code", "expected"), [
    (TrialCondition.KILLED, -15, "stopped by kubenas run (interrupted); rerun on --resume"),
    (TrialCondition.FAILED, -9, "killed by signal SIGKILL"),
    (TrialCondition.FAILED, -200, "killed by signal 200"),
    (TrialCondition.FAILED, 3, "exited with status 3; see {log}"),
    (TrialCondition.METRICS_UNAVAILABLE, 0, "objective metric 'loss' was never reported"),
    (TrialCondition.EARLY_STOPPED, -15, "stopped early"),
    (TrialCondition.SUCCEEDED, 0, ""),
])
def test_messages(tmp_path: Path, condition: TrialCondition, code: int, expected: str) -> None:
    trial, process = _trial(tmp_path)
    assert trial.message(condition, code, LOSS) == expected.format(log=process.spec.log_path)


def test_messages_name_an_unparsed_value_and_a_collection_failure(tmp_path: Path) -> None:
    trial, _ = _trial(tmp_path)
    trial.unparsed.append("loss=nan-ish")
    assert trial.message(TrialCondition.METRICS_UNAVAILABLE, 0, LOSS) == (
        "objective metric 'loss' was never reported; value not a number in: 'loss=nan-ish'")
    trial.collect_error = "metrics file is a FIFO\x1b[2J"
    assert trial.message(TrialCondition.FAILED, 1, LOSS) == "metrics file is a FIFO\\x1b[2J"


def test_rules_are_described_as_the_live_view_shows_them() -> None:
    assert describe_rule(StopRule("acc", 0.6, Comparison.LESS, start_step=4)) == "acc < 0.6 from report 4"
    assert describe_rule(StopRule("acc", 0.6, Comparison.EQUAL)) == "acc == 0.6 from report 1"
