"""anytime.png: the incumbent's accuracy as the search goes on, one panel per dataset.

Top row against queries; with a time budget, a second row against simulated seconds.
Lines are means over seeds with a ±1 std band; the optimum is dashed; x is logarithmic
because the interesting differences are early.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kubenas_bench.nb201.loop import RunResult

__all__ = ["plot_anytime"]

_TIME_POINTS = 200
# The most accuracy points (below the optimum) a panel shows.
_Y_SPAN = 10.0


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_query(runs: Sequence[RunResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    length = min(len(r.queries) for r in runs)
    values = np.array([[q.incumbent_mean for q in r.queries[:length]] for r in runs])
    return np.arange(1, length + 1), values.mean(axis=0), values.std(axis=0, ddof=1 if len(runs) > 1 else 0)


def _by_time(runs: Sequence[RunResult], budget: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first = min(r.queries[0].sim_time_s for r in runs)
    grid = np.geomspace(max(first, 1.0), budget, _TIME_POINTS)
    rows = []
    for run in runs:
        times = np.array([q.sim_time_s for q in run.queries])
        values = np.array([q.incumbent_mean for q in run.queries])
        at = np.searchsorted(times, grid, side="right") - 1   # the last query finished by then
        rows.append(np.where(at >= 0, values[np.maximum(at, 0)], np.nan))
    data = np.array(rows)
    # NaN (a seed without a finished query yet) propagates: the line starts when all have one
    return grid, data.mean(axis=0), data.std(axis=0, ddof=1 if len(runs) > 1 else 0)


def _plain_log_ticks(ax: Any, x_span: float) -> None:
    """1, 10, 100 rather than 10^0, 10^1; within one decade the in-between ticks are labelled too."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _pos: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain if x_span < 10 else NullFormatter())


def plot_anytime(path: Path, runs: Sequence[RunResult], optima: dict[str, float],
                 budget_seconds: float | None = None) -> None:
    """Write the PNG. `optima` by dataset name; runs without any query are left out."""
    plt = _pyplot()
    datasets: list[Any] = []
    for run in runs:
        if run.dataset not in datasets:
            datasets.append(run.dataset)
    algorithms = list(dict.fromkeys(r.algorithm for r in runs))
    colors = {a: plt.get_cmap("tab10")(i % 10) for i, a in enumerate(algorithms)}
    nrows = 2 if budget_seconds is not None else 1
    fig, axes = plt.subplots(nrows, len(datasets), figsize=(5.5 * len(datasets), 4.2 * nrows), dpi=110,
                             squeeze=False)
    for col, dataset in enumerate(datasets):
        optimum = optima[dataset.name]
        lows = []
        for row in range(nrows):
            ax = axes[row][col]
            for algorithm in algorithms:
                group = [r for r in runs if r.dataset == dataset and r.algorithm == algorithm and r.queries]
                if not group:
                    continue
                if row == 0:
                    x, mean, std = _by_query(group)
                else:
                    assert budget_seconds is not None
                    x, mean, std = _by_time(group, budget_seconds)
                ax.plot(x, mean, color=colors[algorithm], label=f"{algorithm} ({len(group)} seeds)", linewidth=1.6)
                ax.fill_between(x, mean - std, mean + std, color=colors[algorithm], alpha=0.15, linewidth=0)
                finite = mean[np.isfinite(mean)]
                if finite.size:
                    # from about the tenth point: the first few draws are far below and squash the rest
                    lows.append(float(finite[min(len(finite) - 1, max(0, len(finite) // 10))]))
            ax.axhline(optimum, color="black", linestyle="--", linewidth=1, label=f"optimum {optimum:.2f}")
            ax.set_xscale("log")
            _plain_log_ticks(ax, x_span=(ax.get_xlim()[1] / max(ax.get_xlim()[0], 1e-9)))
            ax.set_xlabel("queries (trials evaluated)" if row == 0 else "simulated wall clock (s)")
            ax.set_ylabel("incumbent's mean validation accuracy (%)")
            ax.set_title(f"NAS-Bench-201 {dataset.label}")
            ax.grid(True, which="both", alpha=0.3)
            if lows:
                # a hopeless curve (grid's all-`none` start) would flatten every other one
                low = max(min(lows), optimum - _Y_SPAN)
                ax.set_ylim(max(0.0, math.floor(low - 1.0)), optimum + max(0.5, (optimum - low) * 0.08))
            ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
