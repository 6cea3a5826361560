"""A pbt trial without a model: one "training step" that resumes from and saves a JSON checkpoint.

`python pbt_step.py --lr=<x> --checkpoint=<dir>` reads `<dir>/state.json` when present
(the score and the trials that wrote it), adds a gain that is largest at lr 0.01, prints
`score=<total>` (or --metric=<total>) and writes the state back with this trial (KATIB_TRIAL_NAME) appended.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--metric", default="score", help="the name the total is printed under")
    parser.add_argument("--generation", help="the trial's generation label, kept in the state when given")
    args = parser.parse_args()
    path = Path(args.checkpoint) / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {"score": 0.0, "lineage": []}
    if state["lineage"]:
        print(f"resumed from {state['lineage'][-1]}")
    state["score"] += 1.0 / (1.0 + abs(math.log10(args.lr / 0.01)))
    state["lineage"].append(os.environ["KATIB_TRIAL_NAME"])
    if args.generation is not None:
        state.setdefault("generations", []).append(args.generation)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    print(f"{args.metric}={state['score']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
