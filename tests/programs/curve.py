"""Trial program for early-stopping tests: a learning curve whose level is a parameter.

Prints `step=i acc=level*i/steps` for i = 1..steps (Katib's `name=value` format), sleeping
`--sleep` seconds before each step, then `finished` on stderr; with `--push` it reports each
step to the DBManager instead (Push collector: KATIB_DB_MANAGER_ADDRESS, KATIB_TRIAL_NAME) and
prints `pushed step=i`. Deterministic: a trial's whole curve is known from its level, so a
test knows which trials a median rule stops.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.metrics import now_rfc3339


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--level", type=float, required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--push", action="store_true", help="report to the DBManager (Push collector)")
    args = parser.parse_args()
    stub = None
    if args.push:
        stub = api_pb2_grpc.DBManagerStub(grpc.insecure_channel(os.environ["KATIB_DB_MANAGER_ADDRESS"]))
    for step in range(1, args.steps + 1):
        time.sleep(args.sleep)
        acc = args.level * step / args.steps
        if stub is None:
            print(f"step={step} acc={acc!r}", flush=True)
            continue
        log = api_pb2.MetricLog(time_stamp=now_rfc3339(), metric=api_pb2.Metric(name="acc", value=repr(acc)))
        stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name=os.environ["KATIB_TRIAL_NAME"], observation_log=api_pb2.ObservationLog(metric_logs=[log])),
            timeout=10)
        print(f"pushed step={step}", flush=True)
    print("finished", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
