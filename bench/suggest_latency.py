"""GetSuggestions latency of the random and grid servers over real gRPC on localhost.

Each algorithm is served by a real `kubenas suggestion serve` process (its own process, as
in a pod); this process is the client. For 0, 100 and 1,000 trials of history it times
`--calls` GetSuggestions calls (one assignment each, the controller's usual ask) and reports
median and p99. Two references are measured in the same run: the transport floor (the same
server asked for zero assignments with no history: one round trip plus request checks) and
the in-process cost (proto -> domain conversion + `suggest`, no gRPC), so the table shows
where the time goes.

Run: .venv/bin/python bench/suggest_latency.py [--calls 200] [--out bench/results/suggest.md]

Each measurement is one function returning rows; `main()` runs them all and writes the
report, so further measurements (e.g. `kubenas run` per-trial overhead) slot in beside.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.proto_convert import (
    objective_from_proto,
    objective_to_proto,
    search_space_from_proto,
    search_space_to_proto,
    settings_from_proto,
    trial_from_proto,
    trial_to_proto,
)
from kubenas.space import (
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    SearchSpace,
)
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import Problem
from suggestion.algorithms.registry import algorithm_class
from suggestion.convert import HistoryConverter

ROOT = Path(__file__).resolve().parent.parent
MACHINE = "2-core Intel Xeon VM, no GPU"
HISTORY_SIZES = (0, 100, 1000)
OBJECTIVE = Objective(ObjectiveType.MAXIMIZE, "accuracy")


def _p(name: str, ptype: str, **fs: object) -> ParameterSpec:
    return ParameterSpec(name, ParameterType(ptype), FeasibleSpace(**fs))  # type: ignore[arg-type]


# HPO: a 1,280-point grid, so grid still has new points after 1,000 trials.
HPO_SPACE = SearchSpace(parameters=(
    _p("lr", "double", min="0.01", max="0.1", step="0.01"),
    _p("num_layers", "int", min="1", max="8"),
    _p("batch_size", "discrete", list=("16", "32", "64", "128")),
    _p("optimizer", "categorical", list=("sgd", "adam", "rmsprop", "adagrad")),
))
# NAS: 6 expanded ops, 4 layers: 82,944 macro architectures.
NAS_SPACE = SearchSpace(nas_config=NasConfig(GraphConfig(4, (32, 32, 3), (10,)), (
    Operation("convolution", (_p("filter_size", "categorical", list=("3", "5")),
                              _p("num_filter", "categorical", list=("32", "64")))),
    Operation("reduction", (_p("reduction_type", "categorical", list=("max_pooling", "avg_pooling")),
                            _p("pool_size", "int", min="2", max="2")))),
))
SPACES = {"hpo (4 params)": HPO_SPACE, "nas (4-layer macro)": NAS_SPACE}
# `--search-modes`: the other NAS encodings (search_mode), each with its settings.
NB201_SPACE = SearchSpace(nas_config=NasConfig(GraphConfig(5, (32, 32, 3), (10,)), (
    Operation("none"), Operation("skip_connect"),
    Operation("nor_conv", (_p("filter_size", "categorical", list=("1", "3")),)),
    Operation("avg_pool", (_p("pool_size", "categorical", list=("3",)),)),
)))
MODE_SPACES = {"nb201 (6-edge cell)": NB201_SPACE, "micro (5-node cells)": NAS_SPACE}
SPACE_SETTINGS = {"nb201 (6-edge cell)": {"search_mode": "nb201"}, "micro (5-node cells)": {"search_mode": "micro"}}
# Grid refuses micro: a 5-node cell grid has ~10^27 points.
REFUSED = {("grid", "micro (5-node cells)")}


@dataclass(frozen=True)
class Row:
    measurement: str
    algorithm: str
    space: str
    history: int
    median_ms: float
    p99_ms: float
    baseline_ms: float
    cold_convert_cpu_ms: float | None = None
    convert_cpu_ms: float | None = None
    algorithm_cpu_ms: float | None = None
    request_bytes: int = 0

    @property
    def ratio(self) -> float:
        return self.median_ms / self.baseline_ms


def _experiment(space: SearchSpace, algorithm: str, settings: dict[str, str] | None = None) -> api_pb2.Experiment:
    spec = search_space_to_proto(space)
    spec.objective.CopyFrom(objective_to_proto(OBJECTIVE))
    spec.algorithm.algorithm_name = algorithm
    for name, value in {"random_state": "42", **(settings or {})}.items():
        spec.algorithm.algorithm_settings.add(name=name, value=value)
    return api_pb2.Experiment(name="bench", spec=spec)


def _history(space: SearchSpace, algorithm: str, size: int, settings: dict[str, str] | None = None) -> list[TrialRecord]:
    """`size` finished trials at points the algorithm itself would suggest."""
    if size == 0:
        return []
    problem = Problem("bench", space, OBJECTIVE, {"random_state": "7", **(settings or {})})
    points = algorithm_class(algorithm)().suggest(problem, [], size)
    conditions = (TrialCondition.SUCCEEDED, TrialCondition.SUCCEEDED, TrialCondition.FAILED)
    return [
        TrialRecord(f"bench-{i:05d}", dict(p.assignments), conditions[i % 3],
                    {"accuracy": (i % 97) / 97} if conditions[i % 3] is TrialCondition.SUCCEEDED else {})
        for i, p in enumerate(points)
    ]


def _timed(call: Callable[[], object], calls: int, warmup: int = 20) -> list[float]:
    for _ in range(min(warmup, calls)):
        call()
    out = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - started) / 1e6)
    return out


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@contextmanager
def served(algorithm: str, state_dir: Path | None = None) -> Iterator[api_pb2_grpc.SuggestionStub]:
    """A `kubenas suggestion serve` process of this checkout on a free port (with `state_dir`
    for its state), and a stub connected to it. The other latency benches use it too."""
    root = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-m", "kubenas", "suggestion", "serve", "--algorithm", algorithm, "--port", "0",
            "--host", "127.0.0.1", *(["--state-dir", str(state_dir)] if state_dir else [])]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                p for p in (str(root), os.environ.get("PYTHONPATH")) if p)})
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        if port is None:
            raise RuntimeError(f"{algorithm} server did not start (exit {proc.poll()})")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield api_pb2_grpc.SuggestionStub(channel)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _cpu_ms(call: Callable[[], object], calls: int) -> float:
    """Median CPU milliseconds of `call` in this process: on a shared machine wall time
    mostly measures the other tenants, CPU time measures the code."""
    samples = []
    call()
    for _ in range(calls):
        started = time.process_time_ns()
        call()
        samples.append((time.process_time_ns() - started) / 1e6)
    return statistics.median(samples)


def _in_process(algorithm: str, req: api_pb2.GetSuggestionsRequest, calls: int) -> tuple[float, float, float]:
    """CPU ms of what the server does besides transport: (parse + convert every trial,
    parse + convert with the server's HistoryConverter warm, validate + suggest)."""
    algo = algorithm_class(algorithm)()
    data = req.SerializeToString()
    converter = HistoryConverter()

    def parse() -> tuple[api_pb2.GetSuggestionsRequest, Problem]:
        parsed = api_pb2.GetSuggestionsRequest.FromString(data)
        spec = parsed.experiment.spec
        problem = Problem(parsed.experiment.name, search_space_from_proto(spec), objective_from_proto(spec.objective),
                          settings_from_proto(spec.algorithm.algorithm_settings))
        return parsed, problem

    def cold() -> None:
        parsed, problem = parse()
        [trial_from_proto(t, problem.objective) for t in parsed.trials]

    def warm() -> list[TrialRecord]:
        parsed, problem = parse()
        return converter.history(problem.experiment, parsed.experiment.spec.objective, problem.objective,
                                 parsed.trials)

    problem, history = parse()[1], warm()

    def run() -> None:
        algo.validate(problem)
        algo.suggest(problem, history, req.current_request_number)

    return _cpu_ms(cold, calls), _cpu_ms(warm, calls), _cpu_ms(run, calls)


def measure_get_suggestions(calls: int, spaces: dict[str, SearchSpace] = SPACES) -> list[Row]:
    rows: list[Row] = []
    for algorithm in ("random", "grid"):
        with served(algorithm) as stub:
            for space_name, space in spaces.items():
                if (algorithm, space_name) in REFUSED:
                    continue
                settings = SPACE_SETTINGS.get(space_name)
                exp = _experiment(space, algorithm, settings)
                floor = api_pb2.GetSuggestionsRequest(experiment=exp, current_request_number=0)
                baseline = statistics.median(_timed(partial(stub.GetSuggestions, floor, timeout=30), calls))
                for size in HISTORY_SIZES:
                    req = api_pb2.GetSuggestionsRequest(
                        experiment=exp, current_request_number=1, total_request_number=size + 1,
                        trials=[trial_to_proto(t, OBJECTIVE) for t in _history(space, algorithm, size, settings)])
                    samples = _timed(partial(stub.GetSuggestions, req, timeout=30), calls)
                    cold_ms, warm_ms, algorithm_ms = _in_process(algorithm, req, calls)
                    rows.append(Row("GetSuggestions", algorithm, space_name, size, statistics.median(samples),
                                    _p99(samples), baseline, cold_ms, warm_ms, algorithm_ms, req.ByteSize()))
                    print(f"{algorithm:>6} {space_name:<20} history {size:>5}: median {rows[-1].median_ms:.2f} ms",
                          file=sys.stderr)
    return rows


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(rows: list[Row], calls: int, load: tuple[str, str]) -> str:
    lines = [
        "# Suggestion server latency",
        "",
        (f"Machine: {MACHINE}. Python {platform.python_version()}, grpcio {grpc.__version__}. "
         f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/suggest_latency.py "
         f"--calls {calls}`."),
        "",
        "Server: a real `kubenas suggestion serve` process per algorithm on 127.0.0.1; client: one",
        f"channel in the benchmark process, {calls} sequential calls after 20 warm-up calls, each asking",
        "for one assignment (`current_request_number=1`) with the given number of trials (2/3",
        "succeeded with a metric, 1/3 failed) in the request. Baseline, measured in the same run",
        "against the same server: GetSuggestions for zero assignments with no trials (one round",
        "trip plus request checks). Where the server's time goes, as median CPU ms in this process",
        "(CPU time, because wall time on a shared machine mostly measures the other tenants):",
        "`cold convert` = parse the request bytes + convert every trial (`kubenas.proto_convert`);",
        "`convert` = the same through the server's `HistoryConverter` when the trials were seen in",
        "the experiment's previous request (the timed gRPC calls repeat one request, so the server",
        "runs warm; in an experiment only the few trials that changed since the last call are cold);",
        "`algorithm` = validate + suggest.",
        "",
        f"Load average (1 min) at start / end: {load[0]} / {load[1]} on 2 cores.",
        "",
        ("| call | algorithm | space | trials | request bytes | median ms | p99 ms | baseline ms "
         "| median / baseline | cold convert CPU ms | convert CPU ms | algorithm CPU ms |"),
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.measurement} | {r.algorithm} | {r.space} | {r.history} | {r.request_bytes} | "
                     f"{r.median_ms:.2f} | {r.p99_ms:.2f} | {r.baseline_ms:.2f} | {r.ratio:.1f}x | "
                     f"{_cell(r.cold_convert_cpu_ms)} | {_cell(r.convert_cpu_ms)} | {_cell(r.algorithm_cpu_ms)} |")
    worst = max((r.median_ms for r in rows if r.history == max(HISTORY_SIZES)), default=float("nan"))
    verdict = "met" if worst < 5 else "NOT met"
    lines += ["", f"Goal: median under 5 ms at 1,000 trials. Worst median at 1,000 trials: {worst:.2f} ms ({verdict}).",
              ""]
    return "\n".join(lines)


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per row (default 200)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "suggest.md")
    parser.add_argument("--search-modes", action="store_true",
                        help="also the nb201 and micro NAS encodings (search_mode)")
    args = parser.parse_args(argv)
    load_start = _load()
    rows = measure_get_suggestions(args.calls, {**SPACES, **MODE_SPACES} if args.search_modes else SPACES)
    text = report(rows, args.calls, (load_start, _load()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
