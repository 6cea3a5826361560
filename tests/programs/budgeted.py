"""Trial program for tests: a loss that gets better with the budget it is given.

loss after epoch e = (lr - 0.04)^2 * 1000 + (momentum - 0.8)^2 * 10 + 1 / e: the configuration
sets the floor, the epochs (the budget, `--epochs`) how close the trial gets to it. Printed
once per epoch in Katib's `name=value` format, as Katib's pytorch-mnist example prints `loss`.
"""

from __future__ import annotations

import argparse


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--momentum", type=float, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    args = parser.parse_args()
    floor = (args.lr - 0.04) ** 2 * 1000 + (args.momentum - 0.8) ** 2 * 10
    for epoch in range(1, args.epochs + 1):
        print(f"epoch={epoch} loss={floor + 1.0 / epoch!r}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
