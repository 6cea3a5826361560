"""controller.local.suggestion_feed against a real suggestion server on port 0 and real SQLite."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent import futures
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from controller.grpc_clients import SuggestionClient
from controller.local.errors import RunError
from controller.local.persistence import TrialLedger
from controller.local.processes import TrialEvent
from controller.local.suggestion_feed import SuggestionFeed
from controller.logic import new_trial_name
from controller.report import record_of
from controller.store import open_store
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.trials import TrialCondition
from suggestion.service import make_server
from tests.controller.local.parts import experiment


class Server:
    """A real in-process Suggestion server; `stop` makes its address UNAVAILABLE."""

    def __init__(self, algorithm: str) -> None:
        self.server, port = make_server(algorithm)
        self.server.start()
        self.client = SuggestionClient(f"127.0.0.1:{port}", timeout_s=30.0)

    def stop(self) -> None:
        self.server.stop(None).wait()

    def close(self) -> None:
        self.stop()
        self.client.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[TrialLedger]:
    with open_store(str(tmp_path / "kubenas.db")) as store:
        yield TrialLedger(store, "unit", tmp_path)


def _feed(server: Server, exp: Any, ledger: TrialLedger, seed: int | None = None, **kw: Any
          ) -> tuple[SuggestionFeed, queue.Queue[TrialEvent]]:
    wake: queue.Queue[TrialEvent] = queue.Queue(maxsize=4)
    return SuggestionFeed(server.client, exp.to_proto(), exp.objective(), ledger, seed, wake,
                          resume_command="kubenas run unit.yaml --workdir w --resume", **kw), wake


def _records(ledger: TrialLedger) -> list[Any]:
    return [record_of(r) for r in ledger.rows.values()]


def test_requests_fill_the_parallel_slots_with_seeded_names(ledger: TrialLedger) -> None:
    server = Server("random")
    try:
        feed, wake = _feed(server, experiment(parallel=2, max_trials=5), ledger, seed=3)
        feed.request([], parallel=2, max_trials=5)
        assert feed.in_flight
        feed.request([], parallel=2, max_trials=5)  # one call at a time
        event = wake.get(timeout=30)
        assert (event.trial, event.line) == ("", None)
        assert wake.empty()
        feed.take()
        assert not feed.in_flight and not feed.exhausted
        rows = list(ledger.rows.values())
        first = new_trial_name("unit", [], 3)
        assert [r.name for r in rows] == [first, new_trial_name("unit", [first], 3)]
        assert all(r.condition is TrialCondition.CREATED and r.seed == 3 for r in rows)
        assert all(0.01 <= float(r.assignments["lr"]) <= 0.1 for r in rows)
        assert rows[0].workdir == str(ledger.workdir / "trials" / first)
        assert [r.name for r in ledger.store.list_trials("unit")] == [r.name for r in rows]
        feed.request(_records(ledger), parallel=2, max_trials=5)  # both slots taken: nothing asked
        assert not feed.in_flight
    finally:
        server.close()


def test_a_grid_that_runs_out_exhausts_the_feed(ledger: TrialLedger) -> None:
    server = Server("grid")
    try:
        exp = experiment(algorithm="grid", parallel=4, max_trials=10,
                         lr={"name": "lr", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}})
        feed, wake = _feed(server, exp, ledger)
        feed.request([], parallel=4, max_trials=10)
        wake.get(timeout=30)
        feed.take()
        assert sorted(r.assignments["lr"] for r in ledger.rows.values()) == ["a", "b"]
        assert not feed.exhausted  # the grid says so when asked for more
        # A short reply (2 of 4): the feed asks again only once a trial has completed.
        feed.request(_records(ledger), parallel=4, max_trials=10)
        assert not feed.in_flight
        for row in list(ledger.rows.values()):
            ledger.save(replace(row, condition=TrialCondition.SUCCEEDED))
        feed.request(_records(ledger), parallel=4, max_trials=10)
        wake.get(timeout=30)
        feed.take()
        assert feed.exhausted and len(ledger.rows) == 2
        feed.request(_records(ledger), parallel=4, max_trials=10)
        assert not feed.in_flight
    finally:
        server.close()


def test_a_lost_server_is_restarted_once_then_the_run_stops_with_a_resume_hint(ledger: TrialLedger) -> None:
    lost, fresh = Server("random"), Server("random")
    lost.stop()
    notes: list[str] = []
    restarts: list[int] = []

    def restart() -> SuggestionClient:
        restarts.append(1)
        return fresh.client

    try:
        feed, wake = _feed(lost, experiment(), ledger, restart=restart, note=notes.append)
        feed.request([], parallel=2, max_trials=4)
        wake.get(timeout=30)
        feed.take()  # UNAVAILABLE: restarted, the same request asked again
        assert restarts == [1] and notes == ["suggestion server lost; restarted it"] and feed.in_flight
        wake.get(timeout=30)
        feed.take()
        assert len(ledger.rows) == 2
        fresh.stop()
        feed.request(_records(ledger)[:0], parallel=2, max_trials=4)
        wake.get(timeout=30)
        with pytest.raises(RunError) as caught:
            feed.take()
        assert caught.value.lines()[0].startswith("GetSuggestions failed (UNAVAILABLE): ")
        assert caught.value.lines()[1] == (f"the trials so far are kept; see {ledger.workdir / 'suggestion-server.log'}"
                                           f", then resume with: kubenas run unit.yaml --workdir w --resume")
        assert restarts == [1]
    finally:
        lost.close()
        fresh.close()


class _NamesTrials(api_pb2_grpc.SuggestionServicer):
    """A stand-in suggestion server (not kubenas's) that names its trial as it likes."""

    def __init__(self, name: str) -> None:
        self.name = name

    def GetSuggestions(self, request: Any, context: Any) -> Any:
        reply = api_pb2.GetSuggestionsReply()
        reply.parameter_assignments.add(trial_name=self.name,
                                        assignments=[api_pb2.ParameterAssignment(name="lr", value="0.1")])
        return reply


@pytest.mark.parametrize("hostile", ["../escape", "a/b", "Evil\x1b[2J"])
def test_a_trial_name_no_trial_can_have_stops_the_run_and_makes_no_directory(ledger: TrialLedger,
                                                                            hostile: str) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_SuggestionServicer_to_server(_NamesTrials(hostile), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = SuggestionClient(f"127.0.0.1:{port}", timeout_s=30.0)
    try:
        exp = experiment(lr={"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}})
        wake: queue.Queue[TrialEvent] = queue.Queue(maxsize=4)
        feed = SuggestionFeed(client, exp.to_proto(), exp.objective(), ledger, None, wake,
                              resume_command="kubenas run unit.yaml --workdir w --resume")
        feed.request([], parallel=1, max_trials=3)
        wake.get(timeout=30)
        with pytest.raises(RunError) as info:
            feed.take()
        text = str(info.value)
        assert "trial_name" in text and "Kubernetes object name" in text and "\x1b" not in text
        assert not ledger.rows and not (ledger.workdir.parent / "escape").exists()
    finally:
        client.close()
        server.stop(None)
