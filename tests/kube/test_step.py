"""`experiment_step`, the operator's unit of work, against FakeKubeApi (the API server is a
fake: none can run here) with a real suggestion server, DBManager and trial processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.kube.step import experiment_step
from tests.kube.fake_cluster import FakeKubeApi
from tests.kube.harness import context, fake_api, running_servers
from tests.kube.test_reconcile import NS, _experiment


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, int]]:
    with running_servers(tmp_path, "random") as ports:
        yield ports


def _conditions(api: FakeKubeApi) -> list[str]:
    return sorted((t.get("status") or {}).get("conditions", [{}])[-1].get("type", "") for t in api.kind("Trial"))


def test_one_step_finishes_a_round(servers: dict[str, int]) -> None:
    """Finished trials collected, the next suggestions fetched, their Trials and Jobs made: all
    in one step, so a trial that ends is replaced without waiting for another."""
    api = fake_api("random")
    api.create(_experiment(parallelTrialCount=3, maxTrialCount=6))
    ctx = context(api, servers)
    for _ in range(6):
        experiment_step(ctx, NS, "random-demo", interval=1.0)
        api.make_deployments_ready()
        if len(api.kind("Job")) == 3:
            break
    assert _conditions(api) == ["Created"] * 3 and len(api.kind("Job")) == 3
    assert api.run_jobs() == 3
    step = experiment_step(ctx, NS, "random-demo", interval=1.0)
    assert _conditions(api) == ["Created"] * 3 + ["Succeeded"] * 3
    assert len(api.kind("Job")) == 3 and all(not j.get("status") for j in api.kind("Job"))
    assert step.delay == 0.0 and step.writes > 0
    # The Jobs and pods of all trials come from one listing each, not a read per trial.
    assert step.calls <= 12 + 8 * 6, step


def test_an_idle_step_writes_nothing_and_waits_for_events(servers: dict[str, int]) -> None:
    api = fake_api("random")
    api.create(_experiment(parallelTrialCount=1, maxTrialCount=1, maxFailedTrialCount=1))
    ctx = context(api, servers)
    for _ in range(8):
        step = experiment_step(ctx, NS, "random-demo", interval=1.5)
        api.make_deployments_ready()
        api.run_jobs()
    assert api.kind("Experiment")[0]["status"]["conditions"][-1]["type"] == "Succeeded"
    assert (step.writes, step.delay) == (0, 60.0)  # finished: only an edit (an event) wakes it


def test_a_missing_deployment_is_a_wait_not_an_error(servers: dict[str, int]) -> None:
    api = fake_api("random")
    api.create(_experiment())
    ctx = context(api, servers)
    experiment_step(ctx, NS, "random-demo", interval=3.0)  # makes the Suggestion
    step = experiment_step(ctx, NS, "random-demo", interval=3.0)  # its Deployment, not ready yet
    step = experiment_step(ctx, NS, "random-demo", interval=3.0)
    assert step.waiting == "the suggestion Deployment to be ready" and step.delay == 1.0 and step.writes == 0
