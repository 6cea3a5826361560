"""Training throughput of the NAS-Bench-201 network (`kubenas-train nb201`) on this machine.

The benchmark's own skeleton size: C = 16 initial channels, N = 5 cells per stage, 10
classes, 32x32x3 `synthetic` data, batch 64, SGD with momentum (the trainer's optimizer).
One training step = forward, backward, gradient clipping and an optimizer step on one batch.
Rows are cells; the baseline is the benchmark's best CIFAR-10 cell (table key 333132),
measured in the same run. Each row runs in its own process with one torch thread unless
--threads says otherwise (a trial's default, see trainer.enas.main.set_threads).

    .venv/bin/python bench/nb201_train_bench.py [--steps 10] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CELLS: dict[str, str] = {
    "best (333132)": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "skip-ish (111131)": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "all-conv3x3 (333333)": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
}
BASELINE = "best (333132)"


def measure(cell_text: str, steps: int, batch: int, channels: int, layers: int, threads: int) -> dict[str, float]:
    """Median seconds of `steps` training steps after two warm-up steps, in this process."""
    import torch
    from torch import nn

    from kubenas.nb201 import Cell201
    from trainer.data import load_dataset
    from trainer.nb201.model import Nb201Network
    from trainer.train import count_params

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = load_dataset("synthetic", None, "cpu", input_shape=(3, 32, 32), num_classes=10, size=batch * 8)
    model = Nb201Network(Cell201.from_string(cell_text), 3, 10, layers, channels)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = data.train.x[:batch], data.train.y[:batch]
    model.train()
    times = []
    for step in range(steps + 2):
        started = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"median_step_s": median, "images_per_s": batch / median, "params": count_params(model),
            "min_step_s": min(times), "max_step_s": max(times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--layers", type=int, default=5, help="cells per stage (N)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: measure one row
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(CELLS[args.one], args.steps, args.batch, args.channels, args.layers, args.threads)))
        return
    results: dict[str, dict[str, float]] = {}
    for name in CELLS:
        cmd = [sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--batch", str(args.batch),
               "--channels", str(args.channels), "--layers", str(args.layers), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)})
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name:<22} {results[name]['images_per_s']:8.1f} img/s  step {results[name]['median_step_s']:.3f} s",
              flush=True)
    base = results.get(BASELINE)
    if base:
        print(f"\nC={args.channels}, N={args.layers}, batch {args.batch}, 32x32x3, {args.threads} thread(s), "
              f"median of {args.steps} steps\n")
        print("| cell | params | train img/s | x best cell | median step s |")
        print("|---|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {int(r['params']):,} | {r['images_per_s']:.1f} | "
                  f"{r['images_per_s'] / base['images_per_s']:.2f} | {r['median_step_s']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
