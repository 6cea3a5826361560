"""DARTS search-step benchmark: image pairs/s and peak memory per configuration.

Each configuration runs in its own process (so peak RSS / CUDA peak memory is its own):
a supernet of 8 layers, 16 initial channels, 4 nodes, on 32x32x3 `synthetic` data at batch
64; one search step = one architecture step (on a validation batch) + one weight step (on
a training batch) = 64 image pairs. The baseline is second order, fp32, eager, no partial
channels; every other row changes one or more of those and is reported as a ratio against
the baseline measured in the same run.

    .venv/bin/python bench/darts_bench.py                # this machine, all rows
    .venv/bin/python bench/darts_bench.py --steps 3 --rows baseline,first
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROWS: dict[str, dict[str, object]] = {
    "baseline": {"order": "second", "precision": "fp32", "compile": False, "partial_channels": 1},
    "first": {"order": "first", "precision": "fp32", "compile": False, "partial_channels": 1},
    "bf16": {"order": "second", "precision": "bf16", "compile": False, "partial_channels": 1},
    "compiled": {"order": "second", "precision": "fp32", "compile": True, "partial_channels": 1},
    "pc4": {"order": "second", "precision": "fp32", "compile": False, "partial_channels": 4},
    # PC-DARTS' edge normalisation is on by default with partial channels ("auto"); this row
    # measures what the learned edge weights (betas) cost by switching them off.
    "pc4-no-edge-norm": {"order": "second", "precision": "fp32", "compile": False, "partial_channels": 4,
                         "edge_normalization": "false"},
    "first-pc4": {"order": "first", "precision": "fp32", "compile": False, "partial_channels": 4},
    "first-pc4-no-edge-norm": {"order": "first", "precision": "fp32", "compile": False, "partial_channels": 4,
                               "edge_normalization": "false"},
    "first-bf16-pc4": {"order": "first", "precision": "bf16", "compile": False, "partial_channels": 4},
    "second-bf16-pc4-compiled": {"order": "second", "precision": "bf16", "compile": True, "partial_channels": 4},
    # memory layout: channels_last is the default on CUDA only; these rows force it on
    "channels-last": {"order": "second", "precision": "fp32", "compile": False, "partial_channels": 1,
                      "channels_last": True},
    "channels-last-compiled": {"order": "second", "precision": "fp32", "compile": True, "partial_channels": 1,
                               "channels_last": True},
    "first-pc4-channels-last": {"order": "first", "precision": "fp32", "compile": False, "partial_channels": 4,
                                "channels_last": True},
}


def measure(row: dict[str, object], steps: int, device: str, batch: int, layers: int, channels: int) -> dict[str, object]:
    """Time `steps` search steps after one warm-up step, in this process."""
    import torch

    from trainer.darts.distributed import Topology
    from trainer.darts.search import SearchConfig, Searcher
    from trainer.darts.settings import DartsSettings

    settings = DartsSettings(num_epochs=50, batch_size=batch, init_channels=channels, num_nodes=4,
                             order=str(row["order"]), partial_channels=int(row["partial_channels"]),  # type: ignore[call-overload]
                             edge_normalization=str(row.get("edge_normalization", "auto")),
                             random_state=0, print_step=10**9)
    primitives = ("max_pooling_3x3", "avg_pooling_3x3", "skip_connection", "separable_convolution_3x3",
                  "separable_convolution_5x5", "dilated_convolution_3x3", "dilated_convolution_5x5")
    config = SearchConfig(settings, primitives, layers, dataset="synthetic", device=device,
                          precision=str(row["precision"]), compile=bool(row["compile"]),
                          channels_last=row.get("channels_last"),  # type: ignore[arg-type]
                          dataset_options={"size": batch * 2 * (steps + 2) + 64})
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    searcher = Searcher(config, Topology(0, 1, dev))

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    times = []
    searcher.config = SearchConfig(**{**config.__dict__, "steps_per_epoch": 1})
    started = time.perf_counter()
    searcher.train_epoch(0)  # warm-up (and compilation)
    warmup_s = time.perf_counter() - started
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        sync()
        t = time.perf_counter()
        searcher.train_epoch(0)
        sync()
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    if dev.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"median_step_s": median, "pairs_per_s": batch / median, "peak_mib": peak_mib, "warmup_s": warmup_s,
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or "cpu"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {list(ROWS)}")
    p.add_argument("--steps", type=int, default=3, help="timed steps per row (median reported)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: measure one row
    p.add_argument("--timeout", type=float, default=900, help="seconds per row before it is reported as timed out")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    if args.one:
        result = measure(ROWS[args.one], args.steps, args.device, args.batch, args.layers, args.channels)
        print(json.dumps(result))
        return
    results = {}
    for name in args.rows.split(","):
        cmd = [sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--device", args.device,
               "--batch", str(args.batch), "--layers", str(args.layers), "--channels", str(args.channels)]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=args.timeout,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        except subprocess.TimeoutExpired:
            print(f"{name}: timed out after {args.timeout:.0f} s", file=sys.stderr)
            continue
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:<26} {r['pairs_per_s']:8.2f} pairs/s  step {r['median_step_s']:7.3f} s  peak {r['peak_mib']:8.0f} MiB"
              f"  warm-up {r['warmup_s']:6.1f} s", flush=True)
    base = results.get("baseline")
    if base:
        print("\n| row | config | image pairs/s | x baseline | peak MiB | x baseline | warm-up s |")
        print("|---|---|---|---|---|---|---|")
        for name, r in results.items():
            cfg = ROWS[name]
            edge = "" if cfg["partial_channels"] == 1 else f", edge norm {cfg.get('edge_normalization', 'auto') != 'false'}"
            layout = ", channels_last" if cfg.get("channels_last") else ""
            desc = f"{cfg['order']}, {cfg['precision']}, {'compiled' if cfg['compile'] else 'eager'}, pc={cfg['partial_channels']}{edge}{layout}"
            print(f"| {name} | {desc} | {r['pairs_per_s']:.2f} | {r['pairs_per_s'] / base['pairs_per_s']:.2f} | "
                  f"{r['peak_mib']:.0f} | {r['peak_mib'] / base['peak_mib']:.2f} | {r['warmup_s']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
