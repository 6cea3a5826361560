"""ENAS suggestion server: cold start, warm GetSuggestions latency, peak RSS.

Every number is taken against a real `kubenas suggestion serve --algorithm enas` process
over gRPC on localhost (this process is the client), for Katib's enas-gpu space (8 layers,
106 ops) with the default 50 controller steps per call.

- Cold start: process spawn until the health check answers SERVING for Katib's probe name
  (`manager.v1beta1.Suggestion`); baseline: the same for `--algorithm random`. The first
  GetSuggestions (which loads the controller code and builds the controller) is timed
  separately.
- Warm latency: the server has already learned from a history of N trials; each timed call
  brings 3 newly finished trials (enas-gpu's parallelTrialCount) and asks for 3
  architectures, so it learns (50 steps) and samples. Baseline in the same run: the random
  server answering the same requests (transport + conversion of N trials). The servers'
  calls are interleaved, so background load hits them alike. Also timed: a catch-up call,
  the first call of a fresh experiment that arrives with all N trials.
- Peak RSS: the server's VmHWM (kernel-tracked high-water mark) after all the calls.
- Controller training alone: `reinforce` (the 50 steps of a warm call, batch of 3) timed
  in-process with process_time, each source tree in its own subprocess, rounds alternating
  between trees; finer-grained than the server's 10 ms CPU ticks.
- `--before DIR`: also runs the enas server from another source tree (e.g. the previous
  commit, `git archive <commit> | tar -x -C DIR`) in the same run, for before/after rows.

Run: .venv/bin/python bench/enas_bench.py [--repeats 7] [--before DIR [--before-note TEXT]]
     [--out bench/results/enas.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.experiment import load_experiment_file
from kubenas.genotype import Genotype
from kubenas.proto_convert import nas_config_to_proto, trial_to_proto
from kubenas.space import (
    FeasibleSpace,
    GraphConfig,
    MacroArchitecture,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    nn_config,
    primitive_names,
)
from kubenas.trials import TrialCondition, TrialRecord
from suggestion.algorithms.enas.micro import usable_in_cell
from suggestion.algorithms.encoding import nas_encoding

ROOT = Path(__file__).resolve().parent.parent
MACHINE = "2-core Intel Xeon VM, no GPU"
KUBENAS = str(Path(sys.executable).parent / "kubenas")
EXAMPLE = ROOT / "tests" / "data" / "katib" / "enas-gpu.yaml"
HISTORIES = (10, 100, 1000)
NEW_PER_CALL = 3


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    ready_s: float

    @property
    def stub(self) -> api_pb2_grpc.SuggestionStub:
        return api_pb2_grpc.SuggestionStub(grpc.insecure_channel(f"127.0.0.1:{self.port}"))

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        assert match, status
        return int(match.group(1)) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def start(algorithm: str, state_dir: str, tree: Path | None = None) -> Server:
    """Spawn a server (from `tree` if given); return once health says SERVING (the cold start)."""
    args = ["suggestion", "serve", "--algorithm", algorithm, "--port", "0", "--host", "127.0.0.1",
            "--state-dir", state_dir]
    env = None
    if tree is None:
        command = [KUBENAS, *args]
    else:
        command = [sys.executable, "-c", "import sys; from kubenas_cli.app import main; sys.argv[0] = 'kubenas'; main()",
                   *args]
        env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=tree)
    assert proc.stderr is not None
    port = 0
    while not port:
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError(f"{algorithm} server exited: {proc.wait()}")
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        port = int(match.group(1)) if match else 0
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    request = health_pb2.HealthCheckRequest(service="manager.v1beta1.Suggestion")
    while health.Check(request, timeout=10).status != health_pb2.HealthCheckResponse.SERVING:
        time.sleep(0.005)
    ready = time.perf_counter() - started
    # The server logs a few lines per call; a pipe nobody reads would fill up eventually.
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return Server(proc, port, ready)


def history(count: int, seed: int) -> list[TrialRecord]:
    """`count` succeeded enas-gpu trials with random valid architectures and accuracies."""
    space = load_experiment_file(EXAMPLE).search_space()
    nas = space.nas_config
    assert nas is not None
    ops = nas.expanded()
    rng = random.Random(seed)
    L = nas.graph_config.num_layers
    out = []
    for i in range(count):
        rows = tuple((rng.randrange(len(ops)), *(rng.randrange(2) for _ in range(layer))) for layer in range(L))
        arch = MacroArchitecture(rows)
        assignments = {"architecture": arch.to_json(),
                       "nn_config": json.dumps(nn_config(nas.graph_config, ops, arch.op_ids))}
        out.append(TrialRecord(f"trial-{i}", assignments, TrialCondition.SUCCEEDED,
                               {"Validation-Accuracy": round(rng.uniform(0.5, 0.9), 4)}))
    return out


def micro_history(count: int, seed: int, num_nodes: int = 5) -> list[TrialRecord]:
    """`count` succeeded trials with random micro genotypes over enas-gpu's cell primitives."""
    nas = load_experiment_file(EXAMPLE).search_space().nas_config
    assert nas is not None
    primitives = [p for p in primitive_names(nas.operations) if usable_in_cell(p)]
    rng = random.Random(seed)
    out = []
    for i in range(count):
        cells = [[[rng.choice(primitives), rng.randrange(node // 2 + 2)] for node in range(2 * num_nodes)]
                 for _ in range(2)]
        genotype = Genotype.from_dict({"normal": cells[0], "reduce": cells[1]})
        config = {"search_mode": "micro", "num_layers": nas.graph_config.num_layers, "num_nodes": num_nodes,
                  "input_sizes": list(nas.graph_config.input_sizes),
                  "output_sizes": list(nas.graph_config.output_sizes), "primitives": primitives}
        out.append(TrialRecord(f"trial-{i}", {"architecture": genotype.to_json(), "nn_config": json.dumps(config)},
                               TrialCondition.SUCCEEDED, {"Validation-Accuracy": round(rng.uniform(0.5, 0.9), 4)}))
    return out


def _categorical(name: str, *values: str) -> ParameterSpec:
    return ParameterSpec(name, ParameterType.CATEGORICAL, FeasibleSpace(list=values))


# The canonical NAS-Bench-201 nasConfig (5 primitives, 15,625 cells).
NB201_NAS = NasConfig(GraphConfig(5, (32, 32, 3), (10,)), (
    Operation("none"), Operation("skip_connect"), Operation("nor_conv", (_categorical("filter_size", "1", "3"),)),
    Operation("avg_pool", (_categorical("pool_size", "3"),))))


def nb201_history(count: int, seed: int) -> list[TrialRecord]:
    """`count` succeeded trials with random NAS-Bench-201 cells."""
    encoding = nas_encoding(NB201_NAS, {"search_mode": "nb201"})
    rng = random.Random(seed)
    return [TrialRecord(f"trial-{i}", encoding.encode(encoding.random_vector(rng)), TrialCondition.SUCCEEDED,
                        {"Validation-Accuracy": round(rng.uniform(0.5, 0.9), 4)}) for i in range(count)]


HISTORIES_BY_MODE = {"macro": history, "micro": micro_history, "nb201": nb201_history}


def request(exp: api_pb2.Experiment, trials: Sequence[api_pb2.Trial], n: int) -> api_pb2.GetSuggestionsRequest:
    return api_pb2.GetSuggestionsRequest(experiment=exp, trials=list(trials), current_request_number=n,
                                         total_request_number=len(trials) + n)


def experiment(algorithm: str, name: str, settings: dict[str, str] | None = None) -> api_pb2.Experiment:
    exp = load_experiment_file(EXAMPLE).to_proto()
    if (settings or {}).get("search_mode") == "nb201":
        exp.spec.nas_config.CopyFrom(nas_config_to_proto(NB201_NAS))
    exp.name = name
    exp.spec.algorithm.algorithm_name = algorithm
    for key, value in (settings or {}).items():
        exp.spec.algorithm.algorithm_settings.add(name=key, value=value)
    return exp


def timed(stub: api_pb2_grpc.SuggestionStub, req: api_pb2.GetSuggestionsRequest) -> float:
    started = time.perf_counter()
    reply = stub.GetSuggestions(req, timeout=600)
    elapsed = time.perf_counter() - started
    assert len(reply.parameter_assignments) == req.current_request_number
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (robust to other load on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Warm:
    """One server's warm calls: median wall, mean server CPU; and its catch-up call (seconds)."""

    wall: float
    cpu: float
    catch_up: float


def warm_latency(servers: dict[str, tuple[Server, str]], n_history: int, repeats: int,
                 settings: dict[str, str] | None = None) -> dict[str, Warm]:
    """Per server: median warm call wall time and server CPU, and the catch-up call.

    `servers` maps a label to (server, algorithm name); their calls are interleaved. The
    history is of the `search_mode` in `settings` (macro without one).
    """
    mode = (settings or {}).get("search_mode", "macro")
    records = HISTORIES_BY_MODE[mode](n_history + NEW_PER_CALL * repeats, n_history)
    objective = load_experiment_file(EXAMPLE).objective()
    trials = [trial_to_proto(t, objective) for t in records]
    name = f"warm-{n_history}{'' if mode == 'macro' else '-' + mode}"
    # The random server knows search_mode and num_nodes but none of enas's controller settings.
    shared = {k: v for k, v in (settings or {}).items() if k in ("search_mode", "num_nodes")}
    exps = {label: experiment(algorithm, name, settings if algorithm == "enas" else shared)
            for label, (_, algorithm) in servers.items()}
    catch_up = {label: timed(server.stub, request(exps[label], trials[: n_history - NEW_PER_CALL], NEW_PER_CALL))
                for label, (server, _) in servers.items()}
    times: dict[str, list[float]] = {label: [] for label in servers}
    cpu: dict[str, list[float]] = {label: [] for label in servers}
    for r in range(repeats):
        upto = n_history + NEW_PER_CALL * r
        for label, (server, _) in servers.items():
            before = cpu_seconds(server.proc.pid)
            times[label].append(timed(server.stub, request(exps[label], trials[:upto], NEW_PER_CALL)))
            cpu[label].append(cpu_seconds(server.proc.pid) - before)
    # CPU comes in 10 ms clock ticks: the mean over the calls resolves far finer than a median.
    return {label: Warm(statistics.median(times[label]), statistics.fmean(cpu[label]), catch_up[label])
            for label in servers}


TRAINING_SNIPPET = """
import json, statistics, sys, time
import torch
torch.set_num_threads(1)
from kubenas.enas_controller.adam import Adam
from kubenas.enas_controller.policy import MacroController
from suggestion.algorithms.enas.learning import Experience, reinforce
from suggestion.algorithms.enas.settings import EnasSettings
generator = torch.Generator().manual_seed(1)
controller = MacroController(8, 106, 64, 5.0, 2.25, 0.4, generator)
optimizer = Adam(controller.parameters(), lr=5e-5)
settings, baseline, seconds = EnasSettings(), None, []
for call in range(int(sys.argv[1]) + 3):
    with torch.no_grad():
        decisions = controller(3, generator=generator).decisions.tolist()
    experiences = [Experience(f"t{call}-{i}", d, 0.5 + 0.1 * i) for i, d in enumerate(decisions)]
    started = time.process_time()
    baseline = reinforce(controller, optimizer, experiences, baseline, settings)
    seconds.append(time.process_time() - started)
print(json.dumps(statistics.median(seconds[3:])))
"""


def training_cost(trees: dict[str, Path | None], rounds: int = 3, calls: int = 9) -> dict[str, float]:
    """Median CPU seconds of one warm call's controller training (50 steps, 3 trials), per tree."""
    got: dict[str, list[float]] = {label: [] for label in trees}
    for _ in range(rounds):
        for label, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree or ROOT)}
            out = subprocess.run([sys.executable, "-c", TRAINING_SNIPPET, str(calls)], env=env, cwd=tree or ROOT,
                                 capture_output=True, text=True, check=True)
            got[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {label: statistics.median(values) for label, values in got.items()}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls (and cold starts) per figure")
    parser.add_argument("--before", type=Path, help="source tree of the version to compare with (same run)")
    parser.add_argument("--before-note", default="", help="how the --before tree was made (goes into the report)")
    parser.add_argument("--histories", type=int, nargs="+", default=list(HISTORIES))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "enas.md")
    args = parser.parse_args(argv)
    trees: dict[str, Path | None] = {"enas": None}
    if args.before is not None:
        trees["enas before"] = args.before.resolve()
    loads = [os.getloadavg()]

    with tempfile.TemporaryDirectory() as tmp:
        cold: dict[str, list[float]] = {"random": [], **{label: [] for label in trees}}
        first_call: dict[str, list[float]] = {label: [] for label in trees}
        for r in range(args.repeats):
            for label, ready in cold.items():
                algorithm = "random" if label == "random" else "enas"
                server = start(algorithm, os.path.join(tmp, f"cold-{label}-{r}".replace(" ", "-")), trees.get(label))
                ready.append(server.ready_s)
                if label in trees:
                    first_call[label].append(timed(server.stub, request(experiment("enas", "first"), [],
                                                                        NEW_PER_CALL)))
                server.stop()
        training = training_cost(trees)
        loads.append(os.getloadavg())
        med = {k: statistics.median(v) for k, v in cold.items()}
        rows_cold = [f"| {label}: process start -> SERVING | {med[label]:.2f} s | {med['random']:.2f} s | "
                     f"{med[label] / med['random']:.2f} |" for label in trees]
        rows_cold += [f"| {label}: first GetSuggestions (loads the controller code) | "
                      f"{statistics.median(first_call[label]):.2f} s | | |" for label in trees]

        servers = {label: (start("enas", os.path.join(tmp, f"warm-{label}".replace(" ", "-")), tree), "enas")
                   for label, tree in trees.items()}
        servers["random"] = (start("random", os.path.join(tmp, "warm-random")), "random")
        # The first call of a server loads the controller code (timed above); keep it out of these rows.
        for label in trees:
            timed(servers[label][0].stub, request(experiment("enas", "warm-up"), [], NEW_PER_CALL))
        rows_warm: list[str] = []
        peaks: dict[str, float] = {}

        def row(title: str, got: dict[str, Warm]) -> str:
            cells = [title]
            for label in trees:
                cells += [_ms(got[label].wall), _ms(got[label].cpu)]
            cells += [_ms(got["random"].wall)]
            if "enas before" in trees:
                cells += [f"{got['enas before'].wall / got['enas'].wall:.2f}x",
                          f"{got['enas before'].cpu / got['enas'].cpu:.2f}x"]
            cells += [f"{got['enas'].wall / got['random'].wall:.0f}x"]
            cells += [_ms(got[label].catch_up) for label in trees]
            return "| " + " | ".join(cells) + " |"

        try:
            for n in args.histories:
                rows_warm.append(row(str(n), warm_latency(servers, n, args.repeats)))
                print(rows_warm[-1], flush=True)
                loads.append(os.getloadavg())
            peaks = {f"{label}, after the macro rows": servers[label][0].peak_rss_mb() for label in trees}
            micro = {"search_mode": "micro", "num_nodes": "5"}
            rows_warm.append(row("100, micro (5 nodes)", warm_latency(servers, 100, args.repeats, micro)))
            print(rows_warm[-1], flush=True)
            loads.append(os.getloadavg())
            nb201 = {"search_mode": "nb201"}
            rows_warm.append(row("100, nb201 (6 edges)", warm_latency(servers, 100, args.repeats, nb201)))
            print(rows_warm[-1], flush=True)
            loads.append(os.getloadavg())
            peaks |= {f"{label}, after every call above (micro, nb201 included)": servers[label][0].peak_rss_mb()
                      for label in trees}
            peaks["random (baseline)"] = servers["random"][0].peak_rss_mb()
        finally:
            for server, _ in servers.values():
                server.stop()

    import torch

    header = ["trials of history"]
    for label in trees:
        header += [f"{label} median", f"{label} server CPU"]
    header += ["random median (baseline)"]
    if "enas before" in trees:
        header += ["before / after (wall)", "before / after (CPU)"]
    header += ["enas / random"] + [f"{label} catch-up call (all N new)" for label in trees]
    load_text = ", ".join(" / ".join(f"{x:.1f}" for x in triple) for triple in loads)
    before_text = (f" \"enas before\" is the previous version's server run from another "
                   f"source tree{' (' + args.before_note + ')' if args.before_note else ''} in the same run, "
                   "its calls interleaved with the new server's." if args.before else "")
    report = f"""# ENAS suggestion server benchmark

Machine: {MACHINE} ({platform.python_implementation()} {platform.python_version()}, torch {torch.__version__},
{os.cpu_count()} CPUs), shared with other work. Command:
`.venv/bin/python bench/enas_bench.py --repeats {args.repeats}{' --before DIR' if args.before else ''}`.
Space: Katib's enas-gpu example (8 layers, 106 ops), default settings (50 controller steps,
hidden size 64). Medians of {args.repeats} runs; the baseline is the `random` server measured
in the same run.{before_text} Goals: cold start < 3 s, warm median < 250 ms at 100 trials
(server CPU <= 120 ms), peak RSS < 300 MB.

## Cold start

| measure | value | random (baseline) | ratio |
|---|---|---|---|
{chr(10).join(rows_cold)}

## Warm GetSuggestions (3 new finished trials per call, 3 architectures asked)

| {' | '.join(header)} |
|{'---|' * len(header)}
{chr(10).join(rows_warm)}

"Server CPU" is the server process's user+system time per call (10 ms clock ticks, averaged
over the {args.repeats} calls), which other load on the machine does not inflate the way it inflates
wall time. Load
average (1 / 5 / 15 min) at the start and after each row: {load_text}. The catch-up call
is a fresh experiment's first call arriving with N finished trials: it learns from all of
them (gradient steps over the newest 32).

## Controller training alone (one warm call's 50 steps, 3 trials, in-process CPU time)

| tree | median CPU per call |
|---|---|
{chr(10).join(f"| {label} | {_ms(seconds)} |" for label, seconds in training.items())}
{f"| before / after | {training['enas before'] / training['enas']:.2f}x |" if 'enas before' in training else ''}

## Memory

| server | peak RSS (VmHWM) |
|---|---|
{chr(10).join(f"| {label} | {mb:.0f} MB |" for label, mb in peaks.items())}

## Notes

- Where a warm call's time goes: 50 controller steps, each replaying the call's new
  architectures through the `torch.nn.LSTMCell` controller as one teacher-forced batch
  (16 cell steps for 8 layers) forward and backward with autograd, then an Adam update.
  The rest (state load/save, reading the new trials, sampling 3 architectures) is a few ms,
  and history size barely matters: trials already learned from are skipped by name.
- At these sizes (a batch of 3 rows of 64 numbers) a step costs what torch charges per
  operation, not arithmetic: the 16 sequential `LSTMCell` steps alone (about 13 ATen ops
  each, forward and backward) are about 1.8 ms of the ~2.6 ms step, i.e. ~90 ms per call;
  that part is fixed by the recurrence (each cell needs the previous one's state).
  `import torch` alone is ~200 MB resident here.
- The micro row asks for cells of 5 nodes (54 LSTM steps per architecture instead of 16);
  the nb201 row for NAS-Bench-201 cells (the canonical 5-primitive nasConfig, 6 LSTM steps).
  In both the random baseline gets the same search_mode.
- Wall times include contention from other work on this shared 2-core VM (load average
  above); the CPU column is the server's own cost. Katib's TensorFlow service is not
  measured here (no TensorFlow in this environment).
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
