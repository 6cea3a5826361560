"""`kubenas run` on examples/enas-oneshot-digits.yaml (fewer epochs): one trial runs the whole
one-shot search, its objective is the best child's validation accuracy, and the architecture
it writes retrains with `kubenas-train retrain`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubenas.metrics import parse_lines
from trainer.enas.model import build_child, parse_child

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "enas-oneshot-digits.yaml"


def test_enas_oneshot_example_searches_in_one_trial_and_its_result_retrains(run_experiment, tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    spec = doc["spec"]
    doc["metadata"]["name"] = "enas-oneshot-e2e"
    overrides = {"num_epochs": "3", "controller_steps_per_epoch": "5", "final_children": "4"}
    spec["algorithm"]["algorithmSettings"] = [
        {"name": s["name"], "value": overrides.get(s["name"], s["value"])} for s in spec["algorithm"]["algorithmSettings"]]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    out = tmp_path / "search"
    container["command"] = [a for a in container["command"] if not a.startswith("--output-dir")]
    container["command"] += [f"--output-dir={out}/${{trialSpec.Name}}"]

    run = run_experiment(doc, timeout=400)

    assert run.code == 0, run.stderr
    res = run.results
    assert res["reason"] == "ExperimentMaxTrialsReached" and res["counts"]["succeeded"] == 1
    [trial] = res["trials"]
    settings = json.loads(trial["assignments"]["algorithm-settings"])
    assert settings["num_epochs"] == 3 and settings["dataset"] == "digits" and settings["sampler"] == "enas"
    log = (run.workdir / "trials" / trial["name"] / "stdout.log").read_text().splitlines()
    entropy = [p.value for p in parse_lines(log, ["Controller-Entropy"])]
    assert len(entropy) == 3
    best = [line.partition("=")[2] for line in log if line.startswith("Best-Architecture=")]
    written = out / trial["name"]
    architecture = (written / "architecture.json").read_text().strip()
    nn_config = (written / "nn_config.json").read_text()
    assert best == [architecture]
    accuracy = trial["observation"]["Validation-Accuracy"]
    assert 0.0 <= accuracy <= 1.0
    assert json.loads((written / "search.json").read_text())["best"]["validation_accuracy"] == accuracy
    build_child(parse_child(architecture, nn_config))  # the enas trainer's own parser and builder
    retrain = subprocess.run(
        [sys.executable, "-m", "trainer.retrain", f"--architecture=@{written / 'architecture.json'}",
         f"--nn_config={nn_config}", "--dataset=digits", "--num_epochs=1", "--train-limit=256", "--device=cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert retrain.returncode == 0, retrain.stderr[-2000:]
    assert [p.name for p in parse_lines(retrain.stdout.splitlines(), ["Test-Accuracy"])] == ["Test-Accuracy"]
    # the found architecture is the run's result: results.json has it, and retrain takes the run directory
    found = res["best_trial"]["architecture"]
    assert found["kind"] == "macro" and found["architecture"] == json.dumps(json.loads(architecture), separators=(", ", ": "))
    assert json.loads(found["nn_config"]) == json.loads(nn_config)
    assert "Best-Architecture" in found["source"] and "  layer 0: " in run.stdout
    from_run = subprocess.run(
        [sys.executable, "-m", "trainer.retrain", str(run.workdir), "--num_epochs=1", "--train-limit=256",
         "--device=cpu"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert from_run.returncode == 0, from_run.stderr[-2000:]
    assert f"retraining trial {trial['name']}" in from_run.stderr and "\"dataset\": \"digits\"" in from_run.stderr  # from its settings
    assert [p.name for p in parse_lines(from_run.stdout.splitlines(), ["Test-Accuracy"])] == ["Test-Accuracy"]
