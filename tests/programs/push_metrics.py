"""Trial program for tests: reports metrics with the Push collector (DBManager gRPC), as the
Katib SDK's report_metrics does: trial name from KATIB_TRIAL_NAME, address from
KATIB_DB_MANAGER_ADDRESS. Prints nothing that looks like a metric."""

from __future__ import annotations

import argparse
import os

import grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.metrics import now_rfc3339

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
args = parser.parse_args()
loss = (args.x - 1.0) ** 2
with grpc.insecure_channel(os.environ["KATIB_DB_MANAGER_ADDRESS"]) as channel:
    stub = api_pb2_grpc.DBManagerStub(channel)
    logs = [api_pb2.MetricLog(time_stamp=now_rfc3339(), metric=api_pb2.Metric(name="loss", value=repr(v)))
            for v in (loss + 1.0, loss)]
    stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
        trial_name=os.environ["KATIB_TRIAL_NAME"], observation_log=api_pb2.ObservationLog(metric_logs=logs)),
        timeout=10)
print("pushed", flush=True)
