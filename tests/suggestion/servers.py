"""Shared set-up for the suggestion tests: a real server on a free localhost port, and the
requests the gRPC tests send it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.proto_convert import objective_to_proto, search_space_to_proto, trial_to_proto
from kubenas.space import SearchSpace
from kubenas.trials import TrialRecord
from suggestion.service import make_server
from tests.suggestion.contract import OBJECTIVE


@contextmanager
def suggestion_stub(algorithm: str) -> Iterator[api_pb2_grpc.SuggestionStub]:
    """A Suggestion stub on a fresh in-process server for `algorithm`, stopped on exit."""
    server, port = make_server(algorithm)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield api_pb2_grpc.SuggestionStub(channel)
    finally:
        channel.close()
        server.stop(None)


def experiment(space: SearchSpace, algorithm: str, settings: Mapping[str, str] | None = None,
               name: str = "exp") -> api_pb2.Experiment:
    """An Experiment message for `space` with the contract's objective."""
    spec = search_space_to_proto(space)
    spec.objective.CopyFrom(objective_to_proto(OBJECTIVE))
    spec.algorithm.algorithm_name = algorithm
    for key, value in (settings or {}).items():
        spec.algorithm.algorithm_settings.add(name=key, value=value)
    return api_pb2.Experiment(name=name, spec=spec)


def request(exp: api_pb2.Experiment, n: int, trials: Sequence[TrialRecord] = ()) -> api_pb2.GetSuggestionsRequest:
    """GetSuggestions for `n` new assignments with `trials` as the history."""
    return api_pb2.GetSuggestionsRequest(
        experiment=exp, current_request_number=n, total_request_number=len(trials) + n,
        trials=[trial_to_proto(t, OBJECTIVE) for t in trials])
