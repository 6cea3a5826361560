"""`kubenas run` on a reduced copy of examples/bayesian-medianstop-digits.yaml: Bayesian
optimisation of real NB201 training on digits, with medianstop stopping the weak trials.

One trial at a time, so which trials have succeeded when a rule is computed does not depend
on timing; the first points are the seeded random ones, two of them with learning rates far
off, which the rule stops once two trials have succeeded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bayesian-medianstop-digits.yaml"
EPOCHS = 4


def test_bayesian_medianstop_example_stops_weak_trials(run_experiment) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    spec = doc["spec"]
    doc["metadata"]["name"] = "bayesian-medianstop-e2e"
    spec["maxTrialCount"], spec["parallelTrialCount"] = 7, 1
    spec["earlyStopping"]["algorithmSettings"] = [{"name": "min_trials_required", "value": "2"},
                                                  {"name": "start_step", "value": "2"}]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [a for a in container["command"] if not a.startswith("--epochs")]
    container["command"] += [f"--epochs={EPOCHS}", "--train-limit=600"]
    run = run_experiment(doc, timeout=300)
    assert run.code == 0, run.stderr
    res = run.results
    assert res["reason"] == "ExperimentMaxTrialsReached"
    conditions = [t["condition"] for t in res["trials"]]
    assert set(conditions) <= {"Succeeded", "EarlyStopped"}, conditions
    assert res["counts"]["early_stopped"] == conditions.count("EarlyStopped") >= 1, conditions
    for trial in res["trials"]:
        log = (run.workdir / "trials" / trial["name"] / "stdout.log").read_text()
        values = [float(v) for v in re.findall(r"Validation-Accuracy=([0-9.eE+-]+)", log)]
        # the objective is maximised: its observation is the best value the trial printed
        assert trial["observation"]["Validation-Accuracy"] == pytest.approx(max(values))
        if trial["condition"] == "EarlyStopped":
            assert 2 <= len(values) < EPOCHS, log
            assert trial["message"].startswith("stopped early: Validation-Accuracy <")
        else:
            assert len(values) == EPOCHS
    # the stopped trials are among the worst: the rule never stops a trial above the median
    stopped = [t["observation"]["Validation-Accuracy"] for t in res["trials"] if t["condition"] == "EarlyStopped"]
    finished = sorted(t["observation"]["Validation-Accuracy"] for t in res["trials"] if t["condition"] == "Succeeded")
    assert max(stopped) < finished[-1]
    assert res["best_trial"]["objective"] == finished[-1]
