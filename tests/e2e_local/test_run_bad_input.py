"""Bad input to `kubenas run`: exit status 2, one clear line naming field/value/allowed, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

X = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _good(make_experiment, name: str = "bad-input", **kw):
    kw.setdefault("parameters", [X])
    kw.setdefault("command", ["python", "tests/programs/quadratic.py"])
    kw.setdefault("args", ["--x", "${trialParameters.x}"])
    return make_experiment(name, **kw)


def test_malformed_yaml(tmp_path: Path, cli) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nspec:\n  objective: [unclosed\n")
    done = cli("run", str(path), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 2
    errors = _errors(done.stderr)
    assert len(errors) == 1 and "not valid YAML" in errors[0] and "line" in errors[0]
    assert not (tmp_path / "w").exists()  # nothing created for a file that never loaded


def test_missing_file(tmp_path: Path, cli) -> None:
    done = cli("run", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    expected = f"error: FILE: {str(tmp_path / 'nope.yaml')!r} — no such file; give the path of an Experiment YAML"
    assert _errors(done.stderr) == [expected]


def test_unknown_algorithm_names_the_known_ones(tmp_path: Path, make_experiment, write_experiment, cli) -> None:
    path = write_experiment(_good(make_experiment, algorithm="simulated-annealing"))
    done = cli("run", str(path), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 2
    errors = _errors(done.stderr)
    assert len(errors) == 1
    assert "spec.algorithm.algorithmName: 'simulated-annealing'" in errors[0]
    assert "random" in errors[0] and "grid" in errors[0]


def test_invalid_algorithm_setting_is_rejected_by_the_server(tmp_path: Path, make_experiment, write_experiment, cli) -> None:
    path = write_experiment(_good(make_experiment, settings={"random_state": "not-a-seed"}))
    done = cli("run", str(path), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 2
    errors = _errors(done.stderr)
    assert len(errors) == 1 and "random_state" in errors[0] and "not-a-seed" in errors[0]


@pytest.mark.slow
def test_previous_run_needs_resume_and_resume_needs_a_run(tmp_path: Path, make_experiment, write_experiment, cli) -> None:
    path = write_experiment(_good(make_experiment, max_trials=1))
    workdir = tmp_path / "w"
    done = cli("run", str(path), "--workdir", str(workdir), "--resume")
    assert done.returncode == 2
    assert "--resume: nothing to resume" in _errors(done.stderr)[0]
    first = cli("run", str(path), "--workdir", str(workdir))
    assert first.returncode == 0, first.stderr
    again = cli("run", str(path), "--workdir", str(workdir))
    assert again.returncode == 2
    errors = _errors(again.stderr)
    assert len(errors) == 1 and "holds a previous run" in errors[0] and "--resume" in errors[0]
    # resuming a finished run changes nothing and reports the same result
    resumed = cli("run", str(path), "--workdir", str(workdir), "--resume")
    assert resumed.returncode == 0 and "resuming bad-input: 1 finished trials kept, 0 to run again" in resumed.stdout
    # a raised maxTrialCount continues the finished experiment, keeping its trial
    first_trial = json.loads((workdir / "results.json").read_text())["trials"][0]
    path = write_experiment(_good(make_experiment, max_trials=2))
    more = cli("run", str(path), "--workdir", str(workdir), "--resume")
    assert more.returncode == 0, more.stderr
    trials = json.loads((workdir / "results.json").read_text())["trials"]
    assert len(trials) == 2 and trials[0] == first_trial


@pytest.mark.parametrize(
    ("container_change", "expected"),
    [
        ({"env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
         "env[0].valueFrom"),
        ({"command": None}, "containers[0].command: missing"),
        ({"name": "other"}, "spec.trialTemplate.primaryContainerName: 'training-container'"),
    ],
)
def test_trial_template_a_local_run_cannot_start(tmp_path: Path, make_experiment, write_experiment, cli,
                                                 container_change, expected) -> None:
    doc = _good(make_experiment)
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    for key, value in container_change.items():
        if value is None:
            container.pop(key)
        else:
            container[key] = value
    done = cli("run", str(write_experiment(doc)), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 2
    errors = _errors(done.stderr)
    assert len(errors) == 1 and expected in errors[0], errors


def test_bad_flag_value(tmp_path: Path, make_experiment, write_experiment, cli) -> None:
    done = cli("run", str(write_experiment(_good(make_experiment))), "--parallel", "0")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "--parallel" in done.stderr
