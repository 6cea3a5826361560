"""Over seeds: mean ± std of the incumbent's accuracy at each query budget, and regret.

The accuracy reported for a run at a budget is the table's mean validation accuracy (over
the benchmark's training seeds) of the cell the algorithm believed best by then: the one
with the highest single-seed val_acc it was shown. That is how NB201 reports its own
searches, and it makes regret = optimum - that accuracy, never negative.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from rich.table import Table

from kubenas_bench.nb201.config import REPORT_BUDGETS, Dataset
from kubenas_bench.nb201.loop import RunResult

__all__ = ["BASELINE", "Stat", "SummaryRow", "markdown_table", "rich_table", "summarize"]

BASELINE = "random"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n - 1; 0 for one value) over `n` seeds."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        data = list(values)
        if not data:
            return cls(math.nan, math.nan, 0)
        return cls(statistics.fmean(data), statistics.stdev(data) if len(data) > 1 else 0.0, len(data))

    def text(self, digits: int = 2) -> str:
        return "" if self.n == 0 else f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def to_json(self) -> dict[str, float | int]:
        return {"mean": round(self.mean, 6), "std": round(self.std, 6), "n": self.n}


@dataclass(frozen=True)
class SummaryRow:
    """One (dataset, algorithm) over its seeds."""

    dataset: Dataset
    algorithm: str
    optimum: float
    at: dict[int, Stat]           # query budget -> incumbent accuracy
    final: Stat                   # incumbent accuracy when the run stopped
    regret: Stat                  # optimum - final, per seed
    observed: Stat                # best single-seed val_acc shown to the algorithm
    queries: Stat
    sim_time_s: Stat
    wall_s: float                 # all seeds together
    vs_baseline: float | None     # final mean minus random's final mean (same dataset)

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset.name, "algorithm": self.algorithm, "optimum": round(self.optimum, 6),
            "at_queries": {str(b): s.to_json() for b, s in self.at.items()},
            "final": self.final.to_json(), "regret": self.regret.to_json(), "observed_best": self.observed.to_json(),
            "queries": self.queries.to_json(), "sim_time_s": self.sim_time_s.to_json(), "wall_s": round(self.wall_s, 3),
            "vs_random": None if self.vs_baseline is None else round(self.vs_baseline, 6),
        }


def summarize(runs: Sequence[RunResult], optima: dict[str, float]) -> list[SummaryRow]:
    """One row per (dataset, algorithm), in the order the runs came; `optima` by dataset name."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for run in runs:
        groups.setdefault((run.dataset.name, run.algorithm), []).append(run)
    rows: list[SummaryRow] = []
    for (dataset_name, algorithm), group in groups.items():
        optimum = optima[dataset_name]
        done = [r for r in group if r.queries]
        shortest = min((len(r.queries) for r in done), default=0)
        at = {b: Stat.of(r.queries[b - 1].incumbent_mean for r in done) for b in REPORT_BUDGETS if b <= shortest}
        final = [r.queries[-1].incumbent_mean for r in done]
        rows.append(SummaryRow(
            dataset=group[0].dataset, algorithm=algorithm, optimum=optimum, at=at, final=Stat.of(final),
            regret=Stat.of(optimum - v for v in final),
            observed=Stat.of(r.queries[-1].best_so_far for r in done),
            queries=Stat.of(float(len(r.queries)) for r in group),
            sim_time_s=Stat.of(r.sim_time_s for r in group),
            wall_s=sum(r.wall_s for r in group), vs_baseline=None,
        ))
    baseline = {r.dataset.name: r.final.mean for r in rows if r.algorithm == BASELINE and r.final.n}
    return [
        replace(row, vs_baseline=row.final.mean - baseline[row.dataset.name])
        if row.dataset.name in baseline and row.algorithm != BASELINE and row.final.n else row
        for row in rows
    ]


def _budgets(rows: Sequence[SummaryRow]) -> list[int]:
    return sorted({b for row in rows for b in row.at})


def _cells(row: SummaryRow, budgets: Sequence[int]) -> list[str]:
    queries = (f"{row.queries.mean:.0f}" if row.queries.std == 0 else row.queries.text(1))
    delta = "" if row.vs_baseline is None else f"{row.vs_baseline:+.2f}"
    return [
        row.dataset.label, row.algorithm, str(row.queries.n),
        *(row.at[b].text() if b in row.at else "" for b in budgets),
        row.final.text(), queries, row.regret.text(), delta, f"{row.wall_s:.1f}",
    ]


def _header(budgets: Sequence[int]) -> list[str]:
    return ["dataset", "algorithm", "seeds", *(f"@{b}" for b in budgets), "final", "queries",
            "regret", f"vs {BASELINE}", "wall s"]


def rich_table(rows: Sequence[SummaryRow]) -> Table:
    """For the terminal: accuracy (%) of the incumbent, mean ± std over seeds."""
    budgets = _budgets(rows)
    table = Table(title="NAS-Bench-201: validation accuracy (%) of the incumbent, mean ± std over seeds")
    for i, name in enumerate(_header(budgets)):
        table.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*_cells(row, budgets))
    return table


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """The same table as Markdown (table.md), with a legend."""
    budgets = _budgets(rows)
    header = _header(budgets)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    lines += ["| " + " | ".join(_cells(row, budgets)) + " |" for row in rows]
    optima = {row.dataset.label: row.optimum for row in rows}
    legend = [
        "",
        ("Accuracy: the benchmark's mean validation accuracy (over its training seeds) of the cell the "
         "algorithm found best so far (by the single-seed val_acc it was shown); `@N`: after N queries; "
         "`final`: when the run stopped. Mean ± sample std over seeds."),
        "Regret: optimum - final accuracy. `vs random`: final mean minus random search's final mean.",
        ("Optimum (best mean validation accuracy in the table): "
         + ", ".join(f"{label} {value:.2f}" for label, value in optima.items()) + "."),
    ]
    return "\n".join(lines + legend) + "\n"
