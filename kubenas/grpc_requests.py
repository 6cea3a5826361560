"""Undecodable requests at the gRPC server boundary: INVALID_ARGUMENT, one log line, no traceback.

A request whose bytes do not parse as its message (most often a string field holding
invalid UTF-8, which protobuf rejects while parsing) never reaches a servicer: gRPC's
deserializer raises, logs a traceback per call and answers INTERNAL. Every kubenas server
adds `UndecodableRequests` as an interceptor: it swaps each unary method's deserializer
for one that hands the parse error to the method instead, which then answers
INVALID_ARGUMENT naming the method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

__all__ = ["UndecodableRequests"]

log = logging.getLogger(__name__)


class _Undecodable:
    def __init__(self, error: DecodeError) -> None:
        self.error = error


class UndecodableRequests(grpc.ServerInterceptor):
    """A server interceptor; streaming methods (health Watch, reflection) pass unchanged."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        parse = handler.request_deserializer
        behaviour = handler.unary_unary

        def tolerant_parse(data: bytes) -> Any:
            try:
                return parse(data)
            except DecodeError as err:
                return _Undecodable(err)

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                log.info("%s -> INVALID_ARGUMENT: undecodable request: %s", method, request.error)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"{method}: the request is not a valid message ({request.error}); "
                              "string fields must be valid UTF-8")
            return behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=tolerant_parse, response_serializer=handler.response_serializer)
