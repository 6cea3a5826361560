"""hyperband end to end with `kubenas run`: Katib's own example (tests/data/katib/hyperband.yaml,
Katib's examples/v1beta1/hp-tuning file unchanged) and a full successive-halving run, with a
trial program whose loss improves with the budget it is given (tests/programs/budgeted.py).

The bracket state travels as Katib's: the suggestion server returns it in each reply's
algorithm settings, the runner keeps it in the run's store and sends it back; a resumed run
continues the brackets where they stopped.
"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

KATIB = Path(__file__).resolve().parents[1] / "data" / "katib"
BUDGETED = Path(__file__).resolve().parents[1] / "programs" / "budgeted.py"
BRACKET, RUNG = "hyperband.kubenas.io/bracket", "hyperband.kubenas.io/rung"


def _local(doc: dict[str, Any], max_trials: int | None = None) -> dict[str, Any]:
    """Katib's example with its trial container running budgeted.py on the same trial parameters."""
    doc = copy.deepcopy(doc)
    if max_trials is not None:
        doc["spec"]["maxTrialCount"] = max_trials
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [sys.executable, str(BUDGETED), "--epochs=${trialParameters.numberEpochs}",
                            "--lr=${trialParameters.learningRate}", "--momentum=${trialParameters.momentum}"]
    return doc


def _rungs(trials: list[dict[str, Any]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    out: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for t in trials:
        out.setdefault((int(t["labels"][BRACKET]), int(t["labels"][RUNG])), []).append(t)
    return out


def _config(trial: dict[str, Any]) -> tuple[str, str]:
    return trial["assignments"]["lr"], trial["assignments"]["momentum"]


def _assert_the_best_were_promoted(rungs: dict[tuple[int, int], list[dict[str, Any]]]) -> None:
    for (s, i), trials in rungs.items():
        if i == 0:
            continue
        before = sorted(rungs[(s, i - 1)], key=lambda t: t["observation"]["loss"])
        assert sorted(map(_config, trials)) == sorted(map(_config, before[:len(trials)])), (s, i)


def _stored_state(workdir: Path) -> dict[str, str]:
    db = sqlite3.connect(workdir / "kubenas.db")
    try:
        rows = db.execute("SELECT value_json FROM experiment_meta WHERE key = 'algorithm-settings'").fetchall()
    finally:
        db.close()
    assert len(rows) == 1, rows
    return json.loads(rows[0][0])  # type: ignore[no-any-return]


def test_katibs_example_validates_unchanged(cli) -> None:
    done = cli("validate", str(KATIB / "hyperband.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok "), done.stdout


def test_katibs_parallel_rule_is_named_by_kubenas_validate(cli, write_experiment) -> None:
    doc = yaml.safe_load((KATIB / "hyperband.yaml").read_text())
    doc["spec"]["parallelTrialCount"] = 1  # eta=2, r_l=2: the largest bracket runs 2 at once
    done = cli("validate", str(write_experiment(doc)))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "spec.parallelTrialCount: 1" in done.stderr and "at least 2" in done.stderr


@pytest.mark.slow
def test_katibs_example_runs_and_resume_continues_the_brackets(run_experiment) -> None:
    doc = yaml.safe_load((KATIB / "hyperband.yaml").read_text())
    first = run_experiment(_local(doc), timeout=120.0)  # maxTrialCount 2, as Katib wrote it
    assert first.code == 0, first.stdout + first.stderr
    assert (first.results["status"], first.results["reason"]) == ("Succeeded", "ExperimentMaxTrialsReached")
    trials = first.results["trials"]
    # eta=2, r_l=2: s_max=1, bracket 1 starts 2 configurations at int(2 / 2) = 1 epoch.
    assert sorted((t["labels"][BRACKET], t["labels"][RUNG], t["assignments"]["num-epochs"]) for t in trials) == \
        [("1", "0", "1")] * 2
    assert _stored_state(first.workdir)["evaluating_trials"] == "2"

    # More trials and --resume: the stored state goes on to rung 1 (the better one at 2 epochs),
    # then bracket 0 (2 new at 2 epochs), then the search ends. Without the state it would
    # start bracket 1 again.
    resumed = run_experiment(_local(doc, max_trials=10), "--resume", workdir=first.workdir, timeout=120.0)
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    results = resumed.results
    assert (results["status"], results["reason"]) == ("Succeeded", "ExperimentSuggestionEndReached")
    rungs = _rungs(results["trials"])
    assert {k: sorted(t["assignments"]["num-epochs"] for t in v) for k, v in rungs.items()} == \
        {(1, 0): ["1", "1"], (1, 1): ["2"], (0, 0): ["2", "2"]}
    _assert_the_best_were_promoted(rungs)
    assert _stored_state(first.workdir)["current_s"] == "-1"


@pytest.mark.slow
def test_successive_halving_runs_every_bracket_and_promotes_the_best(run_experiment) -> None:
    doc = _local(yaml.safe_load((KATIB / "hyperband.yaml").read_text()), max_trials=40)
    spec = doc["spec"]
    spec["parallelTrialCount"] = 9
    spec["algorithm"]["algorithmSettings"] = [{"name": "resource_name", "value": "num-epochs"},
                                              {"name": "eta", "value": "3"}, {"name": "r_l", "value": "9"},
                                              {"name": "random_state", "value": "5"}]
    run = run_experiment(doc, timeout=300.0)

    assert run.code == 0, run.stdout + run.stderr
    results = run.results
    assert (results["status"], results["reason"]) == ("Succeeded", "ExperimentSuggestionEndReached")
    trials = results["trials"]
    assert all(t["condition"] == "Succeeded" for t in trials)
    # r_l=9, eta=3: s_max=2. Bracket 2: 9 at 1 epoch, the best 3 at 3, the best 1 at 9;
    # bracket 1: 5 at 3, the best 2 at 9; bracket 0: 3 at 9. 23 trials, 99 epochs in all.
    budgets = Counter((int(t["labels"][BRACKET]), int(t["labels"][RUNG]), int(t["assignments"]["num-epochs"]))
                      for t in trials)
    assert budgets == {(2, 0, 1): 9, (2, 1, 3): 3, (2, 2, 9): 1, (1, 0, 3): 5, (1, 1, 9): 2, (0, 0, 9): 3}
    rungs = _rungs(trials)
    _assert_the_best_were_promoted(rungs)
    # The loss improves with the budget: a promoted configuration does better at its larger budget.
    for (s, i), promoted in rungs.items():
        for t in promoted if i else ():
            parent = next(p for p in rungs[(s, i - 1)] if _config(p) == _config(t))
            assert t["observation"]["loss"] < parent["observation"]["loss"]
    assert int(results["best_trial"]["assignments"]["num-epochs"]) == 9


DIGITS = Path(__file__).resolve().parents[2] / "examples" / "hyperband-digits.yaml"


def test_digits_example_validates(cli) -> None:
    done = cli("validate", str(DIGITS))
    assert done.returncode == 0 and done.stdout.startswith("ok "), done.stdout + done.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_digits_example_trains_each_trial_for_its_budget(run_experiment) -> None:
    """examples/hyperband-digits.yaml reduced to r_l 3 (6 trials, 11 epochs) on 600 images:
    real NB201 training whose epochs are the budget hyperband gives it."""
    doc = yaml.safe_load(DIGITS.read_text())
    spec = doc["spec"]
    doc["metadata"]["name"] = "hyperband-digits-e2e"
    spec["parallelTrialCount"], spec["maxTrialCount"] = 3, 10
    spec["algorithm"]["algorithmSettings"] = [{"name": "resource_name", "value": "epochs"},
                                              {"name": "eta", "value": "3"}, {"name": "r_l", "value": "3"},
                                              {"name": "random_state", "value": "3"}]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] += ["--train-limit=600"]
    run = run_experiment(doc, timeout=400)
    assert run.code == 0, run.stderr
    results = run.results
    assert results["reason"] == "ExperimentSuggestionEndReached"
    trials = results["trials"]
    assert all(t["condition"] == "Succeeded" for t in trials)
    budgets = Counter((t["labels"][BRACKET], t["labels"][RUNG], t["assignments"]["epochs"]) for t in trials)
    assert budgets == {("1", "0", "1"): 3, ("1", "1", "3"): 1, ("0", "0", "3"): 2}
    for t in trials:
        log = (run.workdir / "trials" / t["name"] / "stdout.log").read_text()
        assert len(re.findall(r"Validation-Accuracy=", log)) == int(t["assignments"]["epochs"]), log
    first = [t for t in trials if (t["labels"][BRACKET], t["labels"][RUNG]) == ("1", "0")]
    (promoted,) = [t for t in trials if t["labels"][RUNG] == "1"]
    best = max(first, key=lambda t: t["observation"]["Validation-Accuracy"])
    assert {k: v for k, v in promoted["assignments"].items() if k != "epochs"} == \
        {k: v for k, v in best["assignments"].items() if k != "epochs"}
