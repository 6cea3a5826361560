"""How long validating an Experiment takes, against plain YAML parsing of the same file.

Run: python bench/validate_speed.py [--repeats 200] [--cli-repeats 5]
Prints a Markdown table (medians) for bench/RESULTS.md. Two measurements:
  in-process: load_experiment_file (parse + model + defaults + rules) vs yaml.safe_load;
  command:    `kubenas validate FILE` as a new process vs `python -c "import yaml"`.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from kubenas.experiment import load_experiment_file

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "tests" / "data" / "katib").glob("*.yaml")) + sorted((ROOT / "examples").glob("*-hpo.yaml"))


def _pure_parse(path: Path) -> object:
    return yaml.safe_load(path.read_text())


def _c_parse(path: Path) -> object:
    return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cli-repeats", type=int, default=5)
    args = parser.parse_args()
    print("| file | yaml.safe_load (ms) | yaml CSafeLoader (ms) | load_experiment_file (ms) | ratio to safe_load | ratio to CSafeLoader |")
    print("|---|---:|---:|---:|---:|---:|")
    for path in FILES:
        base = median_seconds(functools.partial(_pure_parse, path), args.repeats)
        fast = median_seconds(functools.partial(_c_parse, path), args.repeats)
        full = median_seconds(functools.partial(load_experiment_file, path), args.repeats)
        print(f"| {path.relative_to(ROOT)} | {base * 1e3:.2f} | {fast * 1e3:.2f} | {full * 1e3:.2f} "
              f"| {full / base:.2f} | {full / fast:.2f} |")
    kubenas = Path(sys.executable).parent / "kubenas"
    target = ROOT / "tests" / "data" / "katib" / "enas-gpu.yaml"
    python = median_seconds(lambda: subprocess.run([sys.executable, "-c", "import yaml"], check=True), args.cli_repeats)
    command = median_seconds(
        lambda: subprocess.run([str(kubenas), "validate", str(target)], check=True, capture_output=True), args.cli_repeats
    )
    print()
    print("| command | median (s) | ratio |")
    print("|---|---:|---:|")
    print(f"| python -c 'import yaml' (baseline) | {python:.3f} | 1.00 |")
    print(f"| kubenas validate enas-gpu.yaml | {command:.3f} | {command / python:.2f} |")


if __name__ == "__main__":
    main()
