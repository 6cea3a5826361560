"""GetSuggestions latency of pbt against random, over real gRPC, at 100 and 1,000 trials.

Each row is a `kubenas suggestion serve` process (as in a pod) and this process is the
client. The history is a pbt experiment's: built by the algorithm itself (population 40,
truncation 0.2, the settings Katib's UI fills in) five trials at a time, 1 in 10 failed,
the others succeeded with a random value, plus 3 running trials; every trial carries its
generation / parent / member labels. pbt is measured twice: on a server without a state
directory (labels only) and on one with `--state-dir` where each recent trial's directory
holds a 1 MiB checkpoint, so each proposal also copies its parent's (Katib's behaviour).
Baseline: `random` on the same space and history, in the same run. The `algorithm CPU ms`
column is validate + suggest in this process (no directories).

Run: .venv/bin/python bench/pbt_latency.py [--calls 15] [--sizes 100,1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suggest_latency import _cpu_ms, _experiment, _p, _timed, served

from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import trial_to_proto
from kubenas.space import Distribution, SearchSpace
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import Algorithm, Problem
from suggestion.algorithms.pbt import Pbt
from suggestion.algorithms.registry import algorithm_class

MACHINE = "2-core AMD EPYC (Zen 4, AVX-512) VM, no GPU"
OBJECTIVE = Objective(ObjectiveType.MAXIMIZE, "accuracy")
SETTINGS = {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "40",
            "truncation_threshold": "0.2"}
SPACE = SearchSpace(parameters=(
    _p("lr", "double", min="0.0001", max="0.1", distribution=Distribution.LOG_UNIFORM),
    _p("momentum", "double", min="0.5", max="0.99"),
    _p("units", "int", min="8", max="256", distribution=Distribution.LOG_UNIFORM),
    _p("optimizer", "categorical", list=("sgd", "adam", "rmsprop")),
))
BATCHES = (1, 5)
RUNNING = 3
CHECKPOINT_BYTES = 1 << 20
RECENT = 200  # trials whose directories hold a checkpoint (every possible parent is among them)


def pbt_history(size: int) -> list[TrialRecord]:
    algo, rng = Pbt(), random.Random(size)
    problem = Problem("bench", SPACE, OBJECTIVE, {**SETTINGS, "random_state": "42"})
    out: list[TrialRecord] = []
    while len(out) < size + RUNNING:
        for s in algo.suggest(problem, out, 5):
            i = len(out)
            if i >= size + RUNNING:
                break
            condition = TrialCondition.RUNNING if i >= size else \
                TrialCondition.FAILED if i % 10 == 9 else TrialCondition.SUCCEEDED
            metrics = {"accuracy": rng.random()} if condition is TrialCondition.SUCCEEDED else {}
            stamp = f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
            out.append(TrialRecord(s.trial_name, dict(s.assignments), condition, metrics, dict(s.labels),
                                   completion_time=None if condition is TrialCondition.RUNNING else stamp))
    return out


def checkpoints(root: Path, trials: list[TrialRecord]) -> None:
    blob = os.urandom(CHECKPOINT_BYTES)
    for t in trials[-RECENT:]:
        directory = root / "bench" / t.name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "training.pt").write_bytes(blob)


def _validate_and_suggest(algo: Algorithm, problem: Problem, trials: list[TrialRecord], n: int) -> None:
    algo.validate(problem)
    algo.suggest(problem, trials, n)


def measure(calls: int, sizes: tuple[int, ...]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    histories = {size: pbt_history(size) for size in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        for label, algorithm, state in (("random", "random", None), ("pbt", "pbt", None),
                                        ("pbt + 1 MiB checkpoint copies", "pbt", Path(tmp))):
            if state is not None:
                for trials in histories.values():
                    checkpoints(state, trials)
            settings = SETTINGS if algorithm == "pbt" else {}
            exp = _experiment(SPACE, algorithm, settings)
            exp.name = "bench"
            with served(algorithm, state) as stub:
                for size, trials in histories.items():
                    problem = Problem("bench", SPACE, OBJECTIVE, {"random_state": "42", **settings})
                    algo = algorithm_class(algorithm)()
                    for n in BATCHES:
                        req = api_pb2.GetSuggestionsRequest(
                            experiment=exp, current_request_number=n, total_request_number=len(trials) + n,
                            trials=[trial_to_proto(t, OBJECTIVE) for t in trials])
                        wall = _timed(partial(stub.GetSuggestions, req, timeout=60), calls, warmup=2)
                        cpu = _cpu_ms(partial(_validate_and_suggest, algo, problem, trials, n), max(3, calls // 2))
                        rows.append({"algorithm": label, "trials": size, "n": n,
                                     "median_ms": statistics.median(wall), "max_ms": max(wall), "cpu_ms": cpu})
                        print(f"{label:>30} {size:>5} trials n={n}: median {rows[-1]['median_ms']:.1f} ms, "
                              f"cpu {cpu:.1f} ms", file=sys.stderr)
    return rows


def report(rows: list[dict[str, object]], calls: int, load: tuple[str, str]) -> str:
    base = {(r["trials"], r["n"]): float(r["median_ms"]) for r in rows if r["algorithm"] == "random"}  # type: ignore[arg-type]
    lines = [
        f"Machine: {MACHINE}. Python {platform.python_version()}. Measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/pbt_latency.py --calls {calls}`; "
        f"load average (1 min) at start / end {load[0]} / {load[1]} on 2 cores.",
        "",
        "| server | trials | n | median ms | max ms | vs random | algorithm CPU ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = float(r["median_ms"]) / base[(r["trials"], r["n"])]  # type: ignore[arg-type]
        lines.append(f"| {r['algorithm']} | {r['trials']} | {r['n']} | {float(r['median_ms']):.1f} | "  # type: ignore[arg-type]
                     f"{float(r['max_ms']):.1f} | {ratio:.1f}x | {float(r['cpu_ms']):.1f} |")  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=15, help="timed calls per row (default 15)")
    parser.add_argument("--sizes", default="100,1000", help="comma-separated history sizes (default 100,1000)")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    start = _load()
    rows = measure(args.calls, sizes)
    print(report(rows, args.calls, (start, _load())))


if __name__ == "__main__":
    main()
