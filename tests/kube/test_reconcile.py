"""The reconcile steps end to end against FakeKubeApi (see fake_cluster.py: the API server,
garbage collector and kubelet are fakes because none can run here), with a real suggestion
gRPC server, a real DBManager over SQLite, and real trial processes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from controller.dbmanager import DBManagerClient
from controller.kube import cleanup
from controller.kube.context import Context
from controller.kube.crd import crds
from controller.kube.experiment import reconcile_experiment
from controller.kube.suggestion import reconcile_suggestion
from controller.kube.trial import reconcile_trial
from tests.kube.conftest import EXPERIMENT
from tests.kube.fake_cluster import FakeKubeApi
from tests.kube.harness import context, drive, fake_api, reconcile_once, running_servers
from tests.kube.test_crds import _closed

NS = "team-a"
ODD = "adam w/ 'q' {x} \"z\""
PROGRAM = (
    "import sys\n"
    "lr, opt = float(sys.argv[1]), sys.argv[2]\n"
    f"assert opt in ('sgd', {ODD!r}), opt\n"
    "print('epoch 1 accuracy=0.1 loss=2.0')\n"
    "print(f'epoch 2 accuracy={1 - abs(lr - 0.05):.6f} loss={abs(lr - 0.05):.6f}')\n"
)


def _experiment(**spec: Any) -> dict[str, Any]:
    exp = copy.deepcopy(EXPERIMENT)
    exp["spec"]["parameters"][1]["feasibleSpace"]["list"] = ["sgd", ODD]
    container = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-c", PROGRAM, "${trialParameters.learningRate}", "${trialParameters.optimizer}"]
    exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"] = [container]
    del exp["spec"]["objective"]["goal"]  # unreachable budgets end by maxTrialCount
    exp["spec"].update(spec)
    return exp


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, int]]:
    with running_servers(tmp_path, "random") as ports:
        yield ports


@pytest.fixture
def api() -> FakeKubeApi:
    return fake_api("random", "grid")


def _validator(kind: str) -> jsonschema.Draft7Validator:
    crd = next(c for c in crds() if c["spec"]["names"]["kind"] == kind)
    return jsonschema.Draft7Validator(_closed(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]))


def test_experiment_runs_to_max_trials(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment())
    ctx = context(api, servers)
    exp = drive(ctx, api)
    status = exp["status"]
    assert status["conditions"][-1]["type"] == "Succeeded"
    assert status["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached"
    assert status["trialsSucceeded"] == 4 and status["trials"] == 4 and status["trialsRunning"] == 0
    trials = api.kind("Trial")
    assert len(trials) == 4
    values = {t["metadata"]["name"]: float(t["status"]["observation"]["metrics"][0]["latest"]) for t in trials}
    best = status["currentOptimalTrial"]
    assert best["bestTrialName"] == max(values, key=values.get)
    assert best["observation"]["metrics"][0]["name"] == "accuracy"
    for trial in trials:
        metrics = {m["name"]: m for m in trial["status"]["observation"]["metrics"]}
        assert float(metrics["accuracy"]["min"]) == 0.1 and float(metrics["loss"]["max"]) == 2.0
        lr = float(next(a["value"] for a in trial["spec"]["parameterAssignments"] if a["name"] == "lr"))
        assert float(metrics["accuracy"]["latest"]) == pytest.approx(1 - abs(lr - 0.05), abs=1e-6)
    # The observations went through the DBManager.
    with DBManagerClient(f"127.0.0.1:{servers['db']}") as db:
        assert {m.metric_name for m in db.get(trials[0]["metadata"]["name"])} == {"accuracy", "loss"}
    # Every custom resource the controller wrote fits its CRD schema; every built-in object validates.
    for kind in ("Experiment", "Suggestion", "Trial"):
        for obj in api.kind(kind):
            assert list(_validator(kind).iter_errors(obj)) == [], kind
    rendered = [k for k in api.created if k[1] in ("Deployment", "Service", "Job")]
    assert {k[1] for k in rendered} == {"Deployment", "Service", "Job"}
    # resumePolicy Never: the suggestion server is gone after the end; the Suggestion stays (as in
    # Katib: its status is the record of what was suggested), Succeeded.
    assert api.kind("Deployment") == [] and api.kind("Service") == []
    (suggestion,) = api.kind("Suggestion")
    assert suggestion["status"]["conditions"][-1]["type"] == "Succeeded"
    assert suggestion["status"]["suggestionCount"] == 4
    # Jobs are deleted after collection (retain false).
    assert api.kind("Job") == []


def test_rendered_workloads_validate_and_carry_labels(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment())
    ctx = context(api, servers)
    for _ in range(6):
        reconcile_once(ctx, api)
    jobs, deployments = api.kind("Job"), api.kind("Deployment")
    assert len(jobs) == 2 and len(deployments) == 1
    for obj in jobs + deployments + api.kind("Service"):
        meta = obj["metadata"]
        clean = {**obj, "metadata": {k: v for k, v in meta.items() if k not in ("uid", "creationTimestamp")}}
        clean.pop("status", None)
        kubernetes_validate.validate(clean, "1.30", strict=True)
    for job in jobs:
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["katib.kubeflow.org/experiment"] == "random-demo"
        assert labels["katib.kubeflow.org/trial"] == job["metadata"]["name"]
        env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["KATIB_TRIAL_NAME"] == job["metadata"]["name"]
        assert job["metadata"]["ownerReferences"][0]["kind"] == "Trial"


def test_restart_resumes_without_losing_or_duplicating_trials(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(maxTrialCount=5))
    first = context(api, servers)
    for _ in range(4):  # part way: some trials exist, some not yet created
        for exp in api.kind("Experiment"):
            reconcile_experiment(first, exp)
        for sugg in api.kind("Suggestion"):
            reconcile_suggestion(first, sugg)
        api.make_deployments_ready()
    assert 0 < len(api.kind("Trial")) < 5
    for client in first.clients.values():
        client.close()
    exp = drive(context(api, servers), api)  # a new controller process: nothing in memory
    assert exp["status"]["trials"] == 5 and len(api.kind("Trial")) == 5
    assert len({t["metadata"]["name"] for t in api.kind("Trial")}) == 5


def test_goal_reached_stops_early(api: FakeKubeApi, servers: dict[str, int]) -> None:
    spec = _experiment(maxTrialCount=6)["spec"]
    spec["objective"]["goal"] = 0.5
    api.create({**_experiment(), "spec": spec})
    exp = drive(context(api, servers), api)
    assert exp["status"]["conditions"][-1]["reason"] == "ExperimentGoalReached"
    assert exp["status"]["trials"] <= 2


def test_invalid_algorithm_settings_fail_the_experiment(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(algorithm={"algorithmName": "random",
                                      "algorithmSettings": [{"name": "random_state", "value": "seven"}]}))
    exp = drive(context(api, servers), api)
    last = exp["status"]["conditions"][-1]
    assert (last["type"], last["reason"]) == ("Failed", "ExperimentFailed")
    assert "random_state" in last["message"] and "seven" in last["message"]
    assert api.kind("Trial") == [] and api.kind("Deployment") == [] and api.kind("Service") == []
    assert api.kind("Suggestion")[0]["status"]["conditions"][-1]["type"] == "Failed"


def test_spec_error_fails_with_the_field_path(api: FakeKubeApi, servers: dict[str, int]) -> None:
    exp = _experiment()
    exp["spec"]["parameters"][0]["feasibleSpace"] = {"min": "0.5", "max": "0.1"}
    api.create(exp)
    out = drive(context(api, servers), api, steps=2)
    last = out["status"]["conditions"][-1]
    assert last["type"] == "Failed"
    assert "spec.parameters[0].feasibleSpace.max" in last["message"]


def test_unsupported_collector_is_named(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(metricsCollectorSpec={"collector": {"kind": "TensorFlowEvent"},
                                                 "source": {"fileSystemPath": {"path": "/log", "kind": "Directory"}}}))
    out = drive(context(api, servers), api, steps=2)
    assert "spec.metricsCollectorSpec.collector.kind" in out["status"]["conditions"][-1]["message"]


def test_unknown_algorithm_in_config_fails(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(algorithm={"algorithmName": "enas"}))
    out = drive(context(api, servers), api, steps=3)
    message = out["status"]["conditions"][-1]["message"]
    assert "'enas'" in message and "configured: grid, random" in message


def test_from_volume_keeps_the_pvc_and_deletion_cleans_up(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(resumePolicy="FromVolume", maxTrialCount=2))
    ctx = context(api, servers)
    exp = drive(ctx, api)
    assert exp["status"]["conditions"][-1]["type"] == "Succeeded"
    assert [p["metadata"]["name"] for p in api.kind("PersistentVolumeClaim")] == ["random-demo-random"]
    assert api.kind("Deployment") == [] and len(api.kind("Suggestion")) == 1
    trial_names = [t["metadata"]["name"] for t in api.kind("Trial")]
    # What the Experiment's deletion handler does before its finalizer goes; then the garbage collector.
    assert cleanup.delete_experiment_logs(ctx, api.kind("Experiment")[0]) == 2
    api.delete("kubeflow.org/v1beta1", "Experiment", NS, "random-demo")
    assert [k for k in api.objects if k[1] != "ConfigMap"] == []
    with DBManagerClient(f"127.0.0.1:{servers['db']}") as db:
        assert all(db.get(name) == [] for name in trial_names)


def test_raised_budget_restarts_a_finished_experiment(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(resumePolicy="FromVolume", maxTrialCount=2))
    ctx = context(api, servers)
    assert drive(ctx, api)["status"]["trialsSucceeded"] == 2
    api.patch_spec("Experiment", NS, "random-demo", {"maxTrialCount": 3})  # kubectl edit
    for _ in range(3):
        for exp in api.kind("Experiment"):
            reconcile_experiment(ctx, exp)
    assert api.kind("Experiment")[0]["status"]["conditions"][-1]["type"] == "Running"
    exp = drive(ctx, api)
    assert exp["status"]["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached"
    assert exp["status"]["trialsSucceeded"] == 3


def _steps(ctx: Context, api: FakeKubeApi, n: int) -> None:
    for _ in range(n):
        reconcile_once(ctx, api)


def test_running_trial_shows_a_live_observation(api: FakeKubeApi, servers: dict[str, int]) -> None:
    from tests.kube.fake_cluster import start_pod

    api.create(_experiment())
    ctx = context(api, servers)
    _steps(ctx, api, 5)
    job = api.kind("Job")[0]["metadata"]["name"]
    start_pod(api, job, NS, "epoch 1 accuracy=0.25 loss=3\n")
    trial = api.get("kubeflow.org/v1beta1", "Trial", NS, job)
    reconcile_trial(ctx, trial)
    trial = api.get("kubeflow.org/v1beta1", "Trial", NS, job)
    assert trial["status"]["conditions"][-1]["type"] == "Running"
    assert trial["status"]["observation"]["metrics"][0] == {"name": "accuracy", "min": "0.25", "max": "0.25",
                                                             "latest": "0.25"}


def test_lowered_parallelism_kills_the_newest_trial(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment())
    ctx = context(api, servers)
    _steps(ctx, api, 5)
    assert len(api.kind("Job")) == 2
    api.patch_spec("Experiment", NS, "random-demo", {"parallelTrialCount": 1})
    reconcile_experiment(ctx, api.kind("Experiment")[0])
    conditions = {t["metadata"]["name"]: t["status"]["conditions"][-1]["type"] for t in api.kind("Trial")}
    assert sorted(conditions.values()) == ["Created", "Killed"]
    killed = next(n for n, c in conditions.items() if c == "Killed")
    assert api.get("batch/v1", "Job", NS, killed) is None
    exp = drive(ctx, api)
    assert exp["status"]["trialsKilled"] == 1 and exp["status"]["trialsSucceeded"] == 3


def test_never_policy_does_not_restart(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(maxTrialCount=1, parallelTrialCount=1, maxFailedTrialCount=1))
    ctx = context(api, servers)
    drive(ctx, api)
    api.patch_spec("Experiment", NS, "random-demo", {"maxTrialCount": 2})
    _steps(ctx, api, 3)
    exp = api.kind("Experiment")[0]
    assert exp["status"]["conditions"][-1]["type"] == "Succeeded" and len(api.kind("Trial")) == 1


PUSH_PROGRAM = (
    "import os, grpc\n"
    "from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc\n"
    "stub = api_pb2_grpc.DBManagerStub(grpc.insecure_channel(os.environ['KATIB_DB_MANAGER_ADDRESS']))\n"
    "log = api_pb2.ObservationLog(metric_logs=[api_pb2.MetricLog(time_stamp='2026-01-01T00:00:00Z',\n"
    "    metric=api_pb2.Metric(name='accuracy', value='0.75'))])\n"
    "stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(trial_name=os.environ['KATIB_TRIAL_NAME'],\n"
    "    observation_log=log), timeout=10)\n"
    "print('accuracy=0.01')  # ignored: the Push collector reads the store\n"
)


def test_push_collector_reads_what_the_trial_reported(api: FakeKubeApi, servers: dict[str, int]) -> None:
    exp = _experiment(maxTrialCount=2, metricsCollectorSpec={"collector": {"kind": "Push"}})
    container = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-c", PUSH_PROGRAM, "${trialParameters.learningRate}",
                            "${trialParameters.optimizer}"]
    api.create(exp)
    done = drive(context(api, servers), api)
    assert done["status"]["trialsSucceeded"] == 2
    assert done["status"]["currentOptimalTrial"]["observation"]["metrics"][0]["latest"] == "0.75"


ENAS_PROGRAM = (
    "import sys\n"
    "from kubenas.space import loads_lenient\n"
    "args = dict(a.split('=', 1) for a in sys.argv[1:] if a.startswith('--'))\n"
    "arch = loads_lenient(args['--architecture'].strip('\"'))\n"
    "config = loads_lenient(args['--nn_config'].strip('\"'))\n"
    "assert len(arch) == config['num_layers'] == 1, (arch, config)\n"
    "assert str(arch[0][0]) in config['embedding'], config\n"
    "print(f'Validation-Accuracy={0.5 + arch[0][0] / 1000}')\n"
)


@pytest.mark.slow
def test_katib_enas_example_runs_through_the_controller(tmp_path: Path) -> None:
    """Katib's own ENAS example, unchanged but for the trial program: a real ENAS server with a
    state directory (resumePolicy FromVolume), architecture and nn_config JSON substituted into
    the Job's args inside Katib's double quotes."""
    import yaml

    exp = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "katib" / "enas-cpu.yaml").read_text())
    exp["metadata"]["namespace"] = NS
    exp["spec"]["resumePolicy"] = "FromVolume"
    container = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-c", ENAS_PROGRAM] + container["command"][-2:]
    api = fake_api("enas")
    api.create(exp)
    with running_servers(tmp_path, "enas", state_dir=tmp_path / "state") as ports:
        done = drive(context(api, ports), api)
    assert done["status"]["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached", done["status"]["conditions"]
    assert done["status"]["trialsSucceeded"] == 3
    deployment = next(k for k in api.created if k[1] == "Deployment")
    assert deployment[3] == "enas-cpu-enas"
    assert [p["metadata"]["name"] for p in api.kind("PersistentVolumeClaim")] == ["enas-cpu-enas"]
    assert any((tmp_path / "state").iterdir()), "the ENAS server kept its controller state"


def test_trial_template_from_a_config_map_and_grid_exhaustion(api: FakeKubeApi, tmp_path: Path) -> None:
    """Katib's trialTemplate.configMap source, and a grid that runs out before maxTrialCount
    (ExperimentSuggestionEndReached)."""
    import yaml

    exp = _experiment(maxTrialCount=10, algorithm={"algorithmName": "grid"})
    exp["spec"]["parameters"] = [
        {"name": "lr", "parameterType": "discrete", "feasibleSpace": {"list": ["0.01", "0.05"]}},
        {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", ODD]}},
    ]
    template = exp["spec"]["trialTemplate"].pop("trialSpec")
    exp["spec"]["trialTemplate"]["configMap"] = {"configMapName": "templates", "configMapNamespace": NS,
                                                 "templatePath": "job.yaml"}
    # The kind is unknown until the ConfigMap is read, so the conditions are spelled out.
    exp["spec"]["trialTemplate"]["successCondition"] = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    exp["spec"]["trialTemplate"]["failureCondition"] = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "templates", "namespace": NS},
                "data": {"job.yaml": yaml.safe_dump(template)}})
    api.create(exp)
    with running_servers(tmp_path, "grid") as ports:
        done = drive(context(api, ports), api)
    assert done["status"]["conditions"][-1]["reason"] == "ExperimentSuggestionEndReached", done["status"]["conditions"]
    assert done["status"]["trialsSucceeded"] == 4
    seen = {tuple(sorted((a["name"], a["value"]) for a in t["spec"]["parameterAssignments"])) for t in api.kind("Trial")}
    assert len(seen) == 4  # every grid point once


def test_every_rendered_object_of_a_from_volume_run_validates(api: FakeKubeApi, servers: dict[str, int]) -> None:
    api.create(_experiment(resumePolicy="FromVolume", maxTrialCount=2))
    ctx = context(api, servers)
    _steps(ctx, api, 5)
    kinds = {"Deployment", "Service", "PersistentVolumeClaim", "Job"}
    objects = [o for k in kinds for o in api.kind(k)]
    assert {o["kind"] for o in objects} == kinds
    for obj in objects:
        clean = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k not in ("uid", "creationTimestamp")}}
        clean.pop("status", None)
        kubernetes_validate.validate(clean, "1.30", strict=True)


def test_an_unreachable_suggestion_server_is_retried_not_failed(api: FakeKubeApi, servers: dict[str, int]) -> None:
    from controller.grpc_clients import SuggestionServerError

    api.create(_experiment())
    down = Context(api=api, address_of=lambda service, ns: "127.0.0.1:1", db_address=f"127.0.0.1:{servers['db']}")
    reconcile_experiment(down, api.kind("Experiment")[0])
    reconcile_suggestion(down, api.kind("Suggestion")[0])
    api.make_deployments_ready()
    for client in down.clients.values():
        client.timeout_s = 2.0
    with pytest.raises(SuggestionServerError):
        reconcile_suggestion(down, api.kind("Suggestion")[0])
    assert not any(c["type"] == "Failed" for c in api.kind("Suggestion")[0].get("status", {}).get("conditions", []))
    done = drive(context(api, servers), api)  # the server is back
    assert done["status"]["conditions"][-1]["type"] == "Succeeded"
