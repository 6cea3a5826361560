"""The algorithm-settings round trip through the cluster controller, as Katib's does it: the
reply's `algorithm` settings are stored in the Suggestion's status.algorithmSettings and sent
back over the Experiment's settings on the next GetSuggestions.

Against FakeKubeApi (no API server can run here; see fake_cluster.py) with real gRPC servers:
kubenas's `hyperband`, and a stand-in answering the way Katib's own hyperband image does
(only its state names in `algorithm`, short replies, nothing once it is done).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import yaml

from controller.dbmanager import make_dbmanager_server
from controller.store_sqlite import SQLiteStore
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from tests.kube.fake_cluster import FakeKubeApi
from tests.kube.harness import context, drive, fake_api, running_servers

ROOT = Path(__file__).resolve().parents[1]
KATIB_EXAMPLE = ROOT / "data" / "katib" / "hyperband.yaml"
BUDGETED = ROOT / "programs" / "budgeted.py"
BRACKET, RUNG = "hyperband.kubenas.io/bracket", "hyperband.kubenas.io/rung"


def _experiment(settings: dict[str, str], parallel: int, max_trials: int) -> dict[str, Any]:
    """Katib's hyperband example with a local trial program whose loss improves with the epochs."""
    doc = yaml.safe_load(KATIB_EXAMPLE.read_text())
    doc["metadata"]["uid"] = "5d1c8a2e-0000-4000-8000-000000000017"
    spec = doc["spec"]
    spec["parallelTrialCount"], spec["maxTrialCount"] = parallel, max_trials
    spec["algorithm"]["algorithmSettings"] = [{"name": k, "value": v} for k, v in settings.items()]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [sys.executable, str(BUDGETED), "--epochs=${trialParameters.numberEpochs}",
                            "--lr=${trialParameters.learningRate}", "--momentum=${trialParameters.momentum}"]
    return doc


def _settings(obj: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["value"] for s in obj["status"].get("algorithmSettings") or []}


def test_hyperband_state_is_stored_in_the_suggestion_status_and_sent_back(tmp_path: Path) -> None:
    api = fake_api("hyperband")
    api.create(_experiment({"resource_name": "num-epochs", "eta": "3", "r_l": "3", "random_state": "2"},
                           parallel=3, max_trials=20))
    with running_servers(tmp_path, "hyperband") as ports:
        exp = drive(context(api, ports), api, steps=60, jobs_per_step=1)
    assert exp["status"]["conditions"][-1]["reason"] == "ExperimentSuggestionEndReached", exp["status"]
    trials = api.kind("Trial")
    assert all(t["status"]["conditions"][-1]["type"] == "Succeeded" for t in trials)

    def budget(t: dict[str, Any]) -> str:
        return next(a["value"] for a in t["spec"]["parameterAssignments"] if a["name"] == "num-epochs")

    # r_l=3, eta=3: bracket 1 runs 3 configurations at 1 epoch and the best at 3; bracket 0 two at 3.
    # Only the stored state can tell the server that bracket 1 was done: every call starts afresh.
    assert Counter((t["spec"]["labels"][BRACKET], t["spec"]["labels"][RUNG], budget(t)) for t in trials) == \
        {("1", "0", "1"): 3, ("1", "1", "3"): 1, ("0", "0", "3"): 2}

    def loss(t: dict[str, Any]) -> float:
        return float(next(m["latest"] for m in t["status"]["observation"]["metrics"] if m["name"] == "loss"))

    def config(t: dict[str, Any]) -> tuple[str, ...]:
        return tuple(a["value"] for a in t["spec"]["parameterAssignments"] if a["name"] != "num-epochs")

    first = [t for t in trials if t["spec"]["labels"][RUNG] == "0" and t["spec"]["labels"][BRACKET] == "1"]
    (promoted,) = [t for t in trials if t["spec"]["labels"][RUNG] == "1"]
    assert config(promoted) == config(min(first, key=loss))
    state = _settings(api.kind("Suggestion")[0])
    # What the replies changed or added is kept; what they echoed (resource_name) is not.
    assert state["current_s"] == "-1" and state["s_max"] == "1" and state["r_l"] == "3.0"
    assert "resource_name" not in state and "random_state" not in state
    assert api.kind("Suggestion")[0]["status"]["exhausted"] is True


class KatibLikeHyperband(api_pb2_grpc.SuggestionServicer):
    """Answers as Katib's hyperband service does on the wire: `algorithm` holds only its own
    state names (numbers as floats), a bracket may be smaller than the request, and once the
    brackets are done the reply is empty. Records the settings of every request."""

    def __init__(self) -> None:
        self.requests: list[list[tuple[str, str]]] = []
        self.lock = threading.Lock()

    def ValidateAlgorithmSettings(self, request: Any, context: Any) -> Any:
        return api_pb2.ValidateAlgorithmSettingsReply()

    def GetSuggestions(self, request: Any, context: Any) -> Any:
        settings = [(s.name, s.value) for s in request.experiment.spec.algorithm.algorithm_settings]
        with self.lock:
            self.requests.append(settings)
        calls = dict(settings).get("calls", "0")
        reply = api_pb2.GetSuggestionsReply()
        if int(calls) >= 2:
            return reply  # done: nothing more, and no state either
        for _ in range(min(1, request.current_request_number)):
            reply.parameter_assignments.add(assignments=[
                api_pb2.ParameterAssignment(name="lr", value="0.04"),
                api_pb2.ParameterAssignment(name="momentum", value="0.8"),
                api_pb2.ParameterAssignment(name="num-epochs", value=str(int(calls) + 1))])
        reply.algorithm.algorithm_settings.extend([
            api_pb2.AlgorithmSetting(name="eta", value="2.0"),
            api_pb2.AlgorithmSetting(name="calls", value=str(int(calls) + 1))])
        return reply


@contextmanager
def katib_like_server(tmp_path: Path) -> Iterator[tuple[dict[str, int], KatibLikeHyperband]]:
    servicer = KatibLikeHyperband()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    api_pb2_grpc.add_SuggestionServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    store = SQLiteStore(tmp_path / "kubenas.db")
    db, db_port = make_dbmanager_server(store)
    try:
        yield {"suggestion": port, "db": db_port}, servicer
    finally:
        server.stop(None)
        db.stop(None)
        store.close()


def test_katibs_reply_shape_is_merged_as_katibs_controller_merges_it(tmp_path: Path) -> None:
    api: FakeKubeApi = fake_api("hyperband")
    spec_settings = {"resource_name": "num-epochs", "eta": "2", "r_l": "2"}
    api.create(_experiment(spec_settings, parallel=2, max_trials=10))
    with katib_like_server(tmp_path) as (ports, katib):
        exp = drive(context(api, ports), api, steps=40)
    # Two short replies of one trial each, then an empty one with nothing running: the search ended.
    assert exp["status"]["conditions"][-1]["reason"] == "ExperimentSuggestionEndReached", exp["status"]
    assert len(api.kind("Trial")) == 2
    spec = list(spec_settings.items())
    # First call: the Experiment's settings. Then Katib's merge: a returned name takes its new value
    # in place ("eta"), a new one is appended ("calls").
    assert katib.requests[0] == spec
    assert katib.requests[1] == [("resource_name", "num-epochs"), ("eta", "2.0"), ("r_l", "2"), ("calls", "1")]
    assert katib.requests[-1] == [("resource_name", "num-epochs"), ("eta", "2.0"), ("r_l", "2"), ("calls", "2")]
    # The status keeps what the replies returned (Katib's Suggestion status.algorithmSettings).
    assert _settings(api.kind("Suggestion")[0]) == {"eta": "2.0", "calls": "2"}
