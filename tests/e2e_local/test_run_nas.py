"""`kubenas run` on a NAS space: the trial parses ENAS-format architecture/nn_config."""

from __future__ import annotations

import json

import pytest

from kubenas.space import loads_lenient

pytestmark = pytest.mark.e2e


def test_random_nas_trials_get_consistent_architectures(run_experiment, make_experiment) -> None:
    doc = make_experiment(
        "nas-random", parameters=[], objective="Validation-accuracy", kind="maximize",
        max_trials=3, parallel=3, settings={"random_state": "5"},
        command=["python", "tests/programs/nas_child.py"],
        args=["--architecture", "${trialParameters.neuralNetworkArchitecture}",
              "--nn-config", "${trialParameters.neuralNetworkConfig}"],
        trial_parameters=[{"name": "neuralNetworkArchitecture", "reference": "architecture"},
                          {"name": "neuralNetworkConfig", "reference": "nn_config"}],
        extra_spec={"nasConfig": {
            "graphConfig": {"numLayers": 3, "inputSizes": [8, 8, 1], "outputSizes": [10]},
            "operations": [
                {"operationType": "convolution", "parameters": [
                    {"name": "filter_size", "parameterType": "categorical", "feasibleSpace": {"list": ["3", "5"]}},
                    {"name": "num_filter", "parameterType": "categorical", "feasibleSpace": {"list": ["8"]}}]},
                {"operationType": "reduction", "parameters": [
                    {"name": "reduction_type", "parameterType": "categorical",
                     "feasibleSpace": {"list": ["max_pooling", "avg_pooling"]}}]},
            ]}})
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    res = run.results
    assert res["reason"] == "ExperimentMaxTrialsReached" and res["counts"]["succeeded"] == 3
    for trial in res["trials"]:
        arch = loads_lenient(trial["assignments"]["architecture"])
        config = loads_lenient(trial["assignments"]["nn_config"])
        assert len(arch) == config["num_layers"] == 3
        assert {str(row[0]) for row in arch} == set(config["embedding"])  # one embedding per op used
        log = (run.workdir / "trials" / trial["name"] / "stdout.log").read_text()
        ops = [config["embedding"][str(row[0])]["opt_type"] for row in arch]
        assert f"ops={ops}" in log
        expected = sum((1.0 if op.startswith("convolution") else 0.5) + 0.1 * sum(row[1:])
                       for op, row in zip(ops, arch)) / 4.5
        assert trial["observation"]["Validation-accuracy"] == pytest.approx(expected)
    assert res["best_trial"]["objective"] == max(t["observation"]["Validation-accuracy"] for t in res["trials"])
    json.dumps(res)  # plain JSON all the way
    # the result is the architecture: in words at the end of the run and in results.json
    found = res["best_trial"]["architecture"]
    rows = loads_lenient(res["best_trial"]["assignments"]["architecture"])
    assert found["kind"] == "macro" and json.loads(found["architecture"]) == rows
    assert found["text"][0] == "ENAS macro network, 3 layers:" and len(found["text"]) == 4
    assert all(line.startswith(f"  layer {i}: ") for i, line in enumerate(found["text"][1:]))
    assert "architecture found (from the trial's assignments):" in run.stdout
    assert all(line in run.stdout for line in found["text"])
