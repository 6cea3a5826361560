"""controller.local.runner: the whole loop with a real in-process suggestion server and real
SQLite; only the trials' child processes are fakes (FakeChildProcess)."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from controller.grpc_clients import SuggestionClient
from controller.local.errors import EXIT_INTERRUPTED, EXIT_SUCCEEDED
from controller.local.plan import plan_trials
from controller.local.processes import GpuPool, LaunchSpec, TrialEvent
from controller.local.runner import LocalRunner
from controller.local.setup import RunServices, RunSetup
from controller.store import ObservationStore, open_store
from kubenas.trials import TrialCondition
from suggestion.service import make_server
from tests.controller.local.parts import FakeChildProcess, experiment


@pytest.fixture
def suggestion() -> Iterator[SuggestionClient]:
    server, port = make_server("random")
    server.start()
    client = SuggestionClient(f"127.0.0.1:{port}", timeout_s=30.0)
    yield client
    client.close()
    server.stop(None).wait()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ObservationStore]:
    (tmp_path / "work").mkdir()
    with open_store(str(tmp_path / "work" / "kubenas.db")) as opened:
        yield opened


class Children:
    """Starts fake children that print their loss and exit 0, or (`hang`) run until signalled;
    `interrupt_at`: the start that sends this process a SIGINT, as a Ctrl-C would."""

    def __init__(self, hang: bool = False, interrupt_at: int | None = None) -> None:
        self.hang, self.interrupt_at = hang, interrupt_at
        self.started: list[FakeChildProcess] = []

    def __call__(self, name: str, spec: LaunchSpec, events: queue.Queue[TrialEvent]) -> FakeChildProcess:
        child = FakeChildProcess(name, spec, events, obeys_signals=True)
        self.started.append(child)
        lr = spec.argv[-1].removeprefix("--lr=")
        child.emit(f"epoch 1\nloss={lr}\n")
        if not self.hang:
            child.exit(0)
            child.end_output()
        if len(self.started) == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        return child


def _runner(tmp_path: Path, store: ObservationStore, client: SuggestionClient, children: Children,
            **changes: Any) -> tuple[LocalRunner, io.StringIO]:
    exp = experiment(**changes)
    setup = RunSetup(experiment=exp, plan=plan_trials(exp), proto=exp.to_proto(), workdir=tmp_path / "work",
                     file=tmp_path / "unit.yaml", cwd=str(tmp_path), parallel=exp.parallel_trial_count)
    out = io.StringIO()
    runner = LocalRunner(setup, RunServices(suggestion=client), store, GpuPool([]),
                         Console(file=out, width=200, highlight=False), start_process=children)
    return runner, out


def test_a_run_goes_to_max_trials_and_reports_the_best(tmp_path: Path, store: ObservationStore,
                                                       suggestion: SuggestionClient) -> None:
    children = Children()
    runner, out = _runner(tmp_path, store, suggestion, children, max_trials=3, parallel=2,
                          settings={"random_state": "4"})
    assert runner.run(resume=False) == EXIT_SUCCEEDED
    trials = store.list_trials("unit")
    assert len(trials) == 3 == len(children.started)
    assert all(t.condition is TrialCondition.SUCCEEDED and t.seed == 4 for t in trials)
    assert all(t.observation == {"loss": float(t.assignments["lr"])} for t in trials)
    best = min(trials, key=lambda t: t.observation["loss"])
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert results["status"] == "Succeeded" and results["counts"]["succeeded"] == 3
    assert results["best_trial"]["name"] == best.name
    text = out.getvalue()
    assert "experiment unit Succeeded (ExperimentMaxTrialsReached)" in text
    assert f"best trial {best.name}: loss=" in text


def test_ctrl_c_kills_running_trials_and_resume_reruns_them(tmp_path: Path, store: ObservationStore,
                                                          suggestion: SuggestionClient) -> None:
    children = Children(hang=True, interrupt_at=2)
    runner, out = _runner(tmp_path, store, suggestion, children, max_trials=3, parallel=2)
    assert runner.run(resume=False) == EXIT_INTERRUPTED
    assert f"interrupted; resume with: kubenas run {tmp_path / 'unit.yaml'} --workdir {tmp_path / 'work'} --resume" \
        in out.getvalue()
    killed = store.list_trials("unit")
    assert [t.condition for t in killed] == [TrialCondition.KILLED] * 2
    assert all(c.signals[0] == signal.SIGTERM for c in children.started)
    assert all(t.message == "stopped by kubenas run (interrupted); rerun on --resume" for t in killed)
    assert json.loads((tmp_path / "work" / "results.json").read_text())["status"] == "Interrupted"

    again = Children()
    resumed, out = _runner(tmp_path, store, suggestion, again, max_trials=3, parallel=2)
    assert resumed.run(resume=True) == EXIT_SUCCEEDED
    assert "resuming unit: 0 finished trials kept, 2 to run again" in out.getvalue()
    trials = {t.name: t for t in store.list_trials("unit")}
    assert len(trials) == 3 and all(t.condition is TrialCondition.SUCCEEDED for t in trials.values())
    assert {t.name for t in killed} <= set(trials)
    assert [c.name for c in again.started][:2] == [t.name for t in killed]
