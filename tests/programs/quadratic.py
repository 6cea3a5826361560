"""Trial program for tests: a noisy-free quadratic reported over a few epochs.

loss = (x - 1)^2 + (y + 2)^2, reached after `--epochs` epochs (earlier epochs are worse),
printed in Katib's `name=value` format (or as JSON lines with `--json`), to stdout or
appended to `--metrics-file`. `--sleep` seconds per epoch; `--exit-code` to end with a
given status after printing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=float, required=True)
    parser.add_argument("--y", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--metrics-file", help="write the metric lines here instead of stdout")
    parser.add_argument("--json", action="store_true", help="metric lines as JSON objects")
    args = parser.parse_args()
    final = (args.x - 1.0) ** 2 + (args.y + 2.0) ** 2
    for epoch in range(1, args.epochs + 1):
        if args.sleep:
            time.sleep(args.sleep)
        loss = final + (args.epochs - epoch)
        metrics = {"epoch": epoch, "loss": loss, "accuracy": 1.0 / (1.0 + loss)}
        line = json.dumps(metrics) if args.json else " ".join(f"{k}={v!r}" for k, v in metrics.items())
        if args.metrics_file:
            with open(args.metrics_file, "a") as sink:
                sink.write(line + "\n")
        else:
            print(line, flush=True)
    print("done", file=sys.stderr, flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
