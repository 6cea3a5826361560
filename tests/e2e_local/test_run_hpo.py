"""`kubenas run` end to end on HPO experiments: real CLI, real suggestion server, real trials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

QUAD = ["python", "tests/programs/quadratic.py"]
X = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "3"}}
Y = {"name": "y", "parameterType": "int", "feasibleSpace": {"min": "-3", "max": "1"}}


def _loss(x: str, y: str) -> float:
    return (float(x) - 1.0) ** 2 + (float(y) + 2.0) ** 2


def test_random_search_runs_every_trial_and_reports_the_best(run_experiment, make_experiment) -> None:
    experiment = make_experiment
    doc = experiment("quad-random", parameters=[X, Y], command=QUAD,
                     args=["--x=${trialParameters.x}", "--y", "${trialParameters.y}"],
                     settings={"random_state": "11"}, max_trials=4, parallel=2)
    doc["spec"]["objective"]["additionalMetricNames"] = ["accuracy"]
    doc["spec"]["objective"]["metricStrategies"] = [{"name": "accuracy", "value": "max"}]
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    res = run.results
    assert (res["status"], res["reason"]) == ("Succeeded", "ExperimentMaxTrialsReached")
    assert len(res["trials"]) == 4 and res["counts"]["succeeded"] == 4
    for t in res["trials"]:
        a = t["assignments"]
        assert -2 <= float(a["x"]) <= 3 and a["y"] in {"-3", "-2", "-1", "0", "1"}
        assert t["name"].startswith("quad-random-") and len(t["name"]) == len("quad-random-") + 8
        # min strategy for the objective (last epoch is lowest), max for accuracy
        assert t["observation"]["loss"] == pytest.approx(_loss(a["x"], a["y"]))
        assert t["observation"]["accuracy"] == pytest.approx(1 / (1 + _loss(a["x"], a["y"])))
        assert (t["condition"], t["exit_code"], t["seed"]) == ("Succeeded", 0, 11)
        assert t["duration_s"] > 0 and t["start_time"] <= t["completion_time"]
        log = (run.workdir / "trials" / t["name"] / "stdout.log").read_text()
        assert "epoch=3" in log and "done" in log  # stdout and stderr tee'd
    best = min(res["trials"], key=lambda t: t["observation"]["loss"])
    assert res["best_trial"]["name"] == best["name"]
    assert res["best_trial"]["objective"] == best["observation"]["loss"]
    assert f"best trial {best['name']}" in run.stdout
    assert (run.workdir / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run.workdir / "kubenas.db").exists()


def test_grid_exhausted_before_max_trials_ends_cleanly(run_experiment, make_experiment) -> None:
    experiment = make_experiment
    doc = experiment("quad-grid", algorithm="grid", max_trials=10, parallel=2, command=QUAD,
                     parameters=[{"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["0", "1", "2"]}},
                                 {"name": "y", "parameterType": "categorical", "feasibleSpace": {"list": ["-2"]}}],
                     args=["--x", "${trialParameters.x}", "--y", "${trialParameters.y}", "--epochs", "1"])
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    res = run.results
    assert res["reason"] == "ExperimentSuggestionEndReached"
    assert sorted(t["assignments"]["x"] for t in res["trials"]) == ["0", "1", "2"]
    assert res["best_trial"]["assignments"]["x"] == "1" and res["best_trial"]["objective"] == 0.0


def test_failures_missing_metrics_and_missing_command_fail_only_their_trial(run_experiment, make_experiment) -> None:
    experiment = make_experiment
    doc = experiment(
        "mixed", algorithm="grid", max_trials=8, parallel=3, max_failed=8,
        parameters=[
            {"name": "cmd", "parameterType": "categorical", "feasibleSpace": {"list": ["python", "kubenas-no-such-cmd"]}},
            {"name": "prog", "parameterType": "categorical",
             "feasibleSpace": {"list": ["quadratic", "fail", "no_metric", "bad_metric"]}},
        ],
        command=["${trialParameters.cmd}"], args=["tests/programs/${trialParameters.prog}.py", "--x", "2"])
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    res = run.results
    assert res["reason"] == "ExperimentMaxTrialsReached" and len(res["trials"]) == 8
    ok = run.trial(cmd="python", prog="quadratic")
    assert ok["condition"] == "Succeeded" and ok["observation"]["loss"] == 5.0
    failed = run.trial(cmd="python", prog="fail")
    # a non-zero exit is Failed even though it printed loss=0.0, and never the best
    assert (failed["condition"], failed["exit_code"]) == ("Failed", 1)
    assert "exited with status 1" in failed["message"]
    assert res["best_trial"]["name"] == ok["name"]
    nometric = run.trial(cmd="python", prog="no_metric")
    assert nometric["condition"] == "MetricsUnavailable" and nometric["exit_code"] == 0
    assert "'loss' was never reported" in nometric["message"]
    bad = run.trial(cmd="python", prog="bad_metric")
    assert bad["condition"] == "MetricsUnavailable"
    assert "not a number" in bad["message"] and "loss=abc" in bad["message"]
    for prog in ("quadratic", "fail", "no_metric", "bad_metric"):
        missing = run.trial(cmd="kubenas-no-such-cmd", prog=prog)
        assert missing["condition"] == "Failed" and missing["exit_code"] is None
        assert missing["message"] == "command not found: kubenas-no-such-cmd"
    assert res["counts"] == {"total": 8, "succeeded": 1, "failed": 5, "killed": 0, "metrics_unavailable": 2,
                             "early_stopped": 0, "running": 0, "pending": 0}


def test_goal_reached_stops_early(run_experiment, make_experiment) -> None:
    experiment = make_experiment
    doc = experiment("quad-goal", algorithm="grid", max_trials=4, parallel=1, goal=0.5, command=QUAD,
                     parameters=[{"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["3", "1", "2", "0"]}}],
                     args=["--x", "${trialParameters.x}", "--y", "-2", "--epochs", "1"])
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    res = run.results
    assert res["reason"] == "ExperimentGoalReached"
    assert len(res["trials"]) < 4
    assert res["best_trial"]["objective"] <= 0.5 and res["best_trial"]["assignments"]["x"] == "1"


def test_max_failed_trials_fails_the_experiment(run_experiment, make_experiment) -> None:
    experiment = make_experiment
    doc = experiment("always-fails", parameters=[X], command=["python", "tests/programs/fail.py"], args=["${trialParameters.x}"],
                     max_trials=6, parallel=1, max_failed=2)
    run = run_experiment(doc)
    assert run.code == 1
    res = run.results
    assert (res["status"], res["reason"]) == ("Failed", "ExperimentFailed")
    assert [t["condition"] for t in res["trials"]] == ["Failed", "Failed"]
    assert res["best_trial"] is None


def test_arguments_reach_the_program_verbatim_without_a_shell(run_experiment, make_experiment) -> None:
    experiment = make_experiment
    nasty = 'it\'s "quoted" {braces} $HOME ${x} a  b;echo pwned'
    doc = experiment(
        "no-shell", algorithm="grid", max_trials=1, command=["python", "tests/programs/echo_args.py"],
        parameters=[{"name": "msg", "parameterType": "categorical", "feasibleSpace": {"list": [nasty]}}],
        trial_parameters=[{"name": "msg", "reference": "msg"}, {"name": "me", "reference": "${trialSpec.Name}"}],
        args=["--msg=${trialParameters.msg}", "${trialParameters.msg}", "${trialParameters.me}", "${trialSpec.Kind}"],
        env=[{"name": "GREETING", "value": "hello ${trialParameters.msg}"}])
    # CUDA_VISIBLE_DEVICES stands in for GPUs this machine lacks: each trial gets one of them
    run = run_experiment(doc, env={"CUDA_VISIBLE_DEVICES": "7"})
    assert run.code == 0, run.stderr
    trial = run.results["trials"][0]
    log = (run.workdir / "trials" / trial["name"] / "stdout.log").read_text().splitlines()
    values = dict(line.split("=", 1) for line in log if "=" in line)
    assert json.loads(values["ARGV"]) == ["--msg=" + nasty, nasty, trial["name"], "Job"]
    assert values["TRIAL"] == trial["name"]
    assert values["GREETING"] == "hello " + nasty
    assert values["CWD"] == str(Path(__file__).resolve().parents[2])  # where kubenas run started
    assert trial["assignments"]["msg"] == nasty
    assert values["CUDA"] == "7" and f"trial {trial['name']} started gpu=7" in run.stdout


def test_one_gpu_per_trial_and_no_more_trials_than_gpus(run_experiment, make_experiment) -> None:
    # CUDA_VISIBLE_DEVICES stands in for two GPUs this machine lacks
    doc = make_experiment("gpus", parameters=[X], command=QUAD, max_trials=4, parallel=3,
                          args=["--x", "${trialParameters.x}", "--epochs", "2", "--sleep", "0.2"])
    run = run_experiment(doc, env={"CUDA_VISIBLE_DEVICES": "4,6"})
    assert run.code == 0, run.stderr
    running: dict[str, str] = {}
    most = 0
    for line in run.stdout.splitlines():
        words = line.split()
        if len(words) > 3 and words[0] == "trial" and words[2] == "started":
            gpu = words[3].removeprefix("gpu=").rstrip(":")
            assert gpu in {"4", "6"} and gpu not in running.values(), (line, running)
            running[words[1]] = gpu
            most = max(most, len(running))
        elif len(words) > 2 and words[0] == "trial" and words[1] in running:
            del running[words[1]]
    assert most == 2 and len(run.results["trials"]) == 4
