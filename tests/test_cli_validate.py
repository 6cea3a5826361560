"""`kubenas validate` as a user runs it: a real subprocess, exit codes, one line per error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KATIB = ROOT / "tests" / "data" / "katib"


def kubenas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubenas", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.mark.parametrize("name", ["random.yaml", "enas-gpu.yaml"])
def test_katib_examples_validate(name: str) -> None:
    proc = kubenas("validate", str(KATIB / name))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")


def test_unknown_algorithm_and_bad_setting_are_named(tmp_path: Path) -> None:
    text = (KATIB / "random.yaml").read_text()
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(text.replace("algorithmName: random", "algorithmName: bayes"))
    proc = kubenas("validate", str(unknown))
    assert proc.returncode == 2
    assert "spec.algorithm.algorithmName: 'bayes'" in proc.stderr
    assert "random" in proc.stderr and "Traceback" not in proc.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        text.replace(
            "algorithmName: random",
            'algorithmName: random\n    algorithmSettings:\n      - name: random_state\n        value: "abc"',
        )
    )
    proc = kubenas("validate", str(bad))
    assert proc.returncode == 2
    # the bracketed setting name must survive rich's markup handling
    assert "spec.algorithm.algorithmSettings[random_state]: 'abc'" in proc.stderr


def test_malformed_yaml_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nspec: [unclosed\n")
    proc = kubenas("validate", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "broken.yaml" in proc.stderr


def test_algorithms_lists_the_registry() -> None:
    proc = kubenas("algorithms")
    assert proc.returncode == 0
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    names = [line.split()[0] for line in lines]
    from suggestion.algorithms.registry import algorithm_names

    assert names == algorithm_names()  # one line each, not wrapped
    # One column each: the kinds start at the same place on every line, however long a name is.
    assert len({line.index(line.split()[1], len(line.split()[0])) for line in lines}) == 1


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    proc = kubenas("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"kubenas {version('kubenas')}"
