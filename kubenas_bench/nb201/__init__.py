"""`kubenas bench nb201`: search strategies on NAS-Bench-201 against random search, over gRPC.

Plays the controller's role for tabular trials: see `bench.run_bench` for the whole
benchmark, `loop.search` for one run, README.md for the flags and outputs.
"""

from __future__ import annotations

from kubenas_bench.nb201.bench import run_bench
from kubenas_bench.nb201.config import (
    DATASETS,
    NB201_TIME_SCALE_12_EPOCHS,
    BenchConfig,
    BenchError,
    check_budget,
    parse_algorithms,
    parse_datasets,
    parse_seeds,
    parse_settings,
)
from kubenas_bench.nb201.experiment import bench_experiment, nb201_search_space, run_settings

__all__ = [
    "DATASETS",
    "NB201_TIME_SCALE_12_EPOCHS",
    "BenchConfig",
    "BenchError",
    "bench_experiment",
    "check_budget",
    "nb201_search_space",
    "parse_algorithms",
    "parse_datasets",
    "parse_seeds",
    "parse_settings",
    "run_bench",
    "run_settings",
]
