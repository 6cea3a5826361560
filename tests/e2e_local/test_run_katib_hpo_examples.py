"""Katib's own HPO examples for bayesianoptimization, cmaes, multivariate-tpe, sobol and tpe.

Each YAML in tests/data/katib is Katib's examples/v1beta1/hp-tuning file, unchanged. It
must pass `kubenas validate` as written, then run to its end with `kubenas run`, with the
trial container's command replaced by a local program (tests/programs/quadratic.py prints
`loss=...` as Katib's pytorch-mnist does) and maxTrialCount lowered to 6 (two rounds of
Katib's parallelTrialCount 3).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

KATIB = Path(__file__).resolve().parents[1] / "data" / "katib"
QUADRATIC = Path(__file__).resolve().parents[1] / "programs" / "quadratic.py"
EXAMPLES = {
    "bayesian-optimization.yaml": "bayesianoptimization",
    "cma-es.yaml": "cmaes",
    "multivariate-tpe.yaml": "multivariate-tpe",
    "sobol.yaml": "sobol",
    "tpe.yaml": "tpe",
}
TRIALS = 6


def _with_local_trial(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["spec"]["maxTrialCount"] = TRIALS
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [sys.executable, str(QUADRATIC), "--epochs=1",
                            "--x=${trialParameters.learningRate}", "--y=${trialParameters.momentum}"]
    return doc


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_katib_example_validates_unchanged(cli, name: str) -> None:
    doc = yaml.safe_load((KATIB / name).read_text())
    assert doc["spec"]["algorithm"]["algorithmName"] == EXAMPLES[name]
    done = cli("validate", str(KATIB / name))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok "), done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_katib_example_runs_to_max_trials(run_experiment, name: str) -> None:
    doc = _with_local_trial(yaml.safe_load((KATIB / name).read_text()))

    run = run_experiment(doc, timeout=180.0)

    assert run.code == 0, run.stdout + run.stderr
    results = run.results
    assert (results["status"], results["reason"]) == ("Succeeded", "ExperimentMaxTrialsReached")
    trials = results["trials"]
    assert len(trials) == TRIALS and all(t["condition"] == "Succeeded" for t in trials)
    points = {(t["assignments"]["lr"], t["assignments"]["momentum"]) for t in trials}
    assert len(points) == TRIALS, points  # parallel batches do not repeat a point
    for lr, momentum in points:
        assert 0.01 <= float(lr) <= 0.05 and 0.5 <= float(momentum) <= 0.9
    # loss = (lr - 1)^2 + (momentum + 2)^2, as the program computes it from the assignments
    best = results["best_trial"]
    lr, momentum = float(best["assignments"]["lr"]), float(best["assignments"]["momentum"])
    assert best["objective"] == pytest.approx((lr - 1) ** 2 + (momentum + 2) ** 2)
    assert best["objective"] == min(t["observation"]["loss"] for t in trials)


def test_katibs_cmaes_rule_is_named_by_kubenas_validate(cli, write_experiment) -> None:
    doc = yaml.safe_load((KATIB / "cma-es.yaml").read_text())
    doc["spec"]["parameters"][1] = {"name": "momentum", "parameterType": "categorical",
                                    "feasibleSpace": {"list": ["0.5", "0.9"]}}
    done = cli("validate", str(write_experiment(doc)))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "spec.parameters: ['lr']" in done.stderr
    assert "at least 2 int or double parameters" in done.stderr
