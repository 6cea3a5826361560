"""No duplicate points under a burst: a seeded `random` experiment with parallelTrialCount 20
and 220 trials, where the Suggestion step runs while the Experiment step is still making the
Trials of the previous reply (as kopf runs two objects' handlers side by side). Against
FakeKubeApi (the API server is a fake: none can run here) with a real suggestion server, a
real DBManager over SQLite and real trial processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.kube.context import Context
from controller.kube.suggestion import reconcile_suggestion
from tests.kube.fake_cluster import FakeKubeApi
from tests.kube.harness import context, drive, katib_config, running_servers
from tests.kube.test_reconcile import _experiment

pytestmark = pytest.mark.slow


class RacingApi(FakeKubeApi):
    """Runs the Suggestion step right after the Experiment step raises `spec.requests`, before
    that Experiment step creates the Trials of the suggestions it read: the window in which two
    handlers running side by side interleave."""

    ctx: Context | None = None

    def patch_spec(self, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        super().patch_spec(kind, namespace, name, spec)
        if kind == "Suggestion" and self.ctx is not None:
            self.make_deployments_ready()
            reconcile_suggestion(self.ctx, self.get("kubeflow.org/v1beta1", "Suggestion", namespace, name))


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, int]]:
    with running_servers(tmp_path, "random") as ports:
        yield ports


def _assignments(trial: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((a["name"], a["value"]) for a in trial["spec"]["parameterAssignments"]))


def test_a_burst_of_trials_gets_no_duplicate_assignments(servers: dict[str, int]) -> None:
    api = RacingApi()
    api.create(katib_config("random"))
    api.create(_experiment(parallelTrialCount=20, maxTrialCount=220, maxFailedTrialCount=5))
    api.ctx = ctx = context(api, servers)
    # Trials end a few at a time, as they do in a cluster.
    status = drive(ctx, api, steps=400, jobs_per_step=7)["status"]
    assert status["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached", status["conditions"][-1]
    trials = api.kind("Trial")
    assert status["trialsSucceeded"] == 220 and len(trials) == 220
    points = [_assignments(t) for t in trials]
    repeated = {p for p in points if points.count(p) > 1}
    assert not repeated, f"{len(repeated)} assignments were suggested twice, e.g. {sorted(repeated)[:2]}"
