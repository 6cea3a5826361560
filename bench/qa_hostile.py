"""Costs of hostile input before and after the QA fixes, measured in one run.

  metric lines: parse_line with Katib's default regex run by plain finditer (the baseline,
  what it did before) vs parse_line now, on an ordinary line and on lines holding one long
  word with no `=` (a hash, base64) of growing length;
  YAML: refusing a billion-laughs document vs loading the ordinary example.

    .venv/bin/python bench/qa_hostile.py      # prints a Markdown table
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from kubenas.experiment import SpecError, load_experiment_text
from kubenas.metrics import DEFAULT_METRICS_FORMAT, parse_line

ROOT = Path(__file__).resolve().parents[1]


def median_s(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# The same regex as a distinct object (re caches compiled patterns, and "(?:)" matches
# nothing): parse_line then runs plain finditer over it, as it did before the fix.
KATIB_FINDITER = [re.compile("(?:)" + DEFAULT_METRICS_FORMAT)]


def main() -> None:
    print("| input | baseline: finditer (ms) | now (ms) | speed-up |")
    print("|---|---|---|---|")
    ordinary = "epoch=3 loss=0.2345 accuracy=0.9123 Validation-Accuracy=0.88 lr=1e-3"
    cases = [("ordinary metric line (x1000)", ordinary, 1000)]
    cases += [(f"{n:,}-character word + loss=0.5", "x" * n + " loss=0.5", 1) for n in (1_000, 4_000, 16_000)]
    for label, line, times in cases:
        base = median_s(lambda line=line, times=times: [parse_line(line, ["loss", "accuracy"], KATIB_FINDITER)
                                                        for _ in range(times)])
        ours = median_s(lambda line=line, times=times: [parse_line(line, ["loss", "accuracy"]) for _ in range(times)])
        print(f"| {label} | {base * 1e3:.2f} | {ours * 1e3:.2f} | {base / ours:.1f}x |")
    example = (ROOT / "examples" / "random-hpo.yaml").read_text()
    laughs = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" if i else "l0: &l0 [lol, lol, lol]\n"
                     for i in range(9))

    def refuse() -> None:
        try:
            load_experiment_text(laughs)
        except SpecError:
            return
        raise AssertionError("a bomb was accepted")

    print()
    print("| YAML | load or refuse (ms) |")
    print("|---|---|")
    print(f"| examples/random-hpo.yaml (valid) | {median_s(lambda: load_experiment_text(example)) * 1e3:.2f} |")
    print(f"| billion laughs, 9 levels (3 x 9^8 strings expanded), refused | {median_s(refuse) * 1e3:.2f} |")


if __name__ == "__main__":
    main()
