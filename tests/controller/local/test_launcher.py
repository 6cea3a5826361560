"""controller.local.launcher: command, env, GPU and metrics file of a trial; its process is a fake."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from controller.local.errors import RunError
from controller.local.launcher import TrialLauncher
from controller.local.persistence import TrialLedger
from controller.local.plan import plan_trials
from controller.local.processes import GpuPool, LaunchError, LaunchSpec, TrialEvent
from controller.store import TrialRow, open_store
from kubenas.trials import TrialCondition
from tests.controller.local.parts import CONTAINER, FakeChildProcess, experiment


def _file(tmp_path: Path, name: str = "${trialSpec.Name}") -> dict[str, Any]:
    """A File collector of metrics/<name>.log under tmp_path (Katib wants an absolute path)."""
    return {"collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": f"{tmp_path}/metrics/{name}.log", "kind": "File"}}}


class Starts:
    """The process starter handed to the launcher: records each spec, starts a fake child."""

    def __init__(self, fail: str | None = None) -> None:
        self.specs: list[LaunchSpec] = []
        self.fail = fail

    def __call__(self, name: str, spec: LaunchSpec, events: queue.Queue[TrialEvent]) -> FakeChildProcess:
        self.specs.append(spec)
        if self.fail is not None:
            raise LaunchError(self.fail)
        return FakeChildProcess(name, spec, events, pid=1000 + len(self.specs))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[TrialLedger]:
    with open_store(str(tmp_path / "kubenas.db")) as store:
        yield TrialLedger(store, "unit", tmp_path / "work")


def _launcher(ledger: TrialLedger, tmp_path: Path, starts: Starts, gpus: tuple[str, ...] = (),
              db_address: str | None = None, **changes: Any) -> TrialLauncher:
    exp = experiment(**changes)
    return TrialLauncher(exp, plan_trials(exp), ledger, GpuPool(gpus), queue.Queue(), cwd=str(tmp_path),
                         base_env={"PATH": "/bin", "KATIB_TRIAL_NAME": "inherited"}, db_address=db_address,
                         start=starts)


def _row(name: str, lr: str = "0.05") -> TrialRow:
    return TrialRow(name=name, assignments={"lr": lr}, condition=TrialCondition.CREATED)


def test_a_trial_starts_with_its_values_its_name_and_one_gpu(ledger: TrialLedger, tmp_path: Path) -> None:
    starts = Starts()
    container = {**CONTAINER, "env": [{"name": "NAME", "value": "${trialSpec.Name}"}]}
    launcher = _launcher(ledger, tmp_path, starts, gpus=("3",), db_address="127.0.0.1:9", container=container)
    assert launcher.can_start()
    launch = launcher.launch(_row("unit-a"))
    assert launch.process is not None and launch.gpu == "3" and launch.metrics_file is None
    assert launch.row.condition is TrialCondition.RUNNING and launch.row.start_time
    spec = starts.specs[0]
    assert spec.argv == ("python", "train.py", "--lr=0.05")
    assert spec.env == {"PATH": "/bin", "NAME": "unit-a", "KATIB_TRIAL_NAME": "unit-a", "CUDA_VISIBLE_DEVICES": "3",
                        "KATIB_DB_MANAGER_ADDRESS": "127.0.0.1:9"}
    assert spec.cwd == str(tmp_path) and spec.log_path == ledger.workdir / "trials" / "unit-a" / "stdout.log"
    assert ledger.store.get_meta("unit", "trial-pid/unit-a") == "1001"
    assert not launcher.can_start()  # its only GPU is taken


def test_a_command_that_cannot_start_fails_only_its_trial(ledger: TrialLedger, tmp_path: Path) -> None:
    launcher = _launcher(ledger, tmp_path, Starts(fail="command not found: python"), gpus=("0",))
    launch = launcher.launch(_row("unit-a"))
    assert launch.process is None and launch.gpu == "0"
    assert launch.row.condition is TrialCondition.FAILED and launch.row.message == "command not found: python"
    assert launch.row.duration_s == 0.0 and launch.row.start_time == launch.row.completion_time
    assert launcher.can_start()  # the GPU is free again


def test_the_metrics_file_is_made_ready_and_remembered(ledger: TrialLedger, tmp_path: Path) -> None:
    launcher = _launcher(ledger, tmp_path, Starts(), collector=_file(tmp_path))
    launch = launcher.launch(_row("unit-a"))
    path = tmp_path / "metrics" / "unit-a.log"
    assert launch.metrics_file == path and path.parent.is_dir() and ledger.wrote_metrics_file(path)
    path.write_text("loss=1\n")  # what the trial wrote; a rerun of the trial (--resume) starts clean
    launcher.launch(_row("unit-a"))
    assert not path.exists()


def test_a_metrics_file_kubenas_did_not_write_is_never_removed(ledger: TrialLedger, tmp_path: Path) -> None:
    launcher = _launcher(ledger, tmp_path, Starts(), collector=_file(tmp_path))
    (tmp_path / "metrics").mkdir()
    theirs = tmp_path / "metrics" / "unit-a.log"
    theirs.write_text("the user's\n")
    with pytest.raises(RunError, match=r"fileSystemPath.path: '.*/metrics/unit-a.log' \(trial unit-a\) — .* exists "
                                       r"and was not written by a trial of this experiment; kubenas never removes"):
        launcher.launch(_row("unit-a"))
    assert theirs.read_text() == "the user's\n"


def test_a_parameter_cannot_lead_the_metrics_file_out(ledger: TrialLedger, tmp_path: Path) -> None:
    exp_changes: dict[str, Any] = {"collector": _file(tmp_path, "${trialParameters.lr}"), "lr": {
        "name": "lr", "parameterType": "categorical", "feasibleSpace": {"list": ["../../escape", "b"]}}}
    starts = Starts()
    launcher = _launcher(ledger, tmp_path, starts, **exp_changes)
    with pytest.raises(RunError, match=r"fileSystemPath.path: '.*/metrics/../../escape.log' \(trial unit-a\) — "
                                       r"must not contain a '..' component"):
        launcher.launch(_row("unit-a", lr="../../escape"))
    assert starts.specs == []


def test_an_assignment_the_template_cannot_take_stops_the_run(ledger: TrialLedger, tmp_path: Path) -> None:
    launcher = _launcher(ledger, tmp_path, Starts())
    with pytest.raises(RunError, match=r"\(assignments from the algorithm: other\)"):
        launcher.launch(replace(_row("unit-a"), assignments={"other": "1"}))
