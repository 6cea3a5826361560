"""Report epoch metrics to a DBManager with `ReportObservationLog` (Katib's Push collector).

The only trainer module that talks gRPC. The trial name comes from `KATIB_TRIAL_NAME`,
which Katib (and `kubenas run`) set in the trial's environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.metrics import now_rfc3339

__all__ = ["TRIAL_NAME_ENV", "PushError", "PushReporter", "trial_name_from_env"]

log = logging.getLogger(__name__)

TRIAL_NAME_ENV = "KATIB_TRIAL_NAME"


class PushError(RuntimeError):
    """The DBManager could not be reached or refused the observations."""


def trial_name_from_env() -> str | None:
    return os.environ.get(TRIAL_NAME_ENV) or None


class PushReporter:
    """Callable `(epoch, metrics)` that sends one ObservationLog per epoch."""

    def __init__(self, endpoint: str, trial_name: str, timeout: float = 10.0) -> None:
        self.endpoint, self.trial_name, self.timeout = endpoint, trial_name, timeout
        self._channel = grpc.insecure_channel(endpoint)
        self._stub = api_pb2_grpc.DBManagerStub(self._channel)

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        stamp = now_rfc3339()
        request = api_pb2.ReportObservationLogRequest(
            trial_name=self.trial_name,
            observation_log=api_pb2.ObservationLog(
                metric_logs=[
                    api_pb2.MetricLog(time_stamp=stamp, metric=api_pb2.Metric(name=name, value=repr(float(value))))
                    for name, value in metrics.items()
                ]
            ),
        )
        try:
            self._stub.ReportObservationLog(request, timeout=self.timeout, wait_for_ready=True)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            raise PushError(f"--push-endpoint {self.endpoint}: ReportObservationLog failed for trial "
                            f"{self.trial_name!r} at epoch {epoch}: {code} {detail}") from None
        log.debug("pushed %d metrics for %s epoch %d", len(metrics), self.trial_name, epoch)

    def close(self) -> None:
        self._channel.close()
