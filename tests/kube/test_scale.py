"""A 10,000-trial experiment fits etcd: no object holds a per-trial list beyond a bound (the
Trials and the observation store hold the history), and no point is suggested twice.
Against FakeKubeApi (the API server is a fake: none can run here), with a real suggestion
server; the fake kubelet completes the Jobs without running them (10,000 processes would be
the test's whole cost and prove nothing more here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.kube import status
from controller.kube.step import experiment_step
from kubenas.trials import MetricStrategy, Objective, ObjectiveType
from tests.kube.fake_cluster import FakeKubeApi
from tests.kube.harness import context, fake_api, running_servers
from tests.kube.test_reconcile import NS, _experiment

#: etcd refuses a request over 1.5 MiB; an object must stay far below that.
ETCD_LIMIT = 1_572_864
TRIALS = 10_000
PARALLEL = 2000


def _trial(i: int) -> dict[str, Any]:
    return {"metadata": {"name": f"exp-{i:08d}"},
            "spec": {"parameterAssignments": [{"name": "lr", "value": repr(0.01 + i * 1e-6)}]},
            "status": {"conditions": [{"type": "Succeeded", "status": "True"}],
                       "completionTime": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                       "observation": {"metrics": [{"name": "accuracy", "min": "0.5", "max": "0.5",
                                                    "latest": repr(i / TRIALS)}]}}}


def test_experiment_status_of_10000_trials_is_bounded() -> None:
    objective = Objective(ObjectiveType.MAXIMIZE, "accuracy", strategies={"accuracy": MetricStrategy.LATEST})
    out = status.experiment_status(objective, [_trial(i) for i in range(TRIALS)])
    assert out["trials"] == out["trialsSucceeded"] == TRIALS  # the counts stay exact
    assert len(out["succeededTrialList"]) == status.TRIAL_LIST_LIMIT
    assert "exp-00009999" in out["succeededTrialList"] and "exp-00000000" not in out["succeededTrialList"]
    assert out["currentOptimalTrial"]["bestTrialName"] == "exp-00009999"
    assert len(json.dumps(out)) < 40_000


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, int]]:
    with running_servers(tmp_path, "random") as ports:
        yield ports


def _complete_jobs(api: FakeKubeApi) -> int:
    done = 0
    for (_, kind, _, _), job in api.objects.items():
        if kind == "Job" and not job.get("status"):
            job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
            done += 1
    return done


@pytest.mark.slow
def test_a_10000_trial_experiment_keeps_every_object_small(servers: dict[str, int]) -> None:
    api = fake_api("random")
    exp = _experiment(parallelTrialCount=PARALLEL, maxTrialCount=TRIALS,
                      metricsCollectorSpec={"collector": {"kind": "None"}})
    del exp["spec"]["maxFailedTrialCount"]
    api.create(exp)
    ctx = context(api, servers)
    largest = {"Experiment": 0, "Suggestion": 0}
    for _ in range(400):
        step = experiment_step(ctx, NS, "random-demo", interval=1.0)
        api.make_deployments_ready()
        _complete_jobs(api)
        for kind, size in list(largest.items()):
            largest[kind] = max([size, *(len(json.dumps(obj)) for obj in api.kind(kind))])
        if step.delay > 0 and (api.kind("Experiment")[0].get("status") or {}).get("completionTime"):
            break
    final = api.kind("Experiment")[0]["status"]
    assert final["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached", final["conditions"][-1]
    trials = api.kind("Trial")
    assert final["trials"] == len(trials) == TRIALS
    points = {tuple(sorted((a["name"], a["value"]) for a in t["spec"]["parameterAssignments"])) for t in trials}
    assert len(points) == TRIALS, "a point was suggested twice"
    suggestion = api.kind("Suggestion")[0]["status"]
    assert suggestion["suggestionCount"] == TRIALS
    # What is left in the list are the last suggestions, all made into Trials by now.
    assert len(suggestion["suggestions"]) <= PARALLEL
    assert {s["name"] for s in suggestion["suggestions"]} <= {t["metadata"]["name"] for t in trials}
    # Bounded by parallelTrialCount (suggestions not yet made Trials; names of active trials),
    # not by the trial count: 10,000 trials in a list would be ~1.4 MB in the Suggestion alone.
    assert largest["Suggestion"] < PARALLEL * 200, largest
    assert largest["Experiment"] < 20_000 + PARALLEL * 30, largest
    assert max(largest.values()) < ETCD_LIMIT // 4
