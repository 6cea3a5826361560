"""The Suggestion gRPC service (api.v1.beta1, Katib's wire contract) over one algorithm.

The servicer only translates: request -> `Problem` + `TrialRecord`s, algorithm call,
suggestions -> reply, domain errors -> status codes. `make_server` adds standard health
(SERVING for Katib's probe name, ours and "") and reflection; `serve` runs it until
SIGTERM/SIGINT and then drains in-flight calls.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.error_text import MAX_STATUS_CHARS, clip, invalid_value
from kubenas.grpc_requests import UndecodableRequests
from kubenas.proto_convert import (
    GRPC_MESSAGE_OPTIONS,
    MAX_SUGGESTIONS_PER_REQUEST,
    assignments_to_proto,
    objective_from_proto,
    search_space_from_proto,
    settings_from_proto,
    settings_to_proto,
)
from kubenas.space import SpaceError
from suggestion.algorithms.base import (
    Algorithm,
    Cancelled,
    InvalidSettings,
    Problem,
    SearchSpaceExhausted,
    Suggestion,
)
from suggestion.algorithms.registry import algorithm_class
from suggestion.convert import HistoryConverter
from suggestion.early_stopping.service import (
    EARLY_STOPPING_HEALTH_NAMES,
    EARLY_STOPPING_SERVICE_NAME,
    EarlyStoppingServicer,
    TrialStatusSink,
)
from suggestion.state import DirectoryStateStore, MemoryStateStore, StateStore

__all__ = [
    "HEALTH_SERVICE_NAMES",
    "REMAINING_METADATA_KEY",
    "SERVICE_NAME",
    "BadRequest",
    "BindError",
    "SuggestionServicer",
    "make_server",
    "serve",
]

logger = logging.getLogger(__name__)

SERVICE_NAME: str = api_pb2.DESCRIPTOR.services_by_name["Suggestion"].full_name
# Katib's controller probes "manager.v1beta1.Suggestion"; grpc_health_probe defaults to "".
HEALTH_SERVICE_NAMES = ("manager.v1beta1.Suggestion", SERVICE_NAME, "")
# Trailing metadata on OUT_OF_RANGE: how many assignments may still be asked for.
REMAINING_METADATA_KEY = "remaining"
DEFAULT_GRACE_S = 5.0

_Reply = TypeVar("_Reply")


class BadRequest(ValueError):
    """The request itself is malformed (not the space or settings); INVALID_ARGUMENT."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(invalid_value(field, value, allowed))


class _WrongCount(RuntimeError):
    pass


def _exhausted(context: grpc.ServicerContext, exc: SearchSpaceExhausted) -> None:
    context.set_trailing_metadata(((REMAINING_METADATA_KEY, str(exc.remaining)),))


# Domain error -> (status code, extra step before aborting). First match wins.
_STATUS: tuple[tuple[type[Exception], grpc.StatusCode, Callable[..., None] | None], ...] = (
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT, None),
    (InvalidSettings, grpc.StatusCode.INVALID_ARGUMENT, None),
    (SpaceError, grpc.StatusCode.INVALID_ARGUMENT, None),
    (SearchSpaceExhausted, grpc.StatusCode.OUT_OF_RANGE, _exhausted),
    (Cancelled, grpc.StatusCode.CANCELLED, None),
    (_WrongCount, grpc.StatusCode.INTERNAL, None),
)


class SuggestionServicer(api_pb2_grpc.SuggestionServicer):
    """Serves one algorithm instance (shared by every experiment that calls this server)."""

    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm = algorithm
        self.converter = HistoryConverter()

    def GetSuggestions(
        self, request: api_pb2.GetSuggestionsRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetSuggestionsReply:
        return self._guarded(context, "GetSuggestions", lambda: self._get_suggestions(request, context))

    def ValidateAlgorithmSettings(
        self, request: api_pb2.ValidateAlgorithmSettingsRequest, context: grpc.ServicerContext
    ) -> api_pb2.ValidateAlgorithmSettingsReply:
        def run() -> api_pb2.ValidateAlgorithmSettingsReply:
            self.algorithm.validate(self._problem(request, context))
            return api_pb2.ValidateAlgorithmSettingsReply()

        return self._guarded(context, "ValidateAlgorithmSettings", run)

    def _get_suggestions(
        self, request: api_pb2.GetSuggestionsRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetSuggestionsReply:
        n = request.current_request_number
        if not 0 <= n <= MAX_SUGGESTIONS_PER_REQUEST:
            raise BadRequest(
                "current_request_number", n, f"must be between 0 and {MAX_SUGGESTIONS_PER_REQUEST} (ask again for more)"
            )
        problem = self._problem(request, context)
        self.algorithm.validate(problem)
        reply = api_pb2.GetSuggestionsReply(algorithm=request.experiment.spec.algorithm)
        if n == 0:
            return reply
        history = self.converter.history(
            problem.experiment, request.experiment.spec.objective, problem.objective, request.trials
        )
        proposal = self.algorithm.propose(problem, history, n)
        suggestions = proposal.suggestions
        if len(suggestions) > n or (len(suggestions) < n and not self.algorithm.may_return_fewer):
            raise _WrongCount(
                f"algorithm {self.algorithm.name!r} returned {len(suggestions)} suggestions for {n} requested"
            )
        reply.parameter_assignments.extend(_assignment_set(s) for s in suggestions)
        if proposal.settings is not None:
            del reply.algorithm.algorithm_settings[:]
            reply.algorithm.algorithm_settings.extend(settings_to_proto(proposal.settings))
        return reply

    def _problem(
        self,
        request: api_pb2.GetSuggestionsRequest | api_pb2.ValidateAlgorithmSettingsRequest,
        context: grpc.ServicerContext,
    ) -> Problem:
        if not request.HasField("experiment"):
            raise BadRequest("experiment", None, "required: the experiment to suggest for")
        experiment = request.experiment
        asked = experiment.spec.algorithm.algorithm_name
        if asked and asked != self.algorithm.name:
            raise BadRequest(
                "experiment.spec.algorithm.algorithmName", asked, f"this server serves {self.algorithm.name!r}"
            )
        return Problem(
            experiment=experiment.name,
            space=search_space_from_proto(experiment.spec),
            objective=objective_from_proto(experiment.spec.objective),
            settings=settings_from_proto(experiment.spec.algorithm.algorithm_settings),
            parallel_trial_count=experiment.spec.parallel_trial_count or None,
            # True once the client's deadline passed or it cancelled: long loops stop then.
            cancelled=lambda: not context.is_active(),
        )

    def _guarded(self, context: grpc.ServicerContext, method: str, call: Callable[[], _Reply]) -> _Reply:
        try:
            return call()
        except Exception as exc:  # every error leaves as a status, never as a traceback
            _abort(context, method, self.algorithm.name, exc)
            raise  # context.abort always raises; this only satisfies the type checker


def _abort(context: grpc.ServicerContext, method: str, algorithm: str, exc: Exception) -> None:

    for kind, code, before in _STATUS:
        if isinstance(exc, kind):
            if before is not None:
                before(context, exc)
            level = logging.ERROR if code is grpc.StatusCode.INTERNAL else logging.INFO
            # Each error shortens the values it echoes; this caps what it adds around them.
            message = clip(str(exc), MAX_STATUS_CHARS)
            logger.log(level, "%s -> %s: %s", method, code.name, message)
            context.abort(code, message)
    logger.exception("%s failed in algorithm %r", method, algorithm)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in algorithm {algorithm!r}: {type(exc).__name__}: {exc}"[:300])


def _assignment_set(s: Suggestion) -> api_pb2.GetSuggestionsReply.ParameterAssignments:
    return api_pb2.GetSuggestionsReply.ParameterAssignments(
        assignments=assignments_to_proto(s.assignments), trial_name=s.trial_name, labels=dict(s.labels)
    )


def _state_store(state_dir: str | os.PathLike[str] | None) -> StateStore:
    return DirectoryStateStore(state_dir) if state_dir else MemoryStateStore()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class BindError(OSError):
    """A port could not be bound; `port` says which one was asked for."""

    def __init__(self, message: str, port: int) -> None:
        self.port = port
        super().__init__(message)


def _bind(server: grpc.Server, host: str, port: int) -> int:
    try:
        bound = server.add_insecure_port(_address(host, port))
    except RuntimeError as exc:  # grpc reports a failed bind as RuntimeError
        raise BindError(f"cannot bind {_address(host, port)}: {exc}", port) from None
    if bound == 0:
        raise BindError(f"cannot bind {_address(host, port)}", port)
    return bound


def _build(
    algorithm_name: str, host: str, port: int, state_dir: str | os.PathLike[str] | None, max_workers: int,
    early_stopping_port: int | None = None, set_trial_status: TrialStatusSink | None = None,
) -> tuple[grpc.Server, int, int | None, health.HealthServicer]:
    algorithm = algorithm_class(algorithm_name)(_state_store(state_dir))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="suggestion"),
        # Without this a second server on a busy port would silently share it.
        options=[("grpc.so_reuseport", 0), *GRPC_MESSAGE_OPTIONS],
        interceptors=[UndecodableRequests()],
    )
    api_pb2_grpc.add_SuggestionServicer_to_server(SuggestionServicer(algorithm), server)
    # Every port serves every service; Katib's controller calls EarlyStopping on its own port (6788).
    api_pb2_grpc.add_EarlyStoppingServicer_to_server(EarlyStoppingServicer(set_trial_status), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (*HEALTH_SERVICE_NAMES, *EARLY_STOPPING_HEALTH_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, EARLY_STOPPING_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = _bind(server, host, port)
    early_bound = _bind(server, host, early_stopping_port) if early_stopping_port is not None else None
    return server, bound, early_bound, health_servicer


def make_server(
    algorithm_name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: str | os.PathLike[str] | None = None,
    max_workers: int = 8,
    set_trial_status: TrialStatusSink | None = None,
) -> tuple[grpc.Server, int]:
    """A bound, not yet started server for `algorithm_name`, and its port (port 0 picks one).

    It serves Suggestion and EarlyStopping (`set_trial_status` receives SetTrialStatus calls).
    Raises UnknownAlgorithm for a name not in the registry and OSError if it cannot bind.
    """
    server, bound, _early, _health = _build(algorithm_name, host, port, state_dir, max_workers,
                                            set_trial_status=set_trial_status)
    return server, bound


def serve(
    algorithm: str,
    host: str = "0.0.0.0",
    port: int = 6789,
    state_dir: str | os.PathLike[str] | None = None,
    *,
    early_stopping_port: int | None = None,
    grace: float = DEFAULT_GRACE_S,
    stop: threading.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set), then report NOT_SERVING and drain.

    Logs "listening on HOST:PORT" with the bound port once it accepts calls, and
    "early stopping listening on HOST:PORT" when `early_stopping_port` is given (0 picks one).
    """
    server, bound, early_bound, health_servicer = _build(algorithm, host, port, state_dir, max_workers=8,
                                                         early_stopping_port=early_stopping_port)
    stop = stop if stop is not None else threading.Event()
    previous = _install_handlers(stop)
    server.start()
    logger.info("suggestion server for algorithm %r listening on %s", algorithm, _address(host, bound))
    if early_bound is not None:
        logger.info("early stopping listening on %s", _address(host, early_bound))
    try:
        while not stop.wait(0.5):
            pass
    finally:
        logger.info("stopping: NOT_SERVING, draining in-flight calls for up to %.1f s", grace)
        health_servicer.enter_graceful_shutdown()
        server.stop(grace).wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("stopped")


def _install_handlers(stop: threading.Event) -> dict[signal.Signals, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # signals reach only the main thread; the caller stops us via `stop`

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
