"""`kubenas run` with Katib's medianstop early stopping: a real CLI, the real suggestion
server (serving EarlyStopping too), a DBManager over the run's SQLite store, and real trial
processes printing a learning curve (tests/programs/curve.py)."""

from __future__ import annotations

import pytest

from controller.report import record_of
from controller.store import open_store
from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import trial_from_proto, trial_to_proto
from kubenas.trials import Objective, ObjectiveType, TrialCondition

pytestmark = pytest.mark.e2e

STEPS = 10
CURVE = ["python", "tests/programs/curve.py"]
# grid order: 0.9 and 0.8 succeed (no rule before 2 have); then the median of their first-2-step
# averages (0.135, 0.12 -> 0.1275) stops 0.2 and 0.1 at step 2; 0.85 and 0.95 stay above it.
LEVELS = ["0.9", "0.8", "0.2", "0.85", "0.1", "0.95"]


def _doc(make_experiment, settings, algorithm="medianstop", push=False):
    doc = make_experiment("curve-median", algorithm="grid", objective="acc", kind="maximize",
                          parameters=[{"name": "level", "parameterType": "categorical",
                                       "feasibleSpace": {"list": LEVELS}}],
                          command=CURVE, args=["--level", "${trialParameters.level}", "--steps", str(STEPS),
                                               *(["--push"] if push else []), "--sleep", "0.1"],
                          max_trials=len(LEVELS), parallel=1)
    if push:
        doc["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    doc["spec"]["earlyStopping"] = {"algorithmName": algorithm,
                                    "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()]}
    return doc


def _steps(run, trial) -> int:
    return (run.workdir / "trials" / trial["name"] / "stdout.log").read_text().count("step=")


@pytest.mark.parametrize("push", [False, True], ids=["stdout", "push"])
def test_medianstop_stops_bad_trials_and_their_observations_feed_the_algorithm(run_experiment, make_experiment,
                                                                                push):
    run = run_experiment(_doc(make_experiment, {"min_trials_required": "2", "start_step": "2"}, push=push),
                         timeout=120)
    assert run.code == 0, run.stderr
    res = run.results
    assert res["counts"]["succeeded"] == 4 and res["counts"]["early_stopped"] == 2, res["counts"]
    objective = Objective(ObjectiveType.MAXIMIZE, "acc")
    store = open_store(str(run.workdir / "kubenas.db"))
    try:
        history = [trial_to_proto(record_of(r), objective) for r in store.list_trials("curve-median")]
        logs = {r.name: [float(m.value) for m in store.get(r.name, "acc")] for r in store.list_trials("curve-median")}
    finally:
        store.close()
    for level in ("0.2", "0.1"):
        trial = run.trial(level=level)
        assert trial["condition"] == "EarlyStopped"
        reported = len(logs[trial["name"]])
        assert 2 <= reported < STEPS  # checked only from start_step, stopped well before the end
        assert _steps(run, trial) < STEPS
        # the observation so far, per the objective's strategy (max): the best step reported
        assert trial["observation"]["acc"] == pytest.approx(float(level) * reported / STEPS)
        assert "stopped early: acc < 0.1275 from report 2" in trial["message"]
        assert "finished" not in (run.workdir / "trials" / trial["name"] / "stdout.log").read_text()
    for level in ("0.9", "0.8", "0.85", "0.95"):
        trial = run.trial(level=level)
        assert trial["condition"] == "Succeeded" and _steps(run, trial) == STEPS
        assert len(logs[trial["name"]]) == STEPS
        assert trial["observation"]["acc"] == pytest.approx(float(level))
    assert res["best_trial"]["assignments"] == {"level": "0.95"}
    assert "early stopping rules: acc < 0.1275 from report 2" in run.stdout
    assert "EarlyStopped" in run.stdout  # the final table
    # What the algorithm is sent (GetSuggestionsRequest.trials, as the runner builds it) and what it
    # reads back: the early-stopped trials with their condition and their values so far.
    stopped = [t for t in history if t.status.condition == api_pb2.TrialStatus.TrialConditionType.EARLYSTOPPED]
    assert len(stopped) == 2
    for msg in stopped:
        seen = trial_from_proto(msg, objective)
        assert seen.condition is TrialCondition.EARLY_STOPPED
        assert seen.metrics["acc"] == pytest.approx(max(logs[msg.name]))


def test_without_enough_succeeded_trials_nothing_is_stopped(run_experiment, make_experiment):
    doc = _doc(make_experiment, {"min_trials_required": "10", "start_step": "1"})
    doc["spec"]["maxTrialCount"] = 3
    doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["args"][-1] = "0.01"
    run = run_experiment(doc, timeout=120)
    assert run.code == 0, run.stderr
    assert run.results["counts"]["succeeded"] == 3 and run.results["counts"]["early_stopped"] == 0


@pytest.mark.parametrize(("algorithm", "settings", "validate_says", "run_says"), [
    ("hyperband", {}, "spec.earlyStopping.algorithmName: 'hyperband' — must be one of: medianstop",
     "spec.earlyStopping.algorithmName: invalid value 'hyperband': must be one of: medianstop"),
    ("medianstop", {"start_step": "0"},
     "spec.earlyStopping.algorithmSettings[start_step]: '0' — must be an integer >= 1",
     "spec.earlyStopping.algorithmSettings: start_step: invalid value '0': must be an integer >= 1"),
    ("medianstop", {"patience": "2"},
     ("spec.earlyStopping.algorithmSettings[patience]: '2' — unknown setting; allowed settings: "
     "min_trials_required, start_step"),
     "spec.earlyStopping.algorithmSettings: patience: invalid value '2': unknown setting"),
], ids=["unknown-algorithm", "bad-start-step", "unknown-setting"])
def test_validate_and_run_reject_bad_early_stopping(run_experiment, make_experiment, write_experiment, cli,
                                                    algorithm, settings, validate_says, run_says):
    doc = _doc(make_experiment, settings, algorithm)
    done = cli("validate", str(write_experiment(doc)))
    assert done.returncode == 2
    assert validate_says in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr
    run = run_experiment(doc)
    assert run.code == 2
    assert run_says in run.stderr.replace("\n", " ")
    assert not (run.workdir / "trials").exists()  # rejected before any trial started
