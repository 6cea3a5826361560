"""Suggestion servers against hostile requests: never INTERNAL, never bricked, never busy for nothing.

Real servers on port 0, called through stubs (or raw bytes where a stub cannot send them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.error_text import MAX_STATUS_CHARS
from kubenas.proto_convert import (
    GRPC_MESSAGE_OPTIONS,
)
from kubenas.space import GraphConfig, NasConfig, Operation, SearchSpace
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.base import Problem
from suggestion.algorithms.enas import Enas
from suggestion.algorithms.enas.algorithm import state_key
from suggestion.service import make_server
from suggestion.state import MAX_MEMORY_ENTRIES, DirectoryStateStore, MemoryStateStore
from tests.suggestion.contract import CONTRACT_SPACES, EXTREME_VALUES, OBJECTIVE, param
from tests.suggestion.servers import experiment, request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SMALL_HPO = SearchSpace(parameters=(param("units", "int", lo="1", hi="64"),))


def macro_space(num_layers: int) -> SearchSpace:
    return SearchSpace(nas_config=NasConfig(
        GraphConfig(num_layers, (8, 8, 1), (10,)),
        (Operation("convolution", (param("filter_size", "categorical", values=("3", "5")),
                                   param("num_filter", "categorical", values=("8",)))),
         Operation("skip_connection")),
    ))


class Server:
    def __init__(self, algorithm: str, state_dir: Path | None = None, max_workers: int = 8) -> None:
        self.server, port = make_server(algorithm, state_dir=state_dir, max_workers=max_workers)
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_MESSAGE_OPTIONS)
        self.stub = api_pb2_grpc.SuggestionStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)

    def error(self, req: api_pb2.GetSuggestionsRequest, timeout: float = 60) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            self.stub.GetSuggestions(req, timeout=timeout)
        return info.value


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(request.param)
    yield server
    server.close()


# ---- rewards: no history poisons an algorithm (the contract suite covers every one) --------

@pytest.mark.parametrize("algorithm", ["enas", "bayesian"])
def test_a_trial_at_1e39_does_not_brick_the_server(algorithm: str, tmp_path: Path) -> None:
    # Before: ENAS answered INTERNAL ("probability tensor contains either inf, nan") on every
    # later call, bayesian likewise from 1e160 ("Input y contains NaN"). Over the wire, with a
    # state directory and a server restart each round (what `kubenas run --resume` does).
    exp = experiment(CONTRACT_SPACES["nas_macro"], algorithm, {"random_state": "3"})
    history: list[TrialRecord] = []
    for round_ in range(5):
        server = Server(algorithm, state_dir=tmp_path)
        try:
            reply = server.stub.GetSuggestions(request(exp, len(EXTREME_VALUES), history), timeout=120)
        finally:
            server.close()
        assert len(reply.parameter_assignments) == len(EXTREME_VALUES)
        history += [TrialRecord(f"r{round_}-{i}", {a.name: a.value for a in pa.assignments},
                                TrialCondition.SUCCEEDED, {"accuracy": value})
                    for i, (pa, value) in enumerate(zip(reply.parameter_assignments, EXTREME_VALUES))]


# ---- grid sizes past Python's integer digit limit ---------------------------------------

@pytest.mark.parametrize("served", ["grid"], indirect=True)
def test_grid_with_1000_layers_is_invalid_argument_not_internal(served: Server) -> None:
    exp = experiment(macro_space(1000), "grid")
    for call in (lambda: served.stub.ValidateAlgorithmSettings(
                     api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=60),
                 lambda: served.stub.GetSuggestions(request(exp, 1), timeout=60)):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == INVALID, info.value.details()
        assert info.value.details().startswith("nasConfig: ") and "about 10^" in info.value.details()


# ---- echoed values are shortened --------------------------------------------------------

@pytest.mark.parametrize("served", ["random"], indirect=True)
def test_an_error_echoing_a_20000_item_list_reaches_the_client_shortened(served: Server) -> None:
    # Before: the whole list went into the status message, past gRPC's metadata limit, and the
    # client saw RESOURCE_EXHAUSTED / "Stream removed" instead of the error.
    values = tuple(f"value-{i}" for i in range(20_000)) + ("value-1",)
    err = served.error(request(experiment(SearchSpace(parameters=(param("x", "categorical", values=values),)),
                                          "random"), 1))
    assert err.code() == INVALID
    details = err.details()
    assert details.startswith("parameters[0].feasibleSpace.list: invalid value ['value-0', ")
    assert "(20001 items)" in details and "must be unique" in details and len(details) < 1000


@pytest.mark.parametrize("served", ["random"], indirect=True)
def test_an_unknown_setting_with_a_huge_name_and_value_is_shortened(served: Server) -> None:
    err = served.error(request(experiment(SMALL_HPO, "random", {"n" * 50_000: "v" * 50_000}), 1))
    assert err.code() == INVALID and len(err.details()) <= MAX_STATUS_CHARS + 100
    assert "more characters" in err.details()


# ---- impossible work is refused by validation, with the allowed range ----------------------

@pytest.mark.parametrize(("algorithm", "space", "settings", "field", "allowed"), [
    ("enas", macro_space(3), {"controller_hidden_size": "100000"}, "controller_hidden_size", "[1, 1024]"),
    ("enas", macro_space(3), {"controller_train_steps": "10000000"}, "controller_train_steps", "[1, 1000]"),
    ("enas", macro_space(1000), {}, "nasConfig.graphConfig.numLayers", "[1, 100]"),
    ("bayesian", SMALL_HPO, {"acq_candidates": "100000"}, "acq_candidates", "[1, 10000]"),
    ("tpe", SMALL_HPO, {"n_ei_candidates": "100000"}, "n_ei_candidates", "[1, 10000]"),
])
def test_settings_asking_for_impossible_work_are_refused(algorithm: str, space: SearchSpace,
                                                         settings: dict[str, str], field: str, allowed: str) -> None:
    server = Server(algorithm)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            server.stub.ValidateAlgorithmSettings(
                api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment(space, algorithm, settings)), timeout=60)
        assert info.value.code() == INVALID
        assert info.value.details().startswith(f"{field}: invalid value ") and allowed in info.value.details()
        assert time.monotonic() - started < 10
    finally:
        server.close()


def test_enas_refuses_more_decisions_per_call_than_it_bounds() -> None:
    server = Server("enas")
    try:
        err = server.error(request(experiment(macro_space(100), "enas"), 10_000))
        assert err.code() == INVALID
        assert err.details().startswith("current_request_number: invalid value 10000: enas samples at most 198")
    finally:
        server.close()


# ---- work whose client gave up stops --------------------------------------------------------

def test_a_request_whose_deadline_passed_frees_the_server() -> None:
    # One worker thread: while an abandoned call kept training, nothing else was served.
    server = Server("enas", max_workers=1)
    try:
        space = macro_space(40)
        exp = experiment(space, "enas", {"controller_train_steps": "1000", "random_state": "1"})
        first = server.stub.GetSuggestions(request(exp, 32), timeout=120)
        history = [TrialRecord(f"t{i}", {a.name: a.value for a in pa.assignments}, TrialCondition.SUCCEEDED,
                               {"accuracy": i / 32}) for i, pa in enumerate(first.parameter_assignments)]
        started = time.monotonic()
        err = server.error(request(exp, 1, history), timeout=1.0)  # 1000 steps over 32 trials: minutes
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        reply = server.stub.GetSuggestions(request(experiment(space, "enas", {"controller_train_steps": "1"},
                                                              name="other"), 1), timeout=60)
        assert len(reply.parameter_assignments) == 1
        assert time.monotonic() - started < 20
    finally:
        server.close()


# ---- ENAS state: one file per experiment, whatever its name --------------------------------

NAME_PAIRS = [("team/a", "team_a"), ("modèle-é", "modèle-ü"), ("实验一", "实验二"), ("x" * 300, "x" * 299 + "y")]


@pytest.mark.parametrize(("first", "second"), NAME_PAIRS, ids=["slash", "accents", "cjk", "300-chars"])
def test_enas_experiments_whose_names_looked_alike_keep_their_own_controllers(tmp_path: Path, first: str,
                                                                               second: str) -> None:
    # Before: both names mapped to one state file (unsafe characters became "_"), so the two
    # experiments trained one controller; a 300-character name was INTERNAL "File name too long".
    space = CONTRACT_SPACES["nas_macro"]
    settings = {"controller_train_steps": "2", "controller_hidden_size": "16"}

    def suggest(state: Path, name: str, seed: str) -> list[dict[str, str]]:
        server = Server("enas", state_dir=state)
        try:
            reply = server.stub.GetSuggestions(
                request(experiment(space, "enas", {**settings, "random_state": seed}, name=name), 4), timeout=60)
            return [{a.name: a.value for a in pa.assignments} for pa in reply.parameter_assignments]
        finally:
            server.close()

    # Reference: each experiment alone in its own state directory.
    alone_first = suggest(tmp_path / "a", first, "1"), suggest(tmp_path / "a", first, "1")
    alone_second = suggest(tmp_path / "b", second, "2"), suggest(tmp_path / "b", second, "2")
    # Together, interleaved, across server restarts: the same as alone.
    shared = tmp_path / "shared"
    together = [suggest(shared, first, "1"), suggest(shared, second, "2"),
                suggest(shared, first, "1"), suggest(shared, second, "2")]
    assert together == [alone_first[0], alone_second[0], alone_first[1], alone_second[1]]
    assert len(list(shared.iterdir())) == 2
    assert all(len(p.name.encode()) <= 255 for p in shared.iterdir())


def test_enas_memory_state_is_bounded_to_its_newest_experiments() -> None:
    store = MemoryStateStore(max_entries=4)
    algorithm = Enas(store)
    names = [f"exp-{i}" for i in range(10)]
    for name in names:
        algorithm.suggest(Problem(name, macro_space(2), OBJECTIVE, {"controller_hidden_size": "8"}), [], 1)
    kept = [name for name in names if store.load(state_key(name)) is not None]
    assert kept == names[-4:]
    assert MemoryStateStore().max_entries == MAX_MEMORY_ENTRIES  # the server's default bound


# ---- undecodable requests: INVALID_ARGUMENT, one quiet log line ----------------------------

def _bad_utf8(message: bytes, good: bytes) -> bytes:
    assert good in message
    return message.replace(good, b"\xff\xfe" + good[2:])


@pytest.mark.parametrize(("method", "payload"), [
    ("/api.v1.beta1.Suggestion/GetSuggestions",
     _bad_utf8(request(experiment(SMALL_HPO, "random", name="abcdef"), 1).SerializeToString(), b"abcdef")),
    ("/api.v1.beta1.Suggestion/ValidateAlgorithmSettings",
     _bad_utf8(api_pb2.ValidateAlgorithmSettingsRequest(
         experiment=experiment(SMALL_HPO, "random", name="abcdef")).SerializeToString(), b"abcdef")),
    ("/api.v1.beta1.EarlyStopping/SetTrialStatus",
     _bad_utf8(api_pb2.SetTrialStatusRequest(trial_name="abcdef").SerializeToString(), b"abcdef")),
])
def test_invalid_utf8_is_invalid_argument_without_a_traceback(method: str, payload: bytes,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    server = Server("random")
    try:
        call = server.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with caplog.at_level(logging.INFO), ThreadPoolExecutor(4) as pool:
            errors = list(pool.map(lambda _: _raw_error(call, payload), range(8)))
        for err in errors:
            assert err.code() == INVALID, err.details()
            assert "UTF-8" in err.details() and method in err.details()
        assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    finally:
        server.close()


def _raw_error(call: grpc.UnaryUnaryMultiCallable, payload: bytes) -> grpc.RpcError:
    try:
        call(payload, timeout=30)
    except grpc.RpcError as err:
        return err
    raise AssertionError("an undecodable request was answered")


def test_enas_state_poisoned_before_the_reward_rule_is_discarded(tmp_path: Path) -> None:
    # A state file written when a 1e39 reward turned the weights into NaN made every later
    # call (and every --resume) fail; now such a file is dropped and a fresh controller starts.
    import torch

    from suggestion.algorithms.enas.session import session_to_bytes

    store = DirectoryStateStore(tmp_path)
    problem = Problem("poisoned", macro_space(3), OBJECTIVE, {"controller_hidden_size": "8", "random_state": "1"})
    Enas(store).suggest(problem, [], 2)
    session = Enas(store).saved_session(problem)
    assert session is not None
    with torch.no_grad():
        next(session.controller.parameters()).fill_(float("nan"))
    store.save(state_key("poisoned"), session_to_bytes(session))
    assert Enas(store).saved_session(problem) is None
    assert len(Enas(store).suggest(problem, [], 3)) == 3
    fresh = Enas(store).saved_session(problem)
    assert fresh is not None and all(bool(torch.isfinite(p).all()) for p in fresh.controller.parameters())
