"""One trial life cycle for both runtimes: the same Experiment through `kubenas run` (real
processes, SQLite) and through the cluster reconcile steps (the API server and kubelet are the
project's fakes, none can run here; real suggestion server, DBManager and trial processes)
ends with the same trial conditions, the same outcome and, when seeded, the same trial names."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e_local.conftest import experiment, run_cli
from tests.kube.fake_cluster import FakeKubeApi
from tests.kube.harness import context, drive, fake_api, running_servers

# `ok` reports the objective, `quiet` exits 0 without it, `crash` exits 1 after reporting it.
PROGRAM = (
    "import sys\n"
    "mode = sys.argv[1]\n"
    "if mode != 'quiet':\n"
    "    print('loss=0.25')\n"
    "sys.exit(1 if mode == 'crash' else 0)\n"
)


def _doc(name: str, collector: str, algorithm: str = "grid", **extra: Any) -> dict[str, Any]:
    doc = experiment(name, parameters=[{"name": "mode", "parameterType": "categorical",
                                        "feasibleSpace": {"list": ["ok", "quiet", "crash"]}}],
                     command=["python", "-c", PROGRAM, "${trialParameters.mode}"], algorithm=algorithm,
                     max_trials=3, max_failed=3, **extra)
    doc["spec"]["metricsCollectorSpec"] = {"collector": {"kind": collector}}
    return doc


def _local(doc: dict[str, Any], tmp_path: Path) -> tuple[dict[str, str], str, list[str]]:
    tmp_path.mkdir(parents=True)
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = run_cli("run", str(path), "--workdir", str(tmp_path / "work"), timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    conditions = {t["assignments"]["mode"]: t["condition"] for t in results["trials"]}
    names = [t["name"] for t in sorted(results["trials"], key=lambda t: t.get("start_time") or "")]
    return conditions, results["reason"], names


def _cluster(doc: dict[str, Any], tmp_path: Path, algorithm: str) -> tuple[dict[str, str], str, list[str]]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = "team-a"
    doc["metadata"]["uid"] = "0b7e6a3c-1111-2222-3333-444455556666"
    api: FakeKubeApi = fake_api(algorithm)
    api.create(doc)
    with running_servers(tmp_path, algorithm) as servers:
        exp = drive(context(api, servers), api, steps=60)
    done = [c for c in exp["status"]["conditions"] if c["status"] == "True" and c["type"] in ("Succeeded", "Failed")]
    conditions = {}
    for trial in api.kind("Trial"):
        mode = next(a["value"] for a in trial["spec"]["parameterAssignments"] if a["name"] == "mode")
        last = [c for c in trial["status"]["conditions"] if c["status"] == "True"][-1]
        conditions[mode] = last["type"]
    names = [t["metadata"]["name"] for t in sorted(api.kind("Trial"), key=lambda t: t["metadata"]["creationTimestamp"])]
    return conditions, done[-1]["reason"], names


@pytest.mark.parametrize(("collector", "expected"), [
    ("StdOut", {"ok": "Succeeded", "quiet": "MetricsUnavailable", "crash": "Failed"}),
    # Nothing is collected: a clean exit is success in both runtimes (the cluster said
    # MetricsUnavailable before, and counted it toward maxFailedTrialCount).
    ("None", {"ok": "Succeeded", "quiet": "Succeeded", "crash": "Failed"}),
])
def test_same_conditions_in_both_runtimes(collector: str, expected: dict[str, str], tmp_path: Path) -> None:
    doc = _doc(f"lifecycle-{collector.lower()}", collector)
    local, local_reason, _ = _local(doc, tmp_path / "local")
    cluster, cluster_reason, _ = _cluster(doc, tmp_path / "cluster", "grid")
    assert local == expected
    assert cluster == expected
    assert local_reason == cluster_reason == "ExperimentMaxTrialsReached"


def test_seeded_trial_names_are_the_same_in_both_runtimes(tmp_path: Path) -> None:
    doc = _doc("seeded-names", "StdOut", algorithm="random", settings={"random_state": "11"})
    _, _, local = _local(doc, tmp_path / "local")
    _, _, cluster = _cluster(doc, tmp_path / "cluster", "random")
    assert len(local) == 3 and Counter(local) == Counter(cluster)
    _, _, again = _cluster(doc, tmp_path / "again", "random")
    assert Counter(again) == Counter(cluster)
