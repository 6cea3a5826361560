"""Throughput of the cluster runtime: the real `kubenas controller` process (kopf) against
FakeApiServer (tests/kube/fake_apiserver.py: no real API server can run here), a real
`random` suggestion server and a real DBManager over SQLite, with instant trials.

The fake kubelet completes each new Job at once (no process: this measures the controller,
not how fast a machine starts Python) and gives its pod the log `loss=<value>`, so the StdOut
collector reads a log, stores it and writes the Trial's observation as in a cluster.

Reported: trial creations per second (first to last Trial), the whole experiment's wall
time, active trials (sampled every 20 ms while the budget allowed parallelTrialCount; with
`--trial-seconds 1` the ideal is parallelTrialCount, with instant trials it is ~0), the
latency from a Job's completion to its Trial's final condition (reconcile latency), and API
requests per trial (watch streams excluded). Usage, from the repository root:
    PYTHONPATH=. python bench/cluster_throughput.py [--trials 200] [--parallel 20] [--repeats 3]
`--controller-root DIR` runs the controller of another checkout (e.g. an older commit) instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from tests.kube.fake_apiserver import FakeApiServer, Key
from tests.kube.harness import katib_config, running_servers

ROOT = Path(__file__).resolve().parents[1]

NS = "bench"
EXP_KEY = ("kubeflow.org/v1beta1", "experiments", NS, "burst")
CONTROLLER_ARGS: list[str] = []  # e.g. ["--verbose"] to see each step's timing in controller.log
FINISHED = {"Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable"}


class TimedApiServer(FakeApiServer):
    """FakeApiServer that notes when each Trial first reached a final condition."""

    def __init__(self) -> None:
        super().__init__()
        self.created_at: dict[str, float] = {}
        self.finished_at: dict[str, float] = {}

    def _record(self, type_: str, key: Key, obj: dict[str, Any]) -> None:
        if key[1] == "trials":
            name = key[3]
            self.created_at.setdefault(name, time.monotonic())
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") in FINISHED and c.get("status") == "True" for c in conditions):
                self.finished_at.setdefault(name, time.monotonic())
        super()._record(type_, key, obj)


def _experiment(trials: int, parallel: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "burst", "namespace": NS},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "7"}]},
            "parallelTrialCount": parallel, "maxTrialCount": trials, "maxFailedTrialCount": 1,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2.0", "max": "2.0"}}],
            "trialTemplate": {
                "primaryContainerName": "training",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "training", "image": "python:3.11-slim",
                                    "command": ["python", "-c", "print('instant')", "${trialParameters.x}"]}]}}}},
            },
        },
    }


def _kubelet(api: TimedApiServer, stop: threading.Event, completed_at: dict[str, float], seconds: float) -> None:
    """Ready Deployments; complete each Job `seconds` after it appeared, with a pod whose log holds the loss."""
    seen: dict[str, float] = {}
    while not stop.is_set():
        for deployment in api.kind("Deployment"):
            if not (deployment.get("status") or {}).get("readyReplicas"):
                meta = deployment["metadata"]
                api.modify(("apps/v1", "deployments", meta["namespace"], meta["name"]), {"status": {"readyReplicas": 1}})
        for job in api.kind("Job"):
            if job.get("status"):
                continue
            meta, template = job["metadata"], job["spec"]["template"]
            if time.monotonic() - seen.setdefault(meta["name"], time.monotonic()) < seconds:
                continue
            container = template["spec"]["containers"][0]
            x = float(container["command"][-1])
            pod = f"{meta['name']}-pod"
            api.put({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": pod, "namespace": meta["namespace"], "labels": dict(template["metadata"]["labels"]),
                                  "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                      "uid": meta["uid"]}]},
                     "status": {"phase": "Succeeded"}})
            api.logs[(meta["namespace"], pod, container["name"])] = f"loss={(x - 0.5) ** 2}\n"
            key = ("batch/v1", "jobs", meta["namespace"], meta["name"])
            try:
                api.modify(key, {"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
            except KeyError:
                continue  # deleted meanwhile
            completed_at[meta["name"]] = time.monotonic()
        stop.wait(0.01)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_once(trials: int, parallel: int, workdir: Path, controller_root: Path = ROOT,
             trial_seconds: float = 0.0) -> dict[str, float]:
    with running_servers(workdir, "random") as ports, TimedApiServer() as api:
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
            "users": [{"name": "fake", "user": {"token": "x"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
        api.put(katib_config("random"))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")},
               "KUBECONFIG": str(kubeconfig), "HOME": str(workdir), "PYTHONPATH": str(controller_root),
               "PYTHONDONTWRITEBYTECODE": "1",
               "KUBENAS_SUGGESTION_ADDRESS": f"127.0.0.1:{ports['suggestion']}",
               "KUBENAS_DB_MANAGER_ADDRESS": f"127.0.0.1:{ports['db']}",
               "KUBENAS_HEALTH_ENDPOINT": f"http://127.0.0.1:{_free_port()}/healthz"}
        log = open(workdir / "controller.log", "wb")  # noqa: SIM115 - the child writes it until stopped
        proc = subprocess.Popen([sys.executable, "-m", "kubenas", "controller", *CONTROLLER_ARGS], cwd=controller_root, env=env,
                                stdout=log, stderr=log)
        stop, completed_at = threading.Event(), {}
        kubelet = threading.Thread(target=_kubelet, args=(api, stop, completed_at, trial_seconds), daemon=True)
        kubelet.start()
        try:
            time.sleep(3)  # the controller's start (imports, kopf) is not part of the figure
            requests_before = len(api.requests)
            started = time.monotonic()
            api.put(_experiment(trials, parallel))
            samples = []
            deadline = started + 600
            while time.monotonic() < deadline:
                exp = api.objects.get(EXP_KEY)
                status = (exp or {}).get("status") or {}
                if status.get("completionTime"):
                    break
                if len(api.created_at) <= trials - parallel:  # the budget still allows `parallel`
                    samples.append(len(api.created_at) - len(api.finished_at))
                time.sleep(0.02)
            else:
                raise SystemExit(f"the experiment did not finish; see {workdir / 'controller.log'}")
            wall = time.monotonic() - started
            requests = api.requests[requests_before:]
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            log.close()
        assert status["trialsSucceeded"] == trials, status
        created = sorted(api.created_at.values())
        latency = [api.finished_at[n] - completed_at[n] for n in completed_at if n in api.finished_at]
        return {
            "creations_per_s": (len(created) - 1) / (created[-1] - created[0]),
            "wall_s": wall,
            "active_median": statistics.median(samples) if samples else float("nan"),
            "latency_median_ms": 1000 * statistics.median(latency),
            "latency_p95_ms": 1000 * sorted(latency)[int(0.95 * (len(latency) - 1))],
            "requests_per_trial": len(requests) / trials,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--controller-root", type=Path, default=ROOT)
    parser.add_argument("--trial-seconds", type=float, default=0.0, help="how long each Job runs (0: instant)")
    args = parser.parse_args()
    runs = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run_once(args.trials, args.parallel, Path(tmp), args.controller_root.resolve(), args.trial_seconds))
        print(f"run {i + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in runs[-1].items()), flush=True)
    print("median: " + ", ".join(f"{k}={statistics.median(r[k] for r in runs):.2f}" for k in runs[0]))


if __name__ == "__main__":
    main()
