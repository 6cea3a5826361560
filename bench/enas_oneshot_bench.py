"""One-shot ENAS supernet benchmark: shared-weight training throughput and peak memory.

Each row runs `trainer.enas_search` in its own process (so peak RSS is its own) for one
epoch of `--steps` shared-weight steps, one child sampled per minibatch; images/s counts
only those steps (not the controller's validation rewards or the final selection), per
wall-clock second and per second of the process's CPU time (what a shared machine's other
load does not change).

    .venv/bin/python bench/enas_oneshot_bench.py                  # all rows, 3 repeats
    .venv/bin/python bench/enas_oneshot_bench.py --rows digits-macro --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _ops(filters: int) -> dict[str, Any]:
    conv = [("convolution", k) for k in (3, 5)] + [("separable_convolution", k) for k in (3, 5)]
    ops = [{"opt_type": t, "opt_params": {"filter_size": k, "num_filter": filters}} for t, k in conv]
    ops.append({"opt_type": "reduction", "opt_params": {"reduction_type": "max_pooling", "pool_size": 2}})
    return {str(i): {"opt_id": i, **op} for i, op in enumerate(ops)}


# name -> (search space, settings, dataset options or None for a real dataset)
ROWS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]] = {
    # examples/enas-oneshot-digits.yaml: 4 layers x 5 ops, 32 channels, 8x8x1.
    "digits-macro": ({"num_layers": 4, "input_sizes": [8, 8, 1], "output_sizes": [10], "embedding": _ops(32)},
                     {"dataset": "digits", "batch_size": 64}, None),
    # examples/enas-oneshot-fashion-mnist.yaml's space on 28x28x1 synthetic images (same shapes).
    "fmnist-shape-macro": ({"num_layers": 8, "input_sizes": [28, 28, 1], "output_sizes": [10], "embedding": _ops(32)},
                           {"dataset": "synthetic", "batch_size": 128},
                           {"input_shape": (1, 28, 28), "num_classes": 10, "size": 4096}),
    # Micro: 3 cells of 3 nodes over 3 primitives, 8 channels, 8x8x1.
    "digits-micro": ({"search_mode": "micro", "num_layers": 3, "num_nodes": 3, "input_sizes": [8, 8, 1],
                      "output_sizes": [10], "primitives": ["separable_convolution_3x3", "max_pooling_3x3",
                                                           "skip_connection"]},
                     {"dataset": "digits", "batch_size": 64, "search_mode": "micro", "num_nodes": 3,
                      "init_channels": 8}, None),
}

_CHILD = """
import json, sys
from pathlib import Path
from trainer.enas_search.search import SearchConfig, run
from trainer.enas_search.settings import parse_algorithm_settings, parse_search_space
row = json.loads(sys.argv[1])
settings = parse_algorithm_settings(json.dumps(row["settings"]))
space = parse_search_space(json.dumps(row["space"]), settings.search_mode)
run(SearchConfig(settings, space, device="cpu", output_dir=Path(row["out"]), steps_per_epoch=row["steps"],
                 dataset_options=row["options"] or {}), out=open("/dev/null", "w"))
"""


def measure(name: str, steps: int) -> dict[str, float]:
    space, settings, options = ROWS[name]
    with tempfile.TemporaryDirectory() as out:
        row = {"space": space, "settings": {**settings, "num_epochs": 1, "random_state": 0,
                                            "controller_steps_per_epoch": 2, "final_children": 1},
               "options": options, "steps": steps, "out": out}
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", _CHILD, json.dumps(row)], cwd=ROOT, env=env, check=True,
                       capture_output=True, text=True)
        summary = json.loads((Path(out) / "search.json").read_text())
    return {"images_per_second": summary["supernet_images_per_second"],
            "images_per_cpu_second": summary["supernet_images_per_cpu_second"],
            "peak_rss_mb": summary["peak_rss_bytes"] / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, 1 torch thread")
    print("| row | images/s wall (median) | images per CPU-second (median) | peak RSS MB (median) | runs |")
    print("|---|---:|---:|---:|---:|")
    for name in args.rows.split(","):
        runs = [measure(name, args.steps) for _ in range(args.repeats)]
        ips = statistics.median(r["images_per_second"] for r in runs)
        cpu = statistics.median(r["images_per_cpu_second"] for r in runs)
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        print(f"| {name} | {ips:.0f} | {cpu:.0f} | {rss:.0f} | {len(runs)} |", flush=True)


if __name__ == "__main__":
    main()
