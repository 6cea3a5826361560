"""Katib's own darts-cpu example runs to Succeeded with `kubenas run`.

The example's objective is a text metric: `objectiveMetricName: Best-Genotype` with the
metricsFormat filter `([\\w-]+)=(Genotype.*)`. The YAML is Katib's, unchanged except the
trial command: our DARTS trainer on the digits dataset with tiny limits, instead of the
example's container image.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubenas.genotype import Genotype

KATIB_DARTS = Path(__file__).resolve().parents[1] / "data" / "katib" / "darts-cpu.yaml"


def _katib_darts_with_our_trainer(output_dir: Path) -> dict[str, Any]:
    doc = yaml.safe_load(KATIB_DARTS.read_text())
    doc = copy.deepcopy(doc)
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    katib_args = container["command"][2:]  # the --algorithm-settings/--search-space/--num-layers flags as Katib writes them
    container["command"] = ["python", "-m", "trainer.darts", *katib_args,
                            "--dataset=digits", "--train-limit=64", "--steps-per-epoch=2",
                            f"--output-dir={output_dir}/${{trialSpec.Name}}"]
    return doc


@pytest.mark.slow
def test_katib_darts_cpu_example_succeeds_with_the_genotype_as_objective(run_experiment, tmp_path: Path) -> None:
    doc = _katib_darts_with_our_trainer(tmp_path / "darts-out")
    assert doc["spec"]["objective"]["objectiveMetricName"] == "Best-Genotype"

    run = run_experiment(doc, timeout=120.0)

    assert run.code == 0, run.stdout + run.stderr
    results = run.results
    assert results["status"] == "Succeeded"
    assert results["reason"] == "ExperimentMaxTrialsReached"
    [trial] = results["trials"]
    assert trial["condition"] == "Succeeded"
    text = trial["observation"]["Best-Genotype"]
    assert isinstance(text, str) and text.startswith("Genotype(")
    genotype = Genotype.parse_katib(text)
    assert genotype.normal and genotype.reduce
    # the optimal trial of a text objective is that trial, with the same text
    assert results["best_trial"]["name"] == trial["name"]
    assert results["best_trial"]["objective"] == text
    # the trainer's own genotype.json holds the same architecture the metric carries
    written = Genotype.from_json((tmp_path / "darts-out" / trial["name"] / "genotype.json").read_text())
    assert written == genotype
    # the genotype is shown in words and kept structured in results.json
    found = results["best_trial"]["architecture"]
    assert found["kind"] == "cell" and Genotype.from_dict(found["structure"]) == genotype
    assert found["text"][0].startswith("normal cell (output: concat of nodes ")
    assert "  node 0 = " in run.stdout and "reduction cell" in run.stdout
