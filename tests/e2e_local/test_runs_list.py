"""`kubenas runs`: the runs under a directory, from real `kubenas run`s (finished, running, killed)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

QUAD = ["python", "tests/programs/quadratic.py"]
X = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "3"}}


def test_runs_lists_finished_running_and_killed_runs(run_experiment, make_experiment, cli, spawn_run,
                                                     write_experiment, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = run_experiment(make_experiment("quad-done", parameters=[X], command=QUAD, args=["--x=${trialParameters.x}"],
                                          settings={"random_state": "3"}, max_trials=2), workdir=runs / "quad-done")
    assert done.code == 0, done.stderr
    best = done.results["best_trial"]["objective"]
    # a run in progress: its trials sleep, so it is still running while we list
    slow = write_experiment(make_experiment("quad-slow", parameters=[X], command=QUAD,
                                            args=["--x=${trialParameters.x}", "--sleep=20"], max_trials=3))
    proc = spawn_run(str(slow), "--workdir", str(runs / "group" / "quad-slow"))
    killed = runs / "quad-killed"  # SIGKILLed before it wrote results.json
    killed.mkdir()
    (killed / "experiment.json").write_text(json.dumps({"experiment": "quad-killed", "file": "x.yaml", "pid": 2**22 + 7}))
    (runs / "notes").mkdir()  # no run: not listed
    deadline = time.monotonic() + 60
    while not (runs / "group" / "quad-slow" / "kubenas.db").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    listed = cli("runs", str(runs))
    proc.terminate()
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    row = next(line for line in lines if "quad-done" in line)
    assert "random" in row and "Succeeded" in row and "2/2" in row and f"{best:.6g}" in row and " loss " in row
    running = next(line for line in lines if "quad-slow" in line)
    assert "Running" in running and "/3" in running
    assert "Stopped" in next(line for line in lines if "quad-killed" in line)
    assert "notes" not in listed.stdout
    # oldest first: the finished run was started before the one in progress
    assert listed.stdout.index("quad-done") < listed.stdout.index("quad-slow")
    # one run directory itself
    single = cli("runs", str(runs / "quad-done"))
    assert "quad-done" in single.stdout and "quad-slow" not in single.stdout
    empty = cli("runs", str(runs / "notes"))
    assert empty.returncode == 0 and "no kubenas runs under" in empty.stdout
    missing = cli("runs", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "WORKDIR:" in missing.stderr and "no such directory" in missing.stderr


def test_runs_table_fits_80_columns_and_shows_more_at_200() -> None:
    from rich.console import Console

    from controller.runs import RunSummary, runs_table

    runs = [RunSummary(Path("runs/enas-digits"), "enas-digits", "enas", "Succeeded", 12, 12, "Validation-Accuracy",
                       0.993056, "enas-digits-abc", 1.7e9, 239.4),
            RunSummary(Path("runs/very/long/directory/darts-digits"), "darts-digits", "darts", "Running", 0, 1,
                       "Validation-Accuracy", None, "", 1.7e9 + 60, 2600.0)]
    texts = {}
    for width in (80, 200):
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(runs_table(runs, width))
        texts[width] = console.file.getvalue()
        assert max(len(line) for line in texts[width].splitlines()) <= width
        row = next(line for line in texts[width].splitlines() if "enas-digits " in line)
        assert all(word in row for word in ("enas", "Succeeded", "12/12", "0.993056", "3m59s"))
        assert "43m20s" in texts[width] and "…" not in texts[width]
    assert "Validation-Accuracy" not in texts[80] and "runs/very/long/directory/darts-digits" in texts[200]
    assert "Validation-Accuracy" in texts[200]
