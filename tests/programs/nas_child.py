"""Trial program for tests: a NAS child that parses Katib's ENAS assignments.

Reads `--architecture` and `--nn-config` (JSON, or Katib's single-quoted form), checks they
agree (one embedding per op used, layer count matches) and reports a deterministic
"accuracy" that favours conv ops and skips, so a search has something to optimise.
"""

from __future__ import annotations

import argparse
import sys

from kubenas.space import loads_lenient


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--architecture", required=True)
    parser.add_argument("--nn-config", required=True)
    args = parser.parse_args()
    arch = loads_lenient(args.architecture)
    config = loads_lenient(args.nn_config)
    if len(arch) != config["num_layers"]:
        print(f"error: {len(arch)} layers in architecture, num_layers={config['num_layers']}", file=sys.stderr)
        return 3
    score = 0.0
    for i, row in enumerate(arch):
        op = config["embedding"][str(row[0])]
        if len(row) != i + 1:
            print(f"error: layer {i} has {len(row) - 1} skip bits, expected {i}", file=sys.stderr)
            return 3
        score += 1.0 if op["opt_type"].startswith("convolution") else 0.5
        score += 0.1 * sum(row[1:])
    accuracy = score / (1.5 * len(arch))
    print(f"layers={len(arch)} ops={[config['embedding'][str(r[0])]['opt_type'] for r in arch]}", flush=True)
    print(f"Validation-accuracy={accuracy!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
