"""GetSuggestions latency of evolution, bayesian and tpe against random, over real gRPC.

Each algorithm is served by its own `kubenas suggestion serve` process (as in a pod); this
process is the client. For histories of 100 and 300 trials on an HPO space (4 continuous
and integer parameters, log scales included) and the NAS-Bench-201 cell (search_mode
nb201), it times `--calls` GetSuggestions calls asking for one assignment and `--calls`
asking for a batch of 5 (parallel trials), and reports medians. The history is what an
experiment sends: 9 in 10 trials succeeded with a synthetic reward, 1 in 10 failed, and 3
more are running. The baseline is `random` on the same space and history, measured in the
same run; the `algorithm CPU ms` column is validate + suggest alone, in this process (CPU
time: on a shared machine wall time also measures the other tenants).

Run: .venv/bin/python bench/model_based_latency.py [--calls 15] [--out bench/results/model_based.md]
     [--algorithms random,cmaes,sobol] [--sizes 100,1000]
`random` is always measured (the baseline); an algorithm is measured on the spaces it serves.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suggest_latency import _cpu_ms, _experiment, _p, _timed, served

from kubenas.algorithm_settings import parse_settings
from kubenas.algorithm_settings.model_free import RandomSettings
from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import trial_to_proto
from kubenas.space import Distribution, GraphConfig, NasConfig, Operation, SearchSpace
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import Algorithm, Problem
from suggestion.algorithms.points import point_space
from suggestion.algorithms.registry import algorithm_class

ROOT = Path(__file__).resolve().parent.parent
MACHINE = "2-core AMD EPYC (Zen 4, AVX-512) VM, no GPU"
OBJECTIVE = Objective(ObjectiveType.MAXIMIZE, "accuracy")
ALGORITHMS = ("random", "evolution", "bayesian", "tpe")
HISTORY_SIZES = (100, 300)
BATCHES = (1, 5)
RUNNING = 3

HPO = SearchSpace(parameters=(
    _p("lr", "double", min="0.0001", max="0.1", distribution=Distribution.LOG_UNIFORM),
    _p("momentum", "double", min="0.5", max="0.99"),
    _p("units", "int", min="8", max="256", distribution=Distribution.LOG_UNIFORM),
    _p("optimizer", "categorical", list=("sgd", "adam", "rmsprop")),
))
NB201 = SearchSpace(nas_config=NasConfig(GraphConfig(5, (32, 32, 3), (10,)), (
    Operation("none"), Operation("skip_connect"),
    Operation("nor_conv", (_p("filter_size", "categorical", list=("1", "3")),)),
    Operation("avg_pool", (_p("pool_size", "categorical", list=("3",)),)),
)))
SPACES: dict[str, tuple[SearchSpace, dict[str, str]]] = {
    "hpo (4 params)": (HPO, {}),
    "nb201 (6-edge cell)": (NB201, {"search_mode": "nb201"}),
}


def history(space: SearchSpace, settings: dict[str, str], size: int) -> list[TrialRecord]:
    """`size` finished trials (1 in 10 failed) and RUNNING running ones, at random points."""
    points = point_space(space, dict(parse_settings(settings, RandomSettings)))
    rng = random.Random(size)
    out = []
    for i in range(size + RUNNING):
        point = points.random(rng)
        reward = math.sin(sum(float(v) for v in point))  # any smooth function of the point
        if i >= size:
            out.append(TrialRecord(f"run-{i:05d}", points.assignments(point), TrialCondition.RUNNING))
            continue
        failed = i % 10 == 9
        out.append(TrialRecord(
            f"bench-{i:05d}", points.assignments(point),
            TrialCondition.FAILED if failed else TrialCondition.SUCCEEDED,
            {} if failed else {"accuracy": reward},
            completion_time=f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"))
    return out


def _validate_and_suggest(algo: Algorithm, problem: Problem, trials: list[TrialRecord], n: int) -> None:
    algo.validate(problem)
    algo.suggest(problem, trials, n)


def measure(calls: int, algorithms: tuple[str, ...] = ALGORITHMS,
            sizes: tuple[int, ...] = HISTORY_SIZES) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for algorithm in ("random", *(a for a in algorithms if a != "random")):
        cls = algorithm_class(algorithm)
        with served(algorithm) as stub:
            for space_name, (space, settings) in SPACES.items():
                if not (cls.supports_nas if space.is_nas else cls.supports_hpo):
                    continue
                exp = _experiment(space, algorithm, settings)
                for size in sizes:
                    trials = history(space, settings, size)
                    problem = Problem("bench", space, OBJECTIVE, {"random_state": "42", **settings})
                    algo = algorithm_class(algorithm)()
                    for batch in BATCHES:
                        req = api_pb2.GetSuggestionsRequest(
                            experiment=exp, current_request_number=batch, total_request_number=len(trials) + batch,
                            trials=[trial_to_proto(t, OBJECTIVE) for t in trials])
                        wall = _timed(partial(stub.GetSuggestions, req, timeout=60), calls, warmup=2)

                        cpu = _cpu_ms(partial(_validate_and_suggest, algo, problem, trials, batch),
                                      max(3, calls // 2))
                        rows.append({"algorithm": algorithm, "space": space_name, "trials": size, "n": batch,
                                     "median_ms": statistics.median(wall), "max_ms": max(wall), "cpu_ms": cpu})
                        print(f"{algorithm:>9} {space_name:<20} {size:>4} trials n={batch}: "
                              f"median {rows[-1]['median_ms']:.1f} ms, cpu {cpu:.1f} ms", file=sys.stderr)
    return rows


def report(rows: list[dict[str, object]], calls: int, load: tuple[str, str],
           sizes: tuple[int, ...] = HISTORY_SIZES) -> str:
    base = {(r["space"], r["trials"], r["n"]): float(r["median_ms"]) for r in rows  # type: ignore[arg-type]
            if r["algorithm"] == "random"}
    lines = [
        "# Model-based algorithms: GetSuggestions latency",
        "",
        (f"Machine: {MACHINE}. Python {platform.python_version()}. Measured "
         f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/model_based_latency.py --calls {calls}`."),
        "",
        ("One `kubenas suggestion serve` process per algorithm; each row is the median of "
         f"{calls} GetSuggestions calls (after 2 warm-up calls) carrying every trial, asking for n"),
        "assignments. Baseline: `random` on the same space, history and n, in the same run.",
        f"Histories: 9/10 succeeded, 1/10 failed, plus {RUNNING} running trials.",
        f"Load average (1 min) at start / end: {load[0]} / {load[1]} on 2 cores.",
        "",
        "| algorithm | space | trials | n | median ms | max ms | vs random | algorithm CPU ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = float(r["median_ms"]) / base[(r["space"], r["trials"], r["n"])]  # type: ignore[arg-type]
        lines.append(f"| {r['algorithm']} | {r['space']} | {r['trials']} | {r['n']} | {float(r['median_ms']):.1f} | "  # type: ignore[arg-type]
                     f"{float(r['max_ms']):.1f} | {ratio:.1f}x | {float(r['cpu_ms']):.1f} |")  # type: ignore[arg-type]
    largest = max(sizes)
    worst = max(float(r["median_ms"]) for r in rows if r["trials"] == largest)  # type: ignore[arg-type]
    verdict = "met" if worst < 1000 else "NOT met"
    goal = f"Goal: GetSuggestions at {largest} trials well under a second. Worst median: {worst:.0f} ms ({verdict})."
    lines += ["", goal, ""]
    return "\n".join(lines)


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=15, help="timed calls per row (default 15)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "model_based.md")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS),
                        help=f"comma-separated registry names (default {','.join(ALGORITHMS)})")
    parser.add_argument("--sizes", default=",".join(map(str, HISTORY_SIZES)),
                        help="comma-separated history sizes (default 100,300)")
    args = parser.parse_args(argv)
    algorithms = tuple(a for a in args.algorithms.split(",") if a)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    load_start = _load()
    rows = measure(args.calls, algorithms, sizes)
    text = report(rows, args.calls, (load_start, _load()), sizes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
