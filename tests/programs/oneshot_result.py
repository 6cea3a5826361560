"""Trial program for tests: stands in for a one-shot search (`trainer.enas_search`) by
printing what one prints, instantly: per-epoch metrics, a `Current-Architecture=` line,
then the found macro child as `Best-Architecture=` + `Best-NN-Config=` and the objective.

Reads the whole space the `enas-oneshot` suggestion hands out (`--search-space`): layer i
takes op i modulo the op count, and every layer after the first skips from the input.
"""

from __future__ import annotations

import argparse
import json

from kubenas.space import loads_lenient


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithm-settings", required=True)
    parser.add_argument("--search-space", required=True)
    args = parser.parse_args()
    loads_lenient(args.algorithm_settings)
    space = loads_lenient(args.search_space)
    ops = sorted(space["embedding"], key=int)
    rows = [[int(ops[i % len(ops)])] + [1 if j == 0 else 0 for j in range(i)] for i in range(space["num_layers"])]
    used = {str(r[0]): space["embedding"][str(r[0])] for r in rows}
    config = {k: v for k, v in space.items() if k != "embedding"} | {"embedding": used}
    print("epoch=1 Training-Loss=1.5 Training-Accuracy=0.4 Reward-Mean=0.4 Controller-Entropy=3.2", flush=True)
    print("Current-Architecture=" + json.dumps([[0]] * 1), flush=True)
    print("Best-Architecture=" + json.dumps(rows, separators=(",", ":")), flush=True)
    print("Best-NN-Config=" + json.dumps(config, separators=(",", ":")), flush=True)
    print("Validation-Accuracy=0.75", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
