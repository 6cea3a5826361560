"""`kubenas run` with pbt: each trial resumes from a copy of its parent trial's directory.

The trial program (tests/programs/pbt_step.py) keeps a score and the list of trials that
wrote its checkpoint; a child's list must be its parent's plus itself, which only holds if
the run handed the child a copy of the parent's directory at the path the experiment's
`suggestion_trial_dir` names. The trial also reads its generation label through a trialParameter
`${trialSpec.Labels[...]}`: the algorithm's labels are the trial's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from suggestion.algorithms.pbt import GENERATION_LABEL, PARENT_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
STEP = Path(__file__).resolve().parents[1] / "programs" / "pbt_step.py"
MOUNT = "/var/log/katib/checkpoints"


def test_children_resume_from_their_parents_checkpoints(run_experiment, make_experiment) -> None:
    doc = make_experiment(
        "pbt-lineage", algorithm="pbt", objective="score", kind="maximize", max_trials=10, parallel=5,
        settings={"suggestion_trial_dir": f"{MOUNT}/", "n_population": "5", "truncation_threshold": "0.2",
                  "random_state": "4"},
        parameters=[{"name": "lr", "parameterType": "double",
                     "feasibleSpace": {"min": "0.0001", "max": "1", "distribution": "logUniform"}}],
        command=[sys.executable, str(STEP), "--lr=${trialParameters.lr}", f"--checkpoint={MOUNT}/",
                 "--generation=${trialParameters.generation}"],
        # Katib's metadata reference: the trial's own label, here the one pbt gave it.
        trial_parameters=[{"name": "lr", "reference": "lr"},
                          {"name": "generation", "reference": f"${{trialSpec.Labels[{GENERATION_LABEL}]}}"}])

    run = run_experiment(doc, timeout=180.0)

    assert run.code == 0, run.stdout + run.stderr
    trials = {t["name"]: t for t in run.results["trials"]}
    assert len(trials) == 10 and all(t["condition"] == "Succeeded" for t in trials.values())
    root = run.workdir / "suggestion-state" / "pbt-lineage"
    children = [t for t in trials.values() if PARENT_LABEL in t["labels"]]
    assert len(children) == 5  # the second step of each member
    for name, trial in trials.items():
        state = json.loads((root / name / "state.json").read_text())
        parent = trial["labels"].get(PARENT_LABEL)
        if parent is None:
            assert trial["labels"][GENERATION_LABEL] == "0" and state["lineage"] == [name]
            assert state["generations"] == ["0"]
            continue
        parent_state = json.loads((root / parent / "state.json").read_text())
        assert state["lineage"] == [*parent_state["lineage"], name]
        assert state["generations"] == [*parent_state["generations"], trial["labels"][GENERATION_LABEL]]
        assert int(trial["labels"][GENERATION_LABEL]) == int(trials[parent]["labels"][GENERATION_LABEL]) + 1
        assert state["score"] > parent_state["score"]
        assert trial["observation"]["score"] == state["score"]
        assert f"resumed from {parent}" in (run.workdir / "trials" / name / "stdout.log").read_text()
