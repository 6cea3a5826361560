"""`kubenas controller` as a real process (kopf, the kubernetes client, timers, the Trial
finalizer) against FakeApiServer, which stands in for the API server, the kubelet and the
Deployment/Job controllers because none can run here. The suggestion server, the DBManager
over SQLite and the trial programs are real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.dbmanager import DBManagerClient
from controller.kube.cleanup import FINALIZER
from tests.kube.fake_apiserver import FakeApiServer
from tests.kube.harness import katib_config, running_servers
from tests.kube.test_reconcile import NS, _experiment

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EXP_KEY = ("kubeflow.org/v1beta1", "experiments", NS, "random-demo")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with running_servers(tmp_path, "random") as ports, FakeApiServer() as api:
        suggestion_port, db_port = ports["suggestion"], ports["db"]
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
            "users": [{"name": "fake", "user": {"token": "not-checked"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
        api.put(katib_config("random", "grid"))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")},
               "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
               "KUBENAS_SUGGESTION_ADDRESS": f"127.0.0.1:{suggestion_port}",
               "KUBENAS_DB_MANAGER_ADDRESS": f"127.0.0.1:{db_port}",
               "KUBENAS_RECONCILE_INTERVAL": "0.5",
               "KUBENAS_HEALTH_ENDPOINT": f"http://127.0.0.1:{_free_port()}/healthz"}
        yield {"api": api, "env": env, "db": f"127.0.0.1:{db_port}", "log": tmp_path / "controller.log"}


def _start(cluster: dict[str, Any]) -> subprocess.Popen[bytes]:
    sink = open(cluster["log"], "ab")
    return subprocess.Popen([sys.executable, "-m", "kubenas", "controller", "--verbose"], cwd=ROOT,
                            env=cluster["env"], stdout=sink, stderr=sink)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait(cluster: dict[str, Any], what: str, predicate: Any, timeout: float = 90) -> Any:
    api: FakeApiServer = cluster["api"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        api.kubelet_step()
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = cluster["log"].read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out waiting for {what}; controller log tail:\n{tail}")


def _condition(api: FakeApiServer) -> str | None:
    exp = api.objects.get(EXP_KEY)
    conditions = ((exp or {}).get("status") or {}).get("conditions") or []
    return conditions[-1]["type"] if conditions else None


class _HealthProbe:
    """Asks the controller's liveness endpoint every 0.2 s, as a kubelet would, noting the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url, self.answers, self.slowest_s = url, 0, 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(0.2):
            began = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as reply:
                    ok = reply.status == 200
            except OSError:
                continue  # not listening yet (start-up)
            if ok:
                self.answers += 1
                self.slowest_s = max(self.slowest_s, time.monotonic() - began)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(15)


def _ours(api: FakeApiServer) -> list[dict[str, Any]]:
    return [o for o in api.objects.values() if o["kind"] not in ("ConfigMap", "Event")]


def test_controller_process_runs_restarts_and_cleans_up(cluster: dict[str, Any]) -> None:
    api: FakeApiServer = cluster["api"]
    api.put(_experiment(maxTrialCount=4))
    proc = _start(cluster)
    try:
        _wait(cluster, "a first trial", lambda: api.kind("Trial"))
    finally:
        _stop(proc)  # a controller restart in the middle of the experiment
    assert proc.returncode == 0, cluster["log"].read_text()[-2000:]
    proc = _start(cluster)
    try:
        _wait(cluster, "the experiment to succeed", lambda: _condition(api) == "Succeeded")
        status = api.objects[EXP_KEY]["status"]
        assert status["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached"
        assert status["trialsSucceeded"] == 4 and len(api.kind("Trial")) == 4
        trials = [t["metadata"]["name"] for t in api.kind("Trial")]
        # Only the Experiment carries a finalizer: Trials, the Suggestion and Jobs go by garbage collection.
        assert api.objects[EXP_KEY]["metadata"]["finalizers"] == [FINALIZER]
        assert [o["metadata"]["name"] for o in _ours(api) if o["kind"] != "Experiment" and
                o["metadata"].get("finalizers")] == []
        with DBManagerClient(cluster["db"]) as db:
            assert all(db.get(name) for name in trials)
        api.delete(EXP_KEY)  # kubectl delete experiment: the finalizer's handler, then the garbage collector
        _wait(cluster, "everything to be deleted", lambda: not _ours(api), timeout=30)
        with DBManagerClient(cluster["db"]) as db:
            assert all(db.get(name) == [] for name in trials)
    finally:
        _stop(proc)
    log = cluster["log"].read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    # Waiting for the suggestion server is no error: one INFO line per wait.
    assert "INFO controller.kube.operator: experiment team-a/random-demo is waiting for the suggestion " \
           "Deployment to be ready" in log
    assert "ERROR" not in log, [line for line in log.splitlines() if "ERROR" in line][:5]


def test_uninstall_right_after_deleting_a_big_experiment_finishes(cluster: dict[str, Any]) -> None:
    """Issue 15: after `kubectl delete experiment` returned, the controller went (uninstall) while
    148 Trials still waited for it. Now, once the Experiment is gone nothing of it waits for a
    controller; and an Experiment deleted while no controller runs goes when one starts again."""
    api: FakeApiServer = cluster["api"]
    api.put(_experiment(maxTrialCount=40, parallelTrialCount=10))
    proc = _start(cluster)
    probe = _HealthProbe(cluster["env"]["KUBENAS_HEALTH_ENDPOINT"])
    try:
        _wait(cluster, "the experiment to succeed", lambda: _condition(api) == "Succeeded", timeout=120)
        trials = [t["metadata"]["name"] for t in api.kind("Trial")]
        assert len(trials) == 40
    finally:
        probe.stop()
        _stop(proc)
    # The liveness probe kept answering through the burst: the steps run off the event loop.
    assert probe.answers >= 5 and probe.slowest_s < 2.0, (probe.answers, probe.slowest_s)
    # The controller is gone: deleting the Experiment waits for it (its finalizer); nothing else blocks.
    api.delete(EXP_KEY)
    assert api.objects[EXP_KEY]["metadata"].get("deletionTimestamp")
    assert all(not o["metadata"].get("finalizers") for o in _ours(api) if o["kind"] != "Experiment")
    proc = _start(cluster)
    try:
        _wait(cluster, "the Experiment to go", lambda: EXP_KEY not in api.objects, timeout=30)
    finally:
        _stop(proc)  # uninstall: the controller goes right after the Experiment did
    # The garbage collector alone removed the rest: no finalizer held any of it.
    assert _ours(api) == []
    with DBManagerClient(cluster["db"]) as db:
        assert all(db.get(name) == [] for name in trials)


def test_finalizers_of_an_older_controller_are_released_at_start(cluster: dict[str, Any]) -> None:
    api: FakeApiServer = cluster["api"]
    old = {"finalizers": [FINALIZER]}
    for name in ("old-trial", "deleted-trial"):
        api.put({"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
                 "metadata": {"name": name, "namespace": NS, **old}, "spec": {}})
    api.put({"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion",
             "metadata": {"name": "old-suggestion", "namespace": NS, **old}, "spec": {}})
    api.delete(("kubeflow.org/v1beta1", "trials", NS, "deleted-trial"))  # stuck: its controller is gone
    assert ("kubeflow.org/v1beta1", "trials", NS, "deleted-trial") in api.objects
    proc = _start(cluster)
    try:
        _wait(cluster, "the old finalizers to be released",
              lambda: all(not o["metadata"].get("finalizers") for o in _ours(api)), timeout=30)
    finally:
        _stop(proc)
    assert sorted(o["metadata"]["name"] for o in _ours(api)) == ["old-suggestion", "old-trial"]
