"""The dashboard's cluster source against the project's fake API server (no real control
plane can run here) and a real DBManager gRPC server over a real SQLite store. Trial and
Experiment statuses are written by the controller's own status functions."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from starlette.testclient import TestClient

from controller.dbmanager import make_dbmanager_server
from controller.kube.status import (
    experiment_status,
    objective_from_spec,
    observation_from_points,
    trial_status,
)
from controller.store_sqlite import SQLiteStore
from dashboard.app import create_app
from dashboard.cluster_source import ClusterSource
from kubenas.metrics import MetricPoint
from kubenas.trials import TrialCondition
from tests.kube.conftest import EXPERIMENT
from tests.kube.fake_apiserver import FakeApiServer

HOSTILE = "<script>alert(1)</script>"
CURVES = {"random-demo-a": ([0.2, 0.5, 0.7], TrialCondition.SUCCEEDED),
          "random-demo-b": ([0.1, 0.15], TrialCondition.EARLY_STOPPED),
          "random-demo-c": ([0.3], TrialCondition.RUNNING)}


def _trial(name: str, values: list[float], condition: TrialCondition, objective: Any) -> dict[str, Any]:
    points = [MetricPoint("accuracy", v, f"2026-01-01T00:00:0{i}Z") for i, v in enumerate(values)]
    status = trial_status(None, TrialCondition.RUNNING, "", "2026-01-01T00:00:00Z")
    if condition is not TrialCondition.RUNNING:
        status = trial_status(status, condition, f"{condition.value} at the end", "2026-01-01T00:01:00Z",
                              observation_from_points(objective, points))
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
            "metadata": {"name": name, "namespace": "team-a", "labels": {"katib.kubeflow.org/experiment": "random-demo"}},
            "spec": {"parameterAssignments": [{"name": "lr", "value": "0.05"}, {"name": "optimizer", "value": HOSTILE}]},
            "status": status}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[TestClient]:
    experiment = copy.deepcopy(EXPERIMENT)
    objective = objective_from_spec(experiment["spec"]["objective"])
    trials = [_trial(name, values, condition, objective) for name, (values, condition) in CURVES.items()]
    experiment["status"] = experiment_status(objective, trials)
    store = SQLiteStore(tmp_path / "db.sqlite")
    for name, (values, _) in CURVES.items():
        store.report(name, [("accuracy", v, f"2026-01-01T00:00:0{i}Z") for i, v in enumerate(values)])
    db_server, port = make_dbmanager_server(store)
    with FakeApiServer() as fake:
        fake.put(experiment)
        for trial in trials:
            fake.put(trial)
        other = copy.deepcopy(trials[0])  # a trial of another experiment is not this one's
        other["metadata"].update(name="other-x", labels={"katib.kubeflow.org/experiment": "other"})
        fake.put(other)
        fake.put({"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion",
                  "metadata": {"name": "random-demo", "namespace": "team-a"},
                  "spec": {"algorithm": experiment["spec"]["algorithm"], "requests": 3},
                  "status": {"suggestionCount": 3}})
        configuration = client.Configuration()
        configuration.host = fake.url
        source = ClusterSource(client.ApiClient(configuration), f"127.0.0.1:{port}")
        try:
            with TestClient(create_app(source)) as c:
                yield c
        finally:
            source.close()
            db_server.stop(0)
            store.close()


def test_cluster_list_experiment_curves_and_trial(cluster: TestClient) -> None:
    [entry] = cluster.get("/api/experiments").json()["experiments"]
    assert entry["id"] == "team-a.random-demo" and entry["algorithm"] == "random"
    assert entry["counts"]["total"] == 3 and entry["counts"]["Succeeded"] == 1
    assert entry["best_trial"] == "random-demo-a" and entry["best_value"] == 0.7
    detail = cluster.get("/api/experiments/team-a.random-demo").json()
    assert [(t["name"], t["condition"]) for t in detail["trials"]] == [
        ("random-demo-a", "Succeeded"), ("random-demo-b", "EarlyStopped"), ("random-demo-c", "Running")]
    assert detail["trials"][0]["assignments"] == {"lr": "0.05", "optimizer": HOSTILE}
    assert detail["spec"]["spec"]["maxTrialCount"] == 4 and detail["early_stopping"] is False
    assert detail["reproducibility"]["suggestion"]["status"] == {"suggestionCount": 3}
    curves = cluster.get("/api/experiments/team-a.random-demo/curves").json()["curves"]
    assert curves == {name: {"accuracy": values} for name, (values, _) in CURVES.items()}
    trial = cluster.get("/api/experiments/team-a.random-demo/trials/random-demo-b").json()
    assert [h["condition"] for h in trial["status_history"]] == ["Created", "Running (False)", "EarlyStopped"]
    assert [m["value"] for m in trial["metric_logs"]] == ["0.1", "0.15"]
    log = cluster.get("/api/experiments/team-a.random-demo/trials/random-demo-b/log").json()
    assert log["available"] is False and "kubectl -n team-a logs job/random-demo-b" in log["note"]


def test_cluster_errors_name_what_exists(cluster: TestClient) -> None:
    missing = cluster.get("/api/experiments/team-a.nope")
    assert missing.status_code == 404 and "known: 'team-a.random-demo'" in missing.json()["error"]
    assert cluster.get("/api/experiments/no-dot").status_code == 404
    other = cluster.get("/api/experiments/team-a.random-demo/trials/other-x")
    assert other.status_code == 404 and "random-demo-a" in other.json()["error"]
    page = cluster.get("/experiments/team-a.random-demo").text
    assert HOSTILE not in page


def test_a_dbmanager_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    with FakeApiServer() as fake:
        fake.put(copy.deepcopy(EXPERIMENT))
        configuration = client.Configuration()
        configuration.host = fake.url
        source = ClusterSource(client.ApiClient(configuration), "127.0.0.1:1")
        fake.put(_trial("random-demo-a", [0.5], TrialCondition.SUCCEEDED,
                        objective_from_spec(EXPERIMENT["spec"]["objective"])))
        try:
            with TestClient(create_app(source)) as c:
                answer = c.get("/api/experiments/team-a.random-demo/curves")
                assert answer.status_code == 503
                assert answer.json()["error"].startswith("the DBManager at 127.0.0.1:1 does not answer: UNAVAILABLE")
                assert c.get("/api/experiments/team-a.random-demo").status_code == 200
        finally:
            source.close()


def test_an_api_server_that_does_not_answer_is_a_clear_error() -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:1"
    source = ClusterSource(client.ApiClient(configuration), "127.0.0.1:1")
    try:
        with TestClient(create_app(source)) as c:
            answer = c.get("/api/experiments")
            assert answer.status_code == 503
            assert answer.json()["error"].startswith("the Kubernetes API does not answer (list experiments)")
            assert "Traceback" not in c.get("/").text and c.get("/").status_code == 503
    finally:
        source.close()
