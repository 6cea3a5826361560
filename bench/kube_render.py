"""Throughput of the controller's pure rendering: one Trial (trialTemplate substitution,
Trial body) plus its Job (labels, env, owner) per suggestion, for Katib's ENAS CPU example.

Baseline, measured in the same run: copy.deepcopy of the trialSpec, the least any renderer
must do to produce a fresh object. Usage: python bench/kube_render.py [--n 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import yaml

from controller.kube import render
from controller.template import meta_values, substitute, trial_parameter_values
from kubenas.experiment import load_experiment_dict

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    body = yaml.safe_load((ROOT / "tests" / "data" / "katib" / "enas-cpu.yaml").read_text())
    body["metadata"]["uid"] = "u"
    exp = load_experiment_dict(body)
    template = exp.spec.trial_template.trial_spec
    arch = "[[3], [0, 1], [2, 0, 1]]"
    config = '{"num_layers": 3, "input_sizes": [32, 32, 3], "output_sizes": [10], "embedding": {"3": {"opt_id": 3}}}'
    assignments = {"architecture": arch, "nn_config": config}

    def one(i: int) -> dict:
        name = f"enas-cpu-{i:08d}"
        values = trial_parameter_values(exp, assignments, name, "ns", "Job", "batch/v1")
        run_spec = substitute(template, values, meta_values(name, "ns", "Job", "batch/v1"))
        trial = render.render_trial(body, name, list(assignments.items()), run_spec)
        trial["metadata"]["uid"] = "t"
        return render.render_run(trial, "db:6789")

    def timed(fn) -> float:
        start = time.perf_counter()
        for i in range(args.n):
            fn(i)
        return (time.perf_counter() - start) / args.n

    render_s = [timed(one) for _ in range(args.repeats)]
    baseline_s = [timed(lambda i: copy.deepcopy(template)) for _ in range(args.repeats)]
    r, b = statistics.median(render_s), statistics.median(baseline_s)
    print(f"render trial+job: median {r * 1e6:.1f} us/trial ({1 / r:,.0f} trials/s)")
    print(f"baseline deepcopy: median {b * 1e6:.1f} us/trial ({1 / b:,.0f} /s)")
    print(f"ratio render/baseline: {r / b:.1f}x  (n={args.n}, repeats={args.repeats})")


if __name__ == "__main__":
    main()
