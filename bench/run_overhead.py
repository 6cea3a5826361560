"""How much does `kubenas run` add per trial? (bench for README.md; raw table in bench/results/run.md, curated in bench/RESULTS.md)

A trial that exits at once (`python -c pass`) is run N times by `kubenas run` (random
search, parallelTrialCount 1, so trials are back to back) and, as the baseline measured in
the same run, spawned N times bare in a loop with subprocess. The per-trial cycle of the
runner is the time from one trial's start to the next one's start (from results.json);
its overhead is that minus the bare spawn time. Fixed costs (start-up until the first
trial, teardown after the last) are reported separately.

    .venv/bin/python bench/run_overhead.py [--trials 40] [--repeats 3] [--out bench/results/run.md]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TRIAL = [sys.executable, "-c", "pass"]


def _experiment(n: int) -> dict:
    container = {"name": "training-container", "image": "python:3.11",
                 "command": [*TRIAL, "${trialParameters.x}"]}
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "overhead"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "1"}]},
            "parallelTrialCount": 1, "maxTrialCount": n, "maxFailedTrialCount": n,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
            "metricsCollectorSpec": {"collector": {"kind": "None"}},
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job",
                              "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}},
            },
        },
    }


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def bare(n: int) -> list[float]:
    """Wall time of each of n bare spawns of the trial command."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        subprocess.run([*TRIAL, str(i)], check=True)
        times.append(time.perf_counter() - started)
    return times


def kubenas(n: int, tmp: Path) -> dict[str, float | list[float]]:
    path = tmp / "overhead.yaml"
    path.write_text(yaml.safe_dump(_experiment(n)))
    workdir = tmp / f"work-{time.monotonic_ns()}"
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "kubenas", "run", str(path), "--workdir", str(workdir)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"kubenas run failed ({done.returncode}):\n{done.stderr}")
    trials = json.loads((workdir / "results.json").read_text())["trials"]
    starts = [_seconds(t["start_time"]) for t in trials]
    ends = [_seconds(t["completion_time"]) for t in trials]
    assert all(t["condition"] == "Succeeded" for t in trials), trials
    return {
        "total": ended - started,
        "startup": starts[0] - started,
        "teardown": ended - ends[-1],
        "cycles": [b - a for a, b in itertools.pairwise(starts)],
        "gaps": [b - a for a, b in zip(ends, starts[1:])],
        "durations": [t["duration_s"] for t in trials],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--machine", default="2-core Intel Xeon VM, no GPU")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "run.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            # the baseline brackets the run, so a load change on a shared machine hits both
            base = bare(args.trials // 2)
            run = kubenas(args.trials, Path(tmp))
            base += bare(args.trials - args.trials // 2)
            base_med = statistics.median(base)
            cycle_med = statistics.median(run["cycles"])
            rows.append({
                "bare_ms": base_med * 1e3, "cycle_ms": cycle_med * 1e3,
                "overhead_ms": (cycle_med - base_med) * 1e3, "ratio": cycle_med / base_med,
                "gap_ms": statistics.median(run["gaps"]) * 1e3,
                "startup_s": run["startup"], "teardown_s": run["teardown"], "total_s": run["total"],
                "bare_total_s": sum(base),
            })
            print(json.dumps({"repeat": r, **{k: round(v, 3) for k, v in rows[-1].items()}}), flush=True)
    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    lines = [
        "# `kubenas run` overhead per trial",
        "",
        (f"Machine: {args.machine} ({platform.python_implementation()} {platform.python_version()}, "
         f"{platform.system()} {platform.release()}). Command: `.venv/bin/python bench/run_overhead.py "
         f"--trials {args.trials} --repeats {args.repeats}`."),
        "",
        (f"Trial: `python -c pass` (exits at once), {args.trials} trials, random search, parallelTrialCount 1, "
         "collector None. Baseline, measured in the same run: the same command spawned "
         f"{args.trials} times bare with `subprocess.run`. Cycle = start of one trial to start of the next "
         "(from results.json): spawn + wait + GetSuggestions with the full history + SQLite writes + "
         "bookkeeping. Medians over trials, then the median of the repeats."),
        "",
        ("| repeat | bare spawn (ms) | kubenas cycle (ms) | overhead/trial (ms) | ratio | gap between trials (ms) "
         "| start-up (s) | teardown (s) | total (s) | bare total (s) |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(rows):
        lines.append(f"| {i} | {row['bare_ms']:.1f} | {row['cycle_ms']:.1f} | {row['overhead_ms']:.1f} | "
                     f"{row['ratio']:.2f} | {row['gap_ms']:.1f} | {row['startup_s']:.2f} | {row['teardown_s']:.2f} | "
                     f"{row['total_s']:.2f} | {row['bare_total_s']:.2f} |")
    lines += [
        (f"| **median** | **{med['bare_ms']:.1f}** | **{med['cycle_ms']:.1f}** | **{med['overhead_ms']:.1f}** | "
         f"**{med['ratio']:.2f}** | **{med['gap_ms']:.1f}** | **{med['startup_s']:.2f}** | **{med['teardown_s']:.2f}** | "
         f"**{med['total_s']:.2f}** | **{med['bare_total_s']:.2f}** |"),
        "",
        (f"Goal: < 50 ms overhead per trial — {'met' if med['overhead_ms'] < 50 else 'NOT met'} "
         f"({med['overhead_ms']:.1f} ms). Start-up (CLI, suggestion server process, health check, "
         "validation) and teardown (plot, results, server shutdown) are paid once per run. "
         "Gap = one trial's recorded completion to the next one's start: the runner's own work between "
         "trials (GetSuggestions, store writes), independent of how long the trial program takes. "
         "The machine is shared with other jobs, so single repeats are noisy; compare medians."),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
