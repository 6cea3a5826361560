"""Macro children that do not fit their input: how many a plain draw makes, and what the
fit-aware draw costs (random search's `MacroEncoding.random_vector`).

Per space: the share of plain uniform draws (one op per layer uniformly, as before the fit
checks) whose op chain does not fit the input (`kubenas.op_shapes.first_misfit`), and the
median time of 1,000 draws, fit-aware (a fresh encoding each repeat, so its remembered
answers are built inside the timing) against the plain draw measured in the same run.

    PYTHONPATH=. python bench/macro_fit.py [--draws 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from pathlib import Path

from kubenas.experiment import load_experiment_file
from kubenas.op_shapes import first_misfit
from kubenas.space import NasConfig
from suggestion.algorithms.encoding.macro import MacroEncoding

ROOT = Path(__file__).resolve().parents[1]
SPACES = {
    "Katib enas-gpu (8 layers, 106 ops, 32x32)": ROOT / "tests" / "data" / "katib" / "enas-gpu.yaml",
    "enas-oneshot-fashion-mnist (8 layers, 6 ops, 28x28)": ROOT / "examples" / "enas-oneshot-fashion-mnist.yaml",
    "enas-digits (macro, 8x8)": ROOT / "examples" / "enas-digits.yaml",
}


def plain_ops(encoding: MacroEncoding, rng: random.Random) -> list[int]:
    """The draw before the fit checks: each layer's op uniformly, then its skip bits."""
    ops: list[int] = []
    for i in range(encoding.num_layers):
        ops.append(rng.randrange(len(encoding.ops)))
        for _ in range(i):
            rng.randrange(2)
    return ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print("| space | plain draws that do not fit | 1,000 plain draws ms | 1,000 fit-aware draws ms | ratio |")
    print("|---|---:|---:|---:|---:|")
    for label, path in SPACES.items():
        nas = load_experiment_file(path).search_space().nas_config
        assert isinstance(nas, NasConfig)
        probe = MacroEncoding(nas)
        assert probe.input_hw is not None
        rng = random.Random(0)
        misfits = sum(first_misfit(probe.ops, probe.input_hw, plain_ops(probe, rng)) is not None
                      for _ in range(args.draws))
        plain, aware = [], []
        for rep in range(args.repeat):
            rng = random.Random(rep)
            start = time.perf_counter()
            for _ in range(args.draws):
                plain_ops(probe, rng)
            plain.append(time.perf_counter() - start)
            encoding = MacroEncoding(nas)
            rng = random.Random(rep)
            start = time.perf_counter()
            for _ in range(args.draws):
                encoding.random_vector(rng)
            aware.append(time.perf_counter() - start)
        p, a = statistics.median(plain) * 1000, statistics.median(aware) * 1000
        print(f"| {label} | {misfits / args.draws:.1%} | {p:.1f} | {a:.1f} | {a / p:.2f} |")


if __name__ == "__main__":
    main()
