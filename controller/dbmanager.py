"""The DBManager gRPC service (Katib api.v1.beta1) over any `ObservationStore`.

Transport only: requests become store calls, `InvalidLogError` becomes INVALID_ARGUMENT
with the field named, `StoreError` becomes INTERNAL. Trainers using the Push collector
call `ReportObservationLog`; the controller reads with `GetObservationLog`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import TYPE_CHECKING, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controller.store import InvalidLogError, MetricLog, ObservationStore, StoreError, open_store
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.error_text import MAX_STATUS_CHARS, clip, invalid_value
from kubenas.grpc_requests import UndecodableRequests
from kubenas.proto_convert import GRPC_MESSAGE_OPTIONS

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "SERVICE_NAME",
    "DBManagerClient",
    "DBManagerServicer",
    "make_dbmanager_server",
    "serve_dbmanager",
]

log = logging.getLogger(__name__)

SERVICE_NAME = api_pb2.DESCRIPTOR.services_by_name["DBManager"].full_name  # api.v1.beta1.DBManager
T = TypeVar("T")


class DBManagerServicer(api_pb2_grpc.DBManagerServicer):
    """Katib's DBManager over `store`; the store is shared, never closed here."""

    def __init__(self, store: ObservationStore) -> None:
        self.store = store

    def _call(self, context: grpc.ServicerContext, action: Callable[[], T], prefix: str = "") -> T:
        try:
            return action()
        except InvalidLogError as exc:
            field = prefix + exc.field if exc.field.startswith("metric_logs") else exc.field
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          clip(invalid_value(field, exc.value, exc.allowed), MAX_STATUS_CHARS))
        except StoreError as exc:
            log.error("store failed: %s", exc)
            context.abort(grpc.StatusCode.INTERNAL, clip(str(exc), MAX_STATUS_CHARS))
        raise AssertionError("unreachable: context.abort raises")

    def ReportObservationLog(self, request: api_pb2.ReportObservationLogRequest,
                             context: grpc.ServicerContext) -> api_pb2.ReportObservationLogReply:
        logs = [MetricLog(m.metric.name, m.metric.value, m.time_stamp)
                for m in request.observation_log.metric_logs]
        self._call(context, lambda: self.store.report(request.trial_name, logs), "observation_log.")
        return api_pb2.ReportObservationLogReply()

    def GetObservationLog(self, request: api_pb2.GetObservationLogRequest,
                          context: grpc.ServicerContext) -> api_pb2.GetObservationLogReply:
        if not request.trial_name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "trial_name: invalid value '': must not be empty")
        logs = self._call(context, lambda: self.store.get(
            request.trial_name, request.metric_name, request.start_time, request.end_time))
        return api_pb2.GetObservationLogReply(observation_log=api_pb2.ObservationLog(metric_logs=[
            api_pb2.MetricLog(time_stamp=stamp, metric=api_pb2.Metric(name=name, value=value))
            for name, value, stamp in logs]))

    def DeleteObservationLog(self, request: api_pb2.DeleteObservationLogRequest,
                             context: grpc.ServicerContext) -> api_pb2.DeleteObservationLogReply:
        if not request.trial_name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "trial_name: invalid value '': must not be empty")
        self._call(context, lambda: self.store.delete(request.trial_name))
        return api_pb2.DeleteObservationLogReply()


def make_dbmanager_server(store: ObservationStore, host: str = "127.0.0.1", port: int = 0,
                          max_workers: int = 8) -> tuple[grpc.Server, int]:
    """A started DBManager server with health (SERVING for "" and the service) and
    reflection; returns it with the bound port. Raises OSError if it cannot listen."""
    # SO_REUSEPORT off: a second server on a taken port must fail, not silently share it.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="dbmanager"),
                         options=[("grpc.so_reuseport", 0), *GRPC_MESSAGE_OPTIONS],
                         # invalid UTF-8 in a request: INVALID_ARGUMENT, not a logged traceback
                         interceptors=[UndecodableRequests()])
    api_pb2_grpc.add_DBManagerServicer_to_server(DBManagerServicer(store), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio raises RuntimeError when it cannot bind
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, bound


def serve_dbmanager(db_url: str, host: str = "0.0.0.0", port: int = 6789,
                    grace_s: float = 5.0) -> None:
    """Serve DBManager over the store at `db_url` until SIGTERM/SIGINT, then stop
    gracefully (in-flight calls get `grace_s`). Raises StoreError for a bad `db_url`."""
    store = open_store(db_url)
    try:
        server, bound = make_dbmanager_server(store, host, port)
        stopped = threading.Event()

        def stop(signum: int, _frame: object) -> None:
            log.info("signal %d: stopping DBManager (grace %.1fs)", signum, grace_s)
            stopped.set()
            server.stop(grace_s)

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, stop)
        log.info("DBManager serving %s on %s:%d", db_url, host, bound)
        server.wait_for_termination()
        stopped.wait(grace_s)
    finally:
        store.close()


class DBManagerClient:
    """A small client for tests, the controller and programs pushing metrics."""

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        self._channel = grpc.insecure_channel(address, options=GRPC_MESSAGE_OPTIONS)
        self._stub = api_pb2_grpc.DBManagerStub(self._channel)
        self.timeout_s = timeout_s

    def report(self, trial_name: str, logs: Iterable[MetricLog | tuple[str, str, str]]) -> None:
        request = api_pb2.ReportObservationLogRequest(
            trial_name=trial_name,
            observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp=stamp, metric=api_pb2.Metric(name=name, value=value))
                for name, value, stamp in logs]))
        self._stub.ReportObservationLog(request, timeout=self.timeout_s)

    def get(self, trial_name: str, metric_name: str = "", start_time: str = "",
            end_time: str = "") -> list[MetricLog]:
        reply = self._stub.GetObservationLog(api_pb2.GetObservationLogRequest(
            trial_name=trial_name, metric_name=metric_name, start_time=start_time,
            end_time=end_time), timeout=self.timeout_s)
        return [MetricLog(m.metric.name, m.metric.value, m.time_stamp)
                for m in reply.observation_log.metric_logs]

    def delete(self, trial_name: str) -> None:
        self._stub.DeleteObservationLog(
            api_pb2.DeleteObservationLogRequest(trial_name=trial_name), timeout=self.timeout_s)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
