"""Does `kubenas run` stay flat in memory whatever a trial prints? (bench for bench/RESULTS.md)

Starts a real `kubenas run` of one trial (StdOut collector) and samples the runner
process's resident memory with psutil every 20 ms; the peak reported is the larger of the
sampled maximum and the kernel's high-water mark (VmHWM) read while the process lives. The
runner's CPU time (user + system, last sample) is reported beside the wall time: on a
shared machine it says more about the runner's own cost than the wall clock does.
Two trials:

    bytes   prints --gigabytes GB of 1 KiB lines without metrics, then `loss=0.5`
    metrics prints --lines lines `loss=<i> acc=<i>`, one metric line after another

    .venv/bin/python bench/runner_memory.py [--case bytes|metrics|both] [--gigabytes 1] [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]

_BYTES = """
import sys
out = sys.stdout.buffer
line = b"#" * 1023 + b"\\n"
block = line * 1024
for _ in range({mib}):
    out.write(block)
out.write(b"loss=0.5\\n")
"""
_METRICS = """
import sys
out = sys.stdout
for i in range({lines}):
    out.write(f"loss={{1.0 / (i + 1)!r}} acc={{i / {lines}!r}}\\n")
"""


def _experiment(program: str) -> dict:
    container = {"name": "training-container", "image": "python:3.11",
                 "command": [sys.executable, "-c", program, "${trialParameters.x}"]}
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "memory"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss", "additionalMetricNames": ["acc"]},
            "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "1"}]},
            "parallelTrialCount": 1, "maxTrialCount": 1,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job",
                              "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}},
            },
        },
    }


def _hwm_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(program: str, tmp: Path) -> dict[str, float | int | str]:
    path = tmp / "memory.yaml"
    path.write_text(yaml.safe_dump(_experiment(program)))
    workdir = tmp / f"work-{time.monotonic_ns()}"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kubenas", "run", str(path), "--workdir", str(workdir)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runner = psutil.Process(proc.pid)
    peak, cpu = 0, 0.0
    while proc.poll() is None:
        try:
            peak = max(peak, runner.memory_info().rss, _hwm_bytes(proc.pid))
            times = runner.cpu_times()
            cpu = times.user + times.system
        except psutil.Error:
            break
        time.sleep(0.02)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"kubenas run failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    (trial,) = json.loads((workdir / "results.json").read_text())["trials"]
    log = workdir / "trials" / trial["name"] / "stdout.log"
    return {"peak_rss_mb": round(peak / 2**20, 1), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "condition": trial["condition"],
            "loss": trial["observation"].get("loss", ""),
            "stdout_log_mb": round(sum(p.stat().st_size for p in log.parent.glob("stdout.log*")) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["bytes", "metrics", "both"], default="both")
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    cases = {"bytes": (f"{args.gigabytes:g} GB of output", _BYTES.format(mib=int(args.gigabytes * 1024))),
             "metrics": (f"{args.lines:,} metric lines", _METRICS.format(lines=args.lines))}
    chosen = list(cases) if args.case == "both" else [args.case]
    print(f"# runner memory ({platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
          f"Python {platform.python_version()})")
    print("| trial prints | runner peak RSS (MB) | wall (s) | runner CPU (s) | trial | stdout.log kept (MB) |")
    print("|---|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for key in chosen:
            label, program = cases[key]
            row = measure(program, Path(tmp))
            print(f"| {label} | {row['peak_rss_mb']} | {row['wall_s']} | {row['cpu_s']} | {row['condition']} "
                  f"(loss={row['loss']}) | {row['stdout_log_mb']} |", flush=True)


if __name__ == "__main__":
    main()
