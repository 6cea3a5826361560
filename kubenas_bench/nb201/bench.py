"""`kubenas bench nb201`: every (dataset, algorithm, seed) through a real suggestion server.

One `kubenas suggestion serve` process per algorithm (started together, as `kubenas run`
starts its one), each run a separate experiment on it; algorithm state lives in a fresh
temporary directory, so a rerun with the same seeds starts from the same state and
suggests the same cells. Outputs in `--out`: results.json (rewritten after every run, so
an interrupted bench keeps what it finished), table.md and anytime.png.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.markup import escape

from controller.grpc_clients import SuggestionClient, SuggestionServerError
from controller.local.suggestion_server import SuggestionServerProcess
from controller.report import print_unsqueezed, provenance, write_results
from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas_bench.nb201.config import BenchConfig, BenchError
from kubenas_bench.nb201.experiment import bench_experiment, run_settings
from kubenas_bench.nb201.loop import RunResult, search
from kubenas_bench.nb201.plot import plot_anytime
from kubenas_bench.nb201.summary import markdown_table, rich_table, summarize
from kubenas_bench.nb201.tabular import Nb201Table, load_table

__all__ = ["BENCH_RESULTS_VERSION", "run_bench"]

log = logging.getLogger(__name__)

BENCH_RESULTS_VERSION = 1
_TABLE_WIDTH = 160


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "logs").mkdir(exist_ok=True)
    except OSError as exc:
        raise BenchError(f"--out: invalid value {str(out)!r}: must be a directory that can be created and written "
                         f"({exc.strerror or exc})") from None
    for name in ("results.json", "table.md", "anytime.png"):
        if (out / name).is_dir():
            raise BenchError(f"--out: invalid value {str(out)!r}: {name} there is a directory; the bench writes a file")


def _validate(client: SuggestionClient, algorithm: str, config: BenchConfig, log_path: Path) -> None:
    """ValidateAlgorithmSettings with the bench's experiment: the server has the last word on
    whether the algorithm searches NB201 cells and on the user's settings."""
    user = config.settings.get(algorithm, {})
    experiment = bench_experiment("nb201-validate", algorithm, run_settings(config.seeds[0], user), config.parallel,
                                  config.query_cap)
    try:
        client.validate(experiment)
    except SuggestionServerError as exc:
        if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
            raise BenchError(f"ValidateAlgorithmSettings failed for algorithm {algorithm!r}: {exc}; see {log_path}") from None
        setting = str(exc).split(":", 1)[0].strip()
        if setting in user:
            raise BenchError(f"--setting {algorithm}:{setting}={user[setting]}: {exc}") from None
        raise BenchError(f"--algorithms: invalid value {algorithm!r}: it cannot search the NB201 cell space "
                         f"(search_mode nb201): {exc}") from None


def _document(config: BenchConfig, tables: dict[str, Nb201Table], runs: Sequence[RunResult], started: float,
              status: str) -> dict[str, Any]:
    optima = {name: t.optimum[1] for name, t in tables.items()}
    user = {a: dict(config.settings.get(a, {})) for a in config.algorithms}
    sent = {a: {k: v for k, v in run_settings(0, user[a]).items() if k != "random_state"} for a in config.algorithms}
    seeds = {"random_state": {a: list(config.seeds) for a in config.algorithms}, "tabular": list(config.seeds)}
    return {
        "version": BENCH_RESULTS_VERSION,
        "benchmark": "nas-bench-201",
        "status": status,  # running | interrupted | complete
        "config": {
            "algorithms": list(config.algorithms), "datasets": [d.name for d in config.datasets],
            "seeds": list(config.seeds), "queries": config.queries, "budget_seconds": config.budget_seconds,
            "parallel": config.parallel, "time_scale": config.time_scale, "settings": user,
        },
        "datasets": {
            name: {"label": t.dataset.label, "optimum": round(t.optimum[1], 6), "optimum_key": t.optimum[0],
                   "optimum_architecture": _architecture(t.optimum[0])}
            for name, t in tables.items()
        },
        "summary": [row.to_json() for row in summarize(runs, optima)],
        "runs": [run.to_json() for run in runs],
        "reproducibility": provenance(seeds, sent, started, time.time() - started),
    }


def _architecture(key: str) -> str:
    return Cell201(tuple(NB201_PRIMITIVES[int(d)] for d in key)).to_string()


def run_bench(config: BenchConfig, console: Console) -> list[RunResult]:
    """Run the whole grid of runs, write the outputs, print the table. Raises BenchError."""
    started = time.time()
    _check_out(config.out)
    tables = {d.name: load_table(d) for d in config.datasets}
    runs: list[RunResult] = []
    with ExitStack() as stack:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubenas-bench-")))
        servers = {}
        for algorithm in config.algorithms:
            server = SuggestionServerProcess(algorithm, state / algorithm, config.out / "logs" / f"suggestion-{algorithm}.log")
            stack.callback(server.stop)
            server.start()  # all start together; each is waited for before its first run
            servers[algorithm] = server
        clients = {}
        for algorithm in config.algorithms:  # every algorithm accepted before any run starts
            server = servers[algorithm]
            try:
                address = server.wait_ready()
            except SuggestionServerError as exc:
                raise BenchError(f"the suggestion server for {algorithm!r} did not start: {exc}") from None
            clients[algorithm] = client = SuggestionClient(address)
            stack.callback(client.close)
            _validate(client, algorithm, config, server.log_path)
        try:
            _run_all(config, tables, servers, clients, runs, started, console)
        except KeyboardInterrupt:
            write_results(config.out / "results.json", _document(config, tables, runs, started, "interrupted"))
            raise
    document = _document(config, tables, _ordered(runs, config), started, "complete")
    write_results(config.out / "results.json", document)
    optima = {name: t.optimum[1] for name, t in tables.items()}
    rows = summarize(_ordered(runs, config), optima)
    (config.out / "table.md").write_text(markdown_table(rows))
    plot_anytime(config.out / "anytime.png", _ordered(runs, config), optima, config.budget_seconds)
    # never truncate a figure: narrower than the table, the terminal wraps its lines instead
    print_unsqueezed(console, rich_table(rows), _TABLE_WIDTH, on_terminal=True)
    console.print(f"results: {config.out / 'results.json'}, {config.out / 'table.md'}, {config.out / 'anytime.png'}",
                  soft_wrap=True, markup=False)
    return runs


def _run_all(config: BenchConfig, tables: dict[str, Nb201Table], servers: dict[str, SuggestionServerProcess],
             clients: dict[str, SuggestionClient], runs: list[RunResult], started: float, console: Console) -> None:
    """Every (algorithm, dataset, seed) in turn; `runs` grows as they finish."""
    total = len(config.datasets) * len(config.algorithms) * len(config.seeds)
    for algorithm in config.algorithms:
        server = servers[algorithm]
        for dataset in config.datasets:
            for seed in config.seeds:
                run = search(clients[algorithm], tables[dataset.name], algorithm, seed, config,
                             str(server.log_path))
                runs.append(run)
                final = run.queries[-1] if run.queries else None
                outcome = ("no query finished within --budget-seconds" if final is None else
                           f"{len(run.queries)} queries, best seen {final.best_so_far:.2f}, "
                           f"incumbent {final.incumbent_mean:.2f}")
                console.print(f"[{len(runs)}/{total}] {escape(dataset.label)} {escape(algorithm)} seed {seed}: "
                              f"{outcome} ({run.wall_s:.1f}s)", highlight=False, soft_wrap=True)
                write_results(config.out / "results.json", _document(config, tables, runs, started, "running"))
        server.stop()  # frees its memory (ENAS: torch) for the next algorithm


def _ordered(runs: Sequence[RunResult], config: BenchConfig) -> list[RunResult]:
    """Dataset-major, then algorithm in --algorithms order, then seed: the table's order."""
    rank = {a: i for i, a in enumerate(config.algorithms)}
    datasets = [d.name for d in config.datasets]
    return sorted(runs, key=lambda r: (datasets.index(r.dataset.name), rank[r.algorithm], config.seeds.index(r.seed)))
