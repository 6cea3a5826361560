"""Shared set-up for the suggestion tests: a real server on a free localhost port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from kubenas.api.v1beta1 import api_pb2_grpc
from suggestion.service import make_server


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
