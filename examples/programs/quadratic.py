"""A trial program for HPO examples: minimise (x - 1)^2 + (y + 2)^2.

Run by the examples as `python examples/programs/quadratic.py --x=<x> --y=<y>`. It reports
a `loss` per "epoch" that decays to the true value, in the metric line format the StdOut
collector reads, so `loss` strategy min/latest both give (x - 1)^2 + (y + 2)^2.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from kubenas.metrics import format_metrics, now_rfc3339


def quadratic(x: float, y: float) -> float:
    return (x - 1.0) ** 2 + (y + 2.0) ** 2


def finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x", type=finite, required=True, help="first coordinate (optimum 1)")
    parser.add_argument("--y", type=finite, required=True, help="second coordinate (optimum -2)")
    parser.add_argument("--epochs", type=int, default=3, help="metric lines to print (>= 1)")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to wait per epoch")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs: {args.epochs} — must be >= 1")
    target = quadratic(args.x, args.y)
    for epoch in range(args.epochs):
        # Early epochs report a worse loss, as a training curve would; the last is exact.
        remaining = args.epochs - 1 - epoch
        loss = target * (1.0 + remaining / args.epochs) + remaining
        print(f"epoch {epoch + 1}/{args.epochs}")
        print(format_metrics({"loss": loss}, now_rfc3339()), flush=True)
        if args.sleep > 0:
            time.sleep(args.sleep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
