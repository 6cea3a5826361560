"""`kubenas run` is reproducible: a seeded experiment run twice suggests the same points in
the same order, and results.json records what is needed to rerun it. Real CLI, real
suggestion server, real trial processes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

QUAD = ["python", "tests/programs/quadratic.py"]
X = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "3"}}
Y = {"name": "y", "parameterType": "int", "feasibleSpace": {"min": "-3", "max": "1"}}
ARGS = ["--x=${trialParameters.x}", "--y", "${trialParameters.y}", "--epochs", "1"]


def _assignments(results: dict) -> list[dict[str, str]]:
    # rows are kept in creation order: the order the algorithm suggested them
    return [t["assignments"] for t in results["trials"]]


def test_seeded_random_run_twice_suggests_the_same_sequence(run_experiment, make_experiment,
                                                             tmp_path: Path) -> None:
    doc = make_experiment("quad-seeded", parameters=[X, Y], command=QUAD, args=ARGS,
                          settings={"random_state": "7"}, max_trials=5, parallel=1)
    first = run_experiment(doc, workdir=tmp_path / "first")
    second = run_experiment(doc, workdir=tmp_path / "second")
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    a, b = _assignments(first.results), _assignments(second.results)
    assert len(a) == 5 and a == b
    # the draws differ from trial to trial: the sequence is not one point repeated
    assert len({p["x"] for p in a}) == 5
    assert [t["name"] for t in first.results["trials"]] == [t["name"] for t in second.results["trials"]]

    other = make_experiment("quad-seeded", parameters=[X, Y], command=QUAD, args=ARGS,
                            settings={"random_state": "8"}, max_trials=5, parallel=1)
    third = run_experiment(other, workdir=tmp_path / "third")
    assert third.code == 0, third.stderr
    assert _assignments(third.results) != a


def test_results_record_seeds_settings_versions_and_wall_clock(run_experiment, make_experiment,
                                                               tmp_path: Path) -> None:
    doc = make_experiment("quad-provenance", parameters=[X, Y], command=QUAD, args=ARGS,
                          settings={"random_state": "3"}, max_trials=2, parallel=2)
    run = run_experiment(doc, workdir=tmp_path / "work")
    assert run.code == 0, run.stderr
    block = run.results["reproducibility"]
    assert block["seeds"] == {"random_state": 3}
    assert block["settings"] == {"random_state": "3"}
    assert block["code_version"]["kubenas"] == "0.1.0"
    # this test runs from the repository's checkout: a commit id, maybe "-dirty"
    assert re.fullmatch(r"[\w.\-]+", block["code_version"]["git"]) and block["code_version"]["git"] != "unknown"
    versions = block["versions"]
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["numpy"] and versions["torch"]
    assert block["command"][1:5] == ["run", str(tmp_path / "quad-provenance.yaml"), "--workdir", str(run.workdir)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", block["started_at"])
    durations = [t["duration_s"] for t in run.results["trials"]]
    assert max(durations) < block["wall_clock_s"] < 60


def test_unseeded_run_records_no_seed(run_experiment, make_experiment, tmp_path: Path) -> None:
    doc = make_experiment("quad-unseeded", parameters=[X, Y], command=QUAD, args=ARGS, max_trials=1)
    run = run_experiment(doc, workdir=tmp_path / "work")
    assert run.code == 0, run.stderr
    assert run.results["reproducibility"]["seeds"] == {"random_state": None}
    assert run.results["reproducibility"]["settings"] == {}
