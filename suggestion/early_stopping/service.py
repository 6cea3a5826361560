"""The EarlyStopping gRPC service (api.v1.beta1, Katib's wire contract) over the registry.

Transport only: the request becomes a `RulesProblem`, the algorithm named by
`experiment.spec.early_stopping.algorithm_name` computes the rules, metric logs come from
the DBManager at `request.db_manager_address` (Katib's GetObservationLog), domain errors
become status codes. `SetTrialStatus` hands the trial name to a sink given by whoever
hosts the service (the cluster patches the Trial); without one it is FAILED_PRECONDITION.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.early_stopping import rule_to_proto
from kubenas.error_text import MAX_STATUS_CHARS, clip, invalid_value
from kubenas.proto_convert import (
    GRPC_MESSAGE_OPTIONS,
    objective_from_proto,
    settings_from_proto,
    trial_from_proto,
)
from kubenas.space import SpaceError
from kubenas.trials import TrialCondition
from suggestion.algorithms.base import InvalidSettings
from suggestion.early_stopping.base import EarlyStoppingAlgorithm, RulesProblem
from suggestion.early_stopping.registry import (
    UnknownEarlyStopping,
    early_stopping_class,
    early_stopping_names,
)

__all__ = [
    "EARLY_STOPPING_HEALTH_NAMES",
    "EARLY_STOPPING_SERVICE_NAME",
    "DBManagerUnavailable",
    "EarlyStoppingServicer",
    "TrialStatusSink",
]

log = logging.getLogger(__name__)

EARLY_STOPPING_SERVICE_NAME: str = api_pb2.DESCRIPTOR.services_by_name["EarlyStopping"].full_name
# Katib's controller names it like the suggestion probe: "manager.v1beta1.<Service>".
EARLY_STOPPING_HEALTH_NAMES = ("manager.v1beta1.EarlyStopping", EARLY_STOPPING_SERVICE_NAME)
#: Called with a trial name by SetTrialStatus; raises to report a failure (LookupError: NOT_FOUND).
TrialStatusSink = Callable[[str], None]
DB_TIMEOUT_S = 30.0
# Requests in flight at once when reading many trials' logs (one round trip each otherwise).
_PIPELINE = 64
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")

_Reply = TypeVar("_Reply")


class _BadRequest(ValueError):
    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(invalid_value(field, value, allowed))


class DBManagerUnavailable(RuntimeError):
    """The DBManager could not be read; becomes UNAVAILABLE (the caller may retry)."""


class _NoSink(RuntimeError):
    pass


_STATUS: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (_BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidSettings, grpc.StatusCode.INVALID_ARGUMENT),
    (SpaceError, grpc.StatusCode.INVALID_ARGUMENT),
    (DBManagerUnavailable, grpc.StatusCode.UNAVAILABLE),
    (_NoSink, grpc.StatusCode.FAILED_PRECONDITION),
    (LookupError, grpc.StatusCode.NOT_FOUND),  # a sink asked for a trial it does not know
)


class _LogCache:
    """Objective values of Succeeded trials, whose logs no longer change, by (db, trial, metric).

    Bounded LRU so a long-lived server for many experiments keeps a fixed footprint."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[str, str, str], tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> tuple[float, ...] | None:
        with self._lock:
            values = self._data.get(key)
            if values is not None:
                self._data.move_to_end(key)
            return values

    def put(self, key: tuple[str, str, str], values: tuple[float, ...]) -> None:
        with self._lock:
            self._data[key] = values
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)


def _db_address(address: str) -> str:
    match = _HOST_PORT.match(address)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise _BadRequest("db_manager_address", address,
                          "must be HOST:PORT of the DBManager, e.g. katib-db-manager.kubeflow:6789")
    return address


def _numbers(reply: api_pb2.GetObservationLogReply) -> tuple[float, ...]:
    out = []
    for entry in reply.observation_log.metric_logs:
        try:
            value = float(entry.metric.value)
        except ValueError:
            continue  # "unavailable" or a text (genotype): nothing to average
        if math.isfinite(value):
            out.append(value)
    return tuple(out)


class EarlyStoppingServicer(api_pb2_grpc.EarlyStoppingServicer):
    """Serves every registered early-stopping algorithm; thread-safe."""

    def __init__(self, set_trial_status: TrialStatusSink | None = None) -> None:
        self.set_trial_status = set_trial_status
        self._algorithms: dict[str, EarlyStoppingAlgorithm] = {}
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._cache = _LogCache()

    # --- RPCs -------------------------------------------------------------------------------
    def ValidateEarlyStoppingSettings(
        self, request: api_pb2.ValidateEarlyStoppingSettingsRequest, context: grpc.ServicerContext
    ) -> api_pb2.ValidateEarlyStoppingSettingsReply:
        def run() -> api_pb2.ValidateEarlyStoppingSettingsReply:
            if not request.HasField("early_stopping"):
                raise _BadRequest("early_stopping", None, "required: the experiment's earlyStopping spec")
            spec = request.early_stopping
            self._algorithm(spec.algorithm_name, "early_stopping.algorithm_name").parse(
                settings_from_proto(spec.algorithm_settings))
            return api_pb2.ValidateEarlyStoppingSettingsReply()

        return self._guarded(context, "ValidateEarlyStoppingSettings", run)

    def GetEarlyStoppingRules(
        self, request: api_pb2.GetEarlyStoppingRulesRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetEarlyStoppingRulesReply:
        return self._guarded(context, "GetEarlyStoppingRules", lambda: self._rules(request))

    def SetTrialStatus(
        self, request: api_pb2.SetTrialStatusRequest, context: grpc.ServicerContext
    ) -> api_pb2.SetTrialStatusReply:
        def run() -> api_pb2.SetTrialStatusReply:
            if not request.trial_name:
                raise _BadRequest("trial_name", request.trial_name, "must name the trial to mark EarlyStopped")
            if self.set_trial_status is None:
                raise _NoSink("this server has no trial status sink: the runtime that watches the trial's "
                              "metrics (kubenas run, the kubenas controller) marks it EarlyStopped itself")
            self.set_trial_status(request.trial_name)
            log.info("trial %s marked EarlyStopped", request.trial_name)
            return api_pb2.SetTrialStatusReply()

        return self._guarded(context, "SetTrialStatus", run)

    # --- translation ------------------------------------------------------------------------
    def _rules(self, request: api_pb2.GetEarlyStoppingRulesRequest) -> api_pb2.GetEarlyStoppingRulesReply:
        if not request.HasField("experiment"):
            raise _BadRequest("experiment", None, "required: the experiment whose trials to stop early")
        spec = request.experiment.spec
        algorithm = self._algorithm(spec.early_stopping.algorithm_name,
                                    "experiment.spec.early_stopping.algorithm_name")
        if not spec.objective.objective_metric_name:
            raise _BadRequest("experiment.spec.objective.objective_metric_name", "",
                              "required: the metric the rules are about")
        objective = objective_from_proto(spec.objective)
        address = _db_address(request.db_manager_address)
        problem = RulesProblem(
            experiment=request.experiment.name,
            objective=objective,
            settings=settings_from_proto(spec.early_stopping.algorithm_settings),
            trials=[trial_from_proto(t, objective) for t in request.trials],
        )
        algorithm.parse(problem.settings)  # bad settings are INVALID_ARGUMENT before any DB read
        succeeded = {t.name for t in problem.trials if t.condition is TrialCondition.SUCCEEDED}
        # One pipelined read of what medianstop needs; later asks hit the cache.
        self._fetch(address, objective.metric_name, sorted(succeeded), cache=True)

        def fetch_log(trial: str, metric: str) -> tuple[float, ...]:
            # A finished (Succeeded) trial's log no longer changes, so it is cached; others are read afresh.
            return self._fetch(address, metric, [trial], cache=trial in succeeded)[trial]

        rules = algorithm.rules(problem, fetch_log)
        return api_pb2.GetEarlyStoppingRulesReply(early_stopping_rules=[rule_to_proto(r) for r in rules])

    def _fetch(self, address: str, metric: str, trials: Sequence[str], cache: bool) -> dict[str, tuple[float, ...]]:
        """Each trial's numeric `metric` values from the DBManager, many requests in flight at once."""
        out: dict[str, tuple[float, ...]] = {}
        missing = []
        for trial in trials:
            cached = self._cache.get((address, trial, metric)) if cache else None
            if cached is None:
                missing.append(trial)
            else:
                out[trial] = cached
        if not missing:
            return out
        stub = api_pb2_grpc.DBManagerStub(self._channel(address))
        try:
            for start in range(0, len(missing), _PIPELINE):
                chunk = missing[start:start + _PIPELINE]
                calls = [stub.GetObservationLog.future(
                    api_pb2.GetObservationLogRequest(trial_name=t, metric_name=metric), timeout=DB_TIMEOUT_S)
                    for t in chunk]
                for trial, call in zip(chunk, calls, strict=True):
                    values = _numbers(call.result())
                    if cache:
                        self._cache.put((address, trial, metric), values)
                    out[trial] = values
        except grpc.RpcError as exc:
            raise DBManagerUnavailable(f"reading observation logs from the DBManager at {address} failed: "
                                       f"{exc.code().name}: {exc.details()}") from None  # type: ignore[attr-defined]
        return out

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = grpc.insecure_channel(address, options=GRPC_MESSAGE_OPTIONS)
                self._channels[address] = channel
            return channel

    def _algorithm(self, name: str, field: str) -> EarlyStoppingAlgorithm:
        with self._lock:
            algorithm = self._algorithms.get(name)
            if algorithm is None:
                try:
                    algorithm = early_stopping_class(name)()
                except UnknownEarlyStopping:
                    raise _BadRequest(field, name, f"must be one of: {', '.join(early_stopping_names())}") from None
                self._algorithms[name] = algorithm
            return algorithm

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def _guarded(self, context: grpc.ServicerContext, method: str, call: Callable[[], _Reply]) -> _Reply:
        try:
            return call()
        except Exception as exc:  # every error leaves as a status, never as a traceback
            for kind, code in _STATUS:
                if isinstance(exc, kind):
                    message = clip(str(exc), MAX_STATUS_CHARS)
                    log.info("%s -> %s: %s", method, code.name, message)
                    context.abort(code, message)
            log.exception("%s failed", method)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(exc).__name__}: {exc}"[:300])
            raise  # context.abort always raises; this only satisfies the type checker
