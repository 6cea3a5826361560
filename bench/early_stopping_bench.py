"""Early-stopping benchmark: GetEarlyStoppingRules latency, and the cost of rule checking per
metric line in `kubenas run`.

1. GetEarlyStoppingRules over real gRPC (suggestion server on localhost) with N succeeded
   trials, each with a 50-point objective log in a DBManager over SQLite (localhost gRPC):
   - cold: a fresh server (nothing cached) reads every trial's log, 64 requests in flight;
   - warm: the same server asked again (succeeded trials' logs are cached);
   - baseline, measured in the same run: Katib's way, one blocking GetObservationLog per
     trial then the statistic, done by a client against the same DBManager.
2. Per metric line, what `kubenas run` does with a trial's stdout: parse it (StdoutCollector),
   store it (SQLite), and, with a medianstop rule, feed its values to the trial's StopWatch.
   The baseline is the same without a rule; measured with and without the SQLite write
   (whose commit time varies with the machine's load far more than the rule costs).

    .venv/bin/python bench/early_stopping_bench.py                 # 100 and 1,000 trials
    .venv/bin/python bench/early_stopping_bench.py --trials 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.collector import StdoutCollector
from controller.dbmanager import make_dbmanager_server
from controller.store import MetricLog
from controller.store_sqlite import SQLiteStore
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.early_stopping import Comparison, StopRule, StopWatch
from kubenas.trials import Objective, ObjectiveType
from suggestion.service import make_server

POINTS = 50
SUCCEEDED = api_pb2.TrialStatus.TrialConditionType.SUCCEEDED


def _fill(store: SQLiteStore, trials: int) -> None:
    for t in range(trials):
        store.report(f"t{t}", [MetricLog("acc", repr((t % 97) / 100 + i / 1000), f"2024-05-01T12:{i // 60:02d}:{i % 60:02d}Z")
                               for i in range(POINTS)])


def _request(trials: int, db: str) -> api_pb2.GetEarlyStoppingRulesRequest:
    exp = api_pb2.Experiment(name="bench")
    exp.spec.objective.type = api_pb2.MAXIMIZE
    exp.spec.objective.objective_metric_name = "acc"
    exp.spec.early_stopping.algorithm_name = "medianstop"
    request = api_pb2.GetEarlyStoppingRulesRequest(experiment=exp, db_manager_address=db)
    for t in range(trials):
        trial = request.trials.add(name=f"t{t}")
        trial.status.condition = SUCCEEDED
    return request


def _katib_baseline(trials: int, db: str, start_step: int = 4) -> float:
    """Katib's medianstop: one blocking GetObservationLog per trial, then the statistic."""
    with grpc.insecure_channel(db) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        averages = []
        for t in range(trials):
            reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name=f"t{t}", metric_name="acc"))
            first = [float(m.metric.value) for m in reply.observation_log.metric_logs[:start_step]]
            averages.append(sum(first) / len(first))
    return statistics.median(averages)


def rules_latency(trials: int, repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "kubenas.db")
        _fill(store, trials)
        db_server, db_port = make_dbmanager_server(store)
        db = f"127.0.0.1:{db_port}"
        request = _request(trials, db)
        cold, warm, base = [], [], []
        value = None
        for _ in range(repeat):
            server, port = make_server("random")
            server.start()
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = api_pb2_grpc.EarlyStoppingStub(channel)
                stub.GetEarlyStoppingRules(_request(0, db))  # connect; nothing to read
                t0 = time.perf_counter()
                reply = stub.GetEarlyStoppingRules(request)
                cold.append(time.perf_counter() - t0)
                for _ in range(3):
                    t0 = time.perf_counter()
                    stub.GetEarlyStoppingRules(request)
                    warm.append(time.perf_counter() - t0)
            server.stop(None)
            value = float(reply.early_stopping_rules[0].value)
            t0 = time.perf_counter()
            expected = _katib_baseline(trials, db)
            base.append(time.perf_counter() - t0)
            assert abs(expected - value) < 1e-9, (expected, value)
        db_server.stop(None)
        store.close()
    med = {k: statistics.median(v) for k, v in (("cold", cold), ("warm", warm), ("baseline", base))}
    return {"trials": trials, "points_per_trial": POINTS, **{f"{k}_ms": round(v * 1000, 2) for k, v in med.items()},
            "cold_vs_baseline": round(med["cold"] / med["baseline"], 3),
            "warm_vs_baseline": round(med["warm"] / med["baseline"], 4), "median": value}


def line_overhead(lines: int, repeat: int) -> dict[str, object]:
    objective = Objective(ObjectiveType.MAXIMIZE, "acc", additional_metric_names=("loss",))
    rule = StopRule("acc", -1.0, Comparison.LESS, 4)  # never met: every line is checked to the end
    text = [f"epoch={i} acc={0.5 + i / (10 * lines)!r} loss={1.0 / (i + 1)!r}\n" for i in range(lines)]

    def one(with_rule: bool, with_store: bool) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteStore(Path(tmp) / "kubenas.db") if with_store else None
            collector = StdoutCollector(objective.metric_names)
            watch = StopWatch([rule], objective) if with_rule else None
            t0 = time.perf_counter()
            for line in text:  # one event per line: the runner's worst case (no batching)
                found = collector.feed(line)
                if store is not None:
                    store.report("t", [MetricLog(p.name, p.stored_value(), p.timestamp) for p in found])
                if watch is not None:
                    watch.feed_all((p.name, p.value) for p in found)
            elapsed = time.perf_counter() - t0
            if store is not None:
                store.close()
            return elapsed / lines

    out: dict[str, object] = {"lines": lines}
    for label, with_store in (("parse", False), ("parse_store", True)):
        base, ruled = [], []
        for _ in range(repeat):  # interleaved, so drift in machine load hits both alike
            base.append(one(False, with_store))
            ruled.append(one(True, with_store))
        b, r = statistics.median(base), statistics.median(ruled)
        out[f"{label}_us_per_line"] = round(b * 1e6, 2)
        out[f"{label}_with_rule_us_per_line"] = round(r * 1e6, 2)
        out[f"{label}_ratio"] = round(r / b, 4)
    # the StopWatch alone, per line (two values per line, one of them the rule's metric)
    watch = StopWatch([rule], objective)
    pairs = [("acc", 0.5), ("loss", 1.0)] * lines
    t0 = time.perf_counter()
    watch.feed_all(pairs)
    out["stopwatch_only_us_per_line"] = round((time.perf_counter() - t0) / lines * 1e6, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", default="100,1000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "early_stopping.json"))
    args = parser.parse_args()
    out = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}",
           "rules": [rules_latency(int(n), args.repeat) for n in args.trials.split(",")],
           "per_line": line_overhead(args.lines, args.repeat)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
