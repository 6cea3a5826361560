"""bench/hyperband_bench.py still runs: its budget study on a few seeds, and the histories
its latency part builds are what hyperband itself makes (in process, no servers)."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "hyperband_bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hyperband_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hyperband_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_the_budget_study_reports_every_seed(bench: ModuleType) -> None:
    for full_budget_only in (False, True):
        rows, summary = bench.budget_study(2, 8, full_budget_only)
        assert len(rows) == 2 + 2 and summary.startswith("medians over 2 seeds")
    # A full-budget hyperband trial costs R, as each random-search trial does.
    curve = bench._curve_hyperband(0, 450, True)
    assert curve[-1][0] == 450  # one whole pass of r_l=27, eta=3 spends exactly 450


def test_latency_histories_are_hyperbands_own(bench: ModuleType) -> None:
    history, state, parallel = bench.hyperband_history(100, 81)
    assert parallel == 81 and len(history) >= 100
    rungs = Counter((t.labels["hyperband.kubenas.io/bracket"], t.assignments["epochs"]) for t in history)
    assert rungs[("4", "1")] == 81 and rungs[("4", "3")] == 27
    assert state["current_s"] == "4" and state["current_i"] == "1"
