"""`kubenas run` on a reduced copy of examples/nb201-digits.yaml: evolution over the NB201
cell space, every trial training the real NB201 network on digits, to Succeeded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.space import loads_lenient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nb201-digits.yaml"


def test_nb201_example_runs_to_succeeded(run_experiment) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    spec = doc["spec"]
    doc["metadata"]["name"] = "nb201-digits-e2e"
    spec["maxTrialCount"], spec["parallelTrialCount"] = 3, 2
    spec["algorithm"]["algorithmSettings"] = [{"name": "search_mode", "value": "nb201"},
                                              {"name": "population_size", "value": "2"},
                                              {"name": "sample_size", "value": "2"},
                                              {"name": "random_state", "value": "1"}]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [arg for arg in container["command"] if not arg.startswith(("--epochs", "--init-channels"))]
    container["command"] += ["--epochs=1", "--init-channels=4", "--train-limit=300"]
    run = run_experiment(doc, timeout=240)
    assert run.code == 0, run.stderr
    res = run.results
    assert res["reason"] == "ExperimentMaxTrialsReached" and res["counts"]["succeeded"] == 3
    for trial in res["trials"]:
        cell = Cell201.from_string(trial["assignments"]["architecture"])
        assert set(cell.ops) <= set(NB201_PRIMITIVES)
        config = loads_lenient(trial["assignments"]["nn_config"])
        assert config["search_mode"] == "nb201" and config["num_layers"] == 1
        log = (run.workdir / "trials" / trial["name"] / "stdout.log").read_text()
        assert "epoch=1 " in log and "Validation-Accuracy=" in log
        assert 0.0 <= trial["observation"]["Validation-Accuracy"] <= 1.0
    assert res["best_trial"]["objective"] == max(t["observation"]["Validation-Accuracy"] for t in res["trials"])
    found = res["best_trial"]["architecture"]
    assert found["kind"] == "nb201" and found["structure"]["cell"] == res["best_trial"]["assignments"]["architecture"]
    assert found["text"][0] == "NAS-Bench-201 cell (node 0 is the input, node 3 the output):"
    assert all(line in run.stdout for line in found["text"])
