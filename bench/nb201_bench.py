"""The issue's NAS-Bench-201 benchmark, end to end, with `kubenas bench nb201` itself.

Three real invocations of the CLI (each a suggestion server per algorithm over gRPC):

1. queries: every NB201-capable search strategy, 10 seeds x 100 queries, on the chosen
   datasets (default all three); target: each mean beats random search's mean.
2. rea-200ep: regularised evolution (and random, the baseline in the same run) at the
   paper's 12,000 simulated seconds, charging each query this package's 200-epoch
   train_time (about 6 queries on CIFAR-10: the budget was not meant for that).
3. rea-12ep: the same with `--time-scale 0.06`, charging 12/200 of it: NB201's own R_EA.py
   charges the 12-epoch proxy training (hp="12"); its fitness was the 12-epoch accuracy,
   ours is one seed's 200-epoch validation accuracy (the package has no 12-epoch data).
   Target: within 0.3 points of the paper's 91.19.

Raw outputs go to bench/results/nb201-*/ (results.json, table.md, anytime.png); the
comparison with the targets is printed and written to bench/results/nb201-summary.md.

Run: .venv/bin/python bench/nb201_bench.py [--seeds 10] [--datasets cifar10,cifar100,imagenet16-120]
     [--rea-seeds 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAPER_REA = 91.19            # NB201 paper, CIFAR-10 validation, REA at 12,000 s
PAPER_RANDOM = 90.93
REA_MARGIN = 0.3


def _bench(name: str, *flags: str) -> tuple[dict[str, Any], float]:
    out = RESULTS / f"nb201-{name}"
    argv = [sys.executable, "-m", "kubenas", "bench", "nb201", *flags, "--out", str(out)]
    print("$", " ".join(argv[1:]), flush=True)
    started = time.monotonic()
    subprocess.run(argv, cwd=ROOT, check=True)
    return json.loads((out / "results.json").read_text()), time.monotonic() - started


def _rows(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["dataset"], row["algorithm"]): row for row in doc["summary"]}


def _finals(doc: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    for run in doc["runs"]:
        out.setdefault((run["dataset"], run["algorithm"]), []).append(run["incumbent_mean"])
    return out


def _p_greater(values: list[float], baseline: list[float]) -> float:
    """One-sided Mann-Whitney U: the chance of a difference at least this favourable if the
    algorithm were no better than random search (10 seeds each: a mean alone can be luck)."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(values, baseline, alternative="greater").pvalue)


def _fmt(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rea-seeds", type=int, default=100, help="seeds of the 12,000 s runs (cheap; the paper ran 500)")
    parser.add_argument("--datasets", default="cifar10,cifar100,imagenet16-120")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)

    lines = ["# NAS-Bench-201 benchmark (kubenas bench nb201)", ""]
    doc, wall = _bench("queries", "--datasets", args.datasets, "--seeds", str(args.seeds), "--queries", "100")
    finals = _finals(doc)
    lines += [f"## 100 queries, {args.seeds} seeds (wall {wall:.0f} s)", "",
              "| dataset | algorithm | @10 | @50 | @100 | regret | vs random | beats random's mean | p (one-sided MWU) |",
              "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for row in doc["summary"]:
        at = row["at_queries"]
        delta = row["vs_random"]
        p = "" if delta is None else f"{_p_greater(finals[row['dataset'], row['algorithm']], finals[row['dataset'], 'random']):.3f}"
        lines.append(f"| {row['dataset']} | {row['algorithm']} | {_fmt(at['10'])} | {_fmt(at['50'])} | "
                     f"{_fmt(at['100'])} | {_fmt(row['regret'])} | {'' if delta is None else f'{delta:+.2f}'} | "
                     f"{'' if delta is None else ('yes' if delta > 0 else 'NO')} | {p} |")

    lines += ["", f"## 12,000 simulated seconds, CIFAR-10, {args.rea_seeds} seeds", "",
              "| time charged per query | algorithm | queries | accuracy | vs paper | within 0.3 of 91.19 |",
              "|---|---|---:|---:|---:|---|"]
    for name, scale, label in (("rea-200ep", "1", "200-epoch train_time"), ("rea-12ep", "0.06", "12-epoch proxy (x0.06)")):
        doc, _ = _bench(name, "--algorithms", "random,evolution", "--seeds", str(args.rea_seeds),
                        "--budget-seconds", "12000", "--time-scale", scale)
        for (_, algorithm), row in _rows(doc).items():
            paper = PAPER_REA if algorithm == "evolution" else PAPER_RANDOM
            diff = row["final"]["mean"] - paper
            verdict = ("yes" if abs(diff) <= REA_MARGIN else "no") if algorithm == "evolution" else ""
            lines.append(f"| {label} | {algorithm} | {row['queries']['mean']:.1f} | {_fmt(row['final'])} | "
                         f"{diff:+.2f} vs {paper} | {verdict} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "nb201-summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
