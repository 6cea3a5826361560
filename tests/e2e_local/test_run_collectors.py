"""`kubenas run` with the File and Push metrics collectors."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

X = {"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["0", "3"]}}


def test_file_collector_reads_each_trials_json_file(tmp_path: Path, run_experiment, make_experiment) -> None:
    metrics = tmp_path / "metrics" / "${trialSpec.Name}.json"
    doc = make_experiment(
        "file-json", algorithm="grid", parameters=[X], max_trials=2, parallel=2,
        command=["python", "tests/programs/quadratic.py"],
        args=["--x", "${trialParameters.x}", "--y", "-2", "--json", "--metrics-file", str(metrics)],
        extra_spec={"metricsCollectorSpec": {
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": str(metrics), "kind": "File", "format": "JSON"}}}})
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    for trial in run.results["trials"]:
        x = float(trial["assignments"]["x"])
        assert trial["condition"] == "Succeeded"
        assert trial["observation"]["loss"] == (x - 1) ** 2  # min over the epochs in the file
        assert (tmp_path / "metrics" / f"{trial['name']}.json").exists()
        assert "loss" not in (run.workdir / "trials" / trial["name"] / "stdout.log").read_text()


def test_push_collector_takes_metrics_from_the_dbmanager(run_experiment, make_experiment) -> None:
    doc = make_experiment(
        "push", algorithm="grid", parameters=[X], max_trials=2, parallel=2,
        command=["python", "tests/programs/push_metrics.py"], args=["--x", "${trialParameters.x}"],
        extra_spec={"metricsCollectorSpec": {"collector": {"kind": "Push"}}})
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    for trial in run.results["trials"]:
        x = float(trial["assignments"]["x"])
        assert trial["condition"] == "Succeeded", trial
        assert trial["observation"]["loss"] == (x - 1) ** 2
    assert run.results["best_trial"]["assignments"]["x"] == "0"
