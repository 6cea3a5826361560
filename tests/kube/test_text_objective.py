"""A text-valued objective (Katib's DARTS `Best-Genotype`) in the Kubernetes controller:
the pure status functions, then Katib's darts-cpu example driven through the reconcile steps
(FakeKubeApi stands in for the API server and kubelet, which cannot run here; the DARTS
suggestion server, the DBManager over SQLite and the trainer process are real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.dbmanager import make_dbmanager_server
from controller.kube import status
from controller.kube.context import Context
from controller.kube.logs import metrics_from_log
from controller.store_sqlite import SQLiteStore
from kubenas.genotype import Genotype
from kubenas.metrics import MetricPoint
from kubenas.trials import Objective, ObjectiveType, TrialCondition
from suggestion.service import make_server
from tests.kube.fake_cluster import FakeKubeApi
from tests.kube.harness import drive

JOB_DONE = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
DARTS = Objective(ObjectiveType.MAXIMIZE, "Best-Genotype", additional_metric_names=("Validation-Accuracy",))
GENO_A = ("Genotype(normal=[('max_pooling_3x3', 0), ('skip_connection', 1)], normal_concat=range(2, 3), "
          "reduce=[('max_pooling_3x3', 0), ('max_pooling_3x3', 1)], reduce_concat=range(2, 3))")
GENO_B = GENO_A.replace("skip_connection", "max_pooling_3x3")
KATIB_DARTS = Path(__file__).resolve().parents[1] / "data" / "katib" / "darts-cpu.yaml"


def test_log_with_the_katib_filter_gives_text_points_and_a_text_observation() -> None:
    log = (f"2026-01-01T00:00:01Z Validation-Accuracy=0.25\n2026-01-01T00:00:02Z Current-Genotype={GENO_B}\n"
           f"2026-01-01T00:00:03Z Validation-Accuracy=0.5\n2026-01-01T00:00:04Z Best-Genotype={GENO_A}\n")
    filters = [r"([\w-]+)=(Genotype.*)", r"([\w-]+)=([\d.]+)"]
    points = metrics_from_log(log, DARTS, filters)
    assert [p.name for p in points] == ["Validation-Accuracy", "Validation-Accuracy", "Best-Genotype"]
    assert metrics_from_log(log, DARTS) == [MetricPoint("Validation-Accuracy", 0.25, "2026-01-01T00:00:01Z"),
                                            MetricPoint("Validation-Accuracy", 0.5, "2026-01-01T00:00:03Z")]
    observation = status.observation_from_points(DARTS, points)
    assert observation["metrics"][0] == {"name": "Best-Genotype", "min": GENO_A, "max": GENO_A, "latest": GENO_A}
    assert observation["metrics"][1] == {"name": "Validation-Accuracy", "min": "0.25", "max": "0.5", "latest": "0.5"}
    assert status.trial_outcome(JOB_DONE, None, None, observation, DARTS) is TrialCondition.SUCCEEDED


def test_unavailable_is_still_no_observation() -> None:
    observation = {"metrics": [{"name": "Best-Genotype", "min": "unavailable", "max": "unavailable",
                                "latest": "unavailable"}]}
    assert status.trial_outcome(JOB_DONE, None, None, observation, DARTS) is TrialCondition.METRICS_UNAVAILABLE


def _trial(name: str, text: str, completed: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"parameterAssignments": [{"name": "num-layers", "value": "1"}]},
            "status": {"completionTime": completed,
                       "conditions": [{"type": "Succeeded", "status": "True"}],
                       "observation": {"metrics": [{"name": "Best-Genotype", "min": text, "max": text,
                                                    "latest": text}]}}}


def test_experiment_status_names_the_most_recently_completed_text_trial_optimal() -> None:
    # names sort the other way round from completion, so the order of the list cannot decide
    trials = [_trial("a-late", GENO_B, "2026-01-01T00:10:00Z"), _trial("b-early", GENO_A, "2026-01-01T00:01:00Z")]
    out = status.experiment_status(DARTS, trials)
    assert out["trialsSucceeded"] == 2
    assert out["currentOptimalTrial"]["bestTrialName"] == "a-late"
    assert out["currentOptimalTrial"]["observation"]["metrics"][0]["latest"] == GENO_B
    record = status.trial_record(trials[0], DARTS)
    assert record.texts == {"Best-Genotype": GENO_B} and record.metrics == {}
    assert record.completion_time == "2026-01-01T00:10:00Z"


@pytest.mark.slow
def test_katib_darts_example_succeeds_through_the_controller(tmp_path: Path) -> None:
    api = FakeKubeApi()
    api.create({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "katib-config", "namespace": "kubenas-system"},
                "data": {"katib-config.yaml": "runtime:\n  suggestions:\n"
                                              "    - {algorithmName: darts, image: kubenas/suggestion:0.1.0}\n"}})
    exp = yaml.safe_load(KATIB_DARTS.read_text())
    exp["metadata"]["namespace"] = "team-a"
    container = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-m", "trainer.darts", *container["command"][2:], "--dataset=digits",
                            "--train-limit=64", "--steps-per-epoch=2", f"--output-dir={tmp_path / 'out'}"]
    api.create(exp)
    server, port = make_server("darts", port=0)
    server.start()
    store = SQLiteStore(tmp_path / "db.sqlite")
    db, db_port = make_dbmanager_server(store)
    try:
        ctx = Context(api=api, address_of=lambda service, ns: f"127.0.0.1:{port}", db_address=f"127.0.0.1:{db_port}")
        done = drive(ctx, api)
    finally:
        server.stop(None)
        db.stop(None)
        store.close()
    assert done["status"]["conditions"][-1]["type"] == "Succeeded", done["status"]["conditions"]
    assert done["status"]["trialsSucceeded"] == 1
    [trial] = api.kind("Trial")
    [metric] = trial["status"]["observation"]["metrics"]
    assert metric["name"] == "Best-Genotype"
    genotype = Genotype.parse_katib(metric["latest"])
    assert genotype == Genotype.from_json((tmp_path / "out" / "genotype.json").read_text())
    best = done["status"]["currentOptimalTrial"]
    assert best["bestTrialName"] == trial["metadata"]["name"]
    assert best["observation"]["metrics"][0]["latest"] == metric["latest"]


def test_numeric_observations_read_as_before_even_as_bare_numbers() -> None:
    observation = {"metrics": [{"name": "Best-Genotype", "min": 0.25, "max": "0.75", "latest": "0.5"},
                               {"name": "Validation-Accuracy", "min": "nan?", "max": True, "latest": "0.1"}]}
    record = status.trial_record({"metadata": {"name": "t"}, "status": {"observation": observation}}, DARTS)
    # maximize: the "max" entry counts; a bool is no number
    assert record.metrics == {"Best-Genotype": 0.75} and record.texts == {}
    minimize = Objective(ObjectiveType.MINIMIZE, "Best-Genotype")
    assert status.trial_record({"metadata": {"name": "t"}, "status": {"observation": observation}},
                               minimize).metrics == {"Best-Genotype": 0.25}
