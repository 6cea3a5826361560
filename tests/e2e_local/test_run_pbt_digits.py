"""`kubenas run` on a reduced copy of examples/pbt-digits.yaml: real PyTorch training on
digits where the second generation resumes from the first's checkpoints (weights, momentum
and epoch count), as the example's program reports in its log."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from suggestion.algorithms.pbt import GENERATION_LABEL, PARENT_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pbt-digits.yaml"


def test_pbt_digits_children_continue_their_parents_training(run_experiment) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    spec = doc["spec"]
    doc["metadata"]["name"] = "pbt-digits-e2e"
    spec["maxTrialCount"], spec["parallelTrialCount"] = 7, 5
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][0] == "python"
    container["command"] = [sys.executable, *[a for a in container["command"][1:] if not a.startswith("--epochs")],
                            "--epochs=1"]

    run = run_experiment(doc, timeout=600)

    assert run.code == 0, run.stdout + run.stderr
    trials = {t["name"]: t for t in run.results["trials"]}
    assert len(trials) == 7 and all(t["condition"] == "Succeeded" for t in trials.values())
    children = [t for t in trials.values() if PARENT_LABEL in t["labels"]]
    assert len(children) == 2
    for child in children:
        parent = child["labels"][PARENT_LABEL]
        assert trials[parent]["labels"][GENERATION_LABEL] == "0" and child["labels"][GENERATION_LABEL] == "1"
        log = (run.workdir / "trials" / child["name"] / "stdout.log").read_text()
        assert f"/pbt-digits-e2e/{child['name']}/training.pt: 1 epochs by {parent}" in log, log
        assert re.findall(r"^epoch (\d+)$", log, re.MULTILINE) == ["2"], log
        assert 0.0 < child["observation"]["Validation-accuracy"] <= 1.0
