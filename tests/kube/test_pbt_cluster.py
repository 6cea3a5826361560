"""pbt through the cluster runtime: the reconcile steps, the real pbt server with a state
directory (the suggestion's PVC) and real trial processes. The API server and kubelet are
the project's fakes (none can run here); the fake kubelet gives a volumeMount of the PVC as
the local directory `<pvc>/<subPath>`. A child must find its parent's checkpoint at
`suggestion_trial_dir`, as with Katib's controller and pod webhook."""

from __future__ import annotations

import json
from pathlib import Path

from suggestion.algorithms.pbt import GENERATION_LABEL, PARENT_LABEL
from tests.e2e_local.conftest import experiment
from tests.kube.harness import context, fake_api, reconcile_once, running_servers

STEP = Path(__file__).resolve().parents[1] / "programs" / "pbt_step.py"
MOUNT = "/var/log/katib/checkpoints"


def test_cluster_pbt_children_resume_from_their_parents_checkpoints(tmp_path: Path) -> None:
    doc = experiment(
        "pbt-cluster", algorithm="pbt", objective="score", kind="maximize", max_trials=8, parallel=5,
        settings={"suggestion_trial_dir": f"{MOUNT}/", "n_population": "5", "truncation_threshold": "0.4",
                  "random_state": "2"},
        parameters=[{"name": "lr", "parameterType": "double",
                     "feasibleSpace": {"min": "0.0001", "max": "1", "distribution": "logUniform"}}],
        command=["python", str(STEP), "--lr=${trialParameters.lr}", f"--checkpoint={MOUNT}/"],
        extra_spec={"resumePolicy": "FromVolume"})
    doc["metadata"].update(namespace="team-a", uid="0b7e6a3c-1111-2222-3333-444455556666")
    pvc = tmp_path / "pvc"
    api = fake_api("pbt")
    api.create(doc)
    with running_servers(tmp_path, "pbt", state_dir=pvc) as servers:
        ctx = context(api, servers)
        for _ in range(60):
            reconcile_once(ctx, api)
            api.run_jobs(claims={"pbt-cluster-pbt": pvc})
            exp = api.kind("Experiment")[0]
            if {c["type"] for c in exp.get("status", {}).get("conditions", []) if c["status"] == "True"} \
                    & {"Succeeded", "Failed"}:
                break
    trials = {t["metadata"]["name"]: t for t in api.kind("Trial")}
    assert len(trials) == 8
    children = [t for t in trials.values() if PARENT_LABEL in t["metadata"]["labels"]]
    assert len(children) == 3
    for name, trial in trials.items():
        labels = trial["metadata"]["labels"]
        assert trial["spec"]["labels"] == {k: v for k, v in labels.items() if k.startswith("pbt.")}
        state = json.loads((pvc / "pbt-cluster" / name / "state.json").read_text())
        parent = labels.get(PARENT_LABEL)
        if parent is None:
            assert labels[GENERATION_LABEL] == "0" and state["lineage"] == [name]
        else:
            parent_state = json.loads((pvc / "pbt-cluster" / parent / "state.json").read_text())
            assert state["lineage"] == [*parent_state["lineage"], name]
            assert int(labels[GENERATION_LABEL]) == int(trials[parent]["metadata"]["labels"][GENERATION_LABEL]) + 1
