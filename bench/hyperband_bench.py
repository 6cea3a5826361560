"""hyperband: GetSuggestions latency at 100 and 1,000 trials, and the budget it needs to match
random search on a synthetic objective whose noise shrinks with the budget.

Latency: histories made by hyperband itself (driven in-process, every trial finished with the
synthetic loss), with the bracket state those calls returned; then the next GetSuggestions
(n=1 and n=parallelTrialCount) is timed over real gRPC against a `python -m kubenas
suggestion serve` process, median of `--calls`, and as CPU in-process (validate + propose).
Baseline: `random` on the same history in the same run. r_l=81 (s_max 4, 81 trials at once)
for 100 trials, r_l=729 (s_max 6) for 1,000.

Budget: loss(x, b) = sum_i (x_i - c_i)^2 + 0.3 / b + N(0, (0.3 / sqrt(b))^2) over x in [0, 1]^4,
budget b in 1..R (R = r_l = 27, eta = 3). Random search (kubenas `random`) runs trials at
budget R; hyperband (kubenas `hyperband`, restarted on a fresh history after each complete
pass, as a new experiment would be) at its own budgets. A trial costs its budget. Both report
Katib's optimal trial: the best observed loss so far; its score is its true loss (without the
budget term and the noise). Target = random search's score after `--random-trials` trials;
for each method, the budget spent when its score first reaches the target. 10 seeds.

Run: python bench/hyperband_bench.py [--calls 10] [--seeds 10] [--random-trials 60]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from suggest_latency import served  # noqa: E402

from kubenas.api.v1beta1 import api_pb2  # noqa: E402
from kubenas.proto_convert import objective_to_proto, search_space_to_proto, trial_to_proto  # noqa: E402
from kubenas.space import FeasibleSpace, ParameterSpec, ParameterType, SearchSpace  # noqa: E402
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord  # noqa: E402
from suggestion.algorithms.base import Problem, SearchSpaceExhausted  # noqa: E402
from suggestion.algorithms.hyperband import Hyperband  # noqa: E402
from suggestion.algorithms.random_search import RandomSearch  # noqa: E402

LOSS = Objective(ObjectiveType.MINIMIZE, "loss")
CENTRE = (0.3, 0.7, 0.45, 0.6)
R, ETA = 27, 3


def _space(budget_max: int) -> SearchSpace:
    params = [ParameterSpec(f"x{i}", ParameterType.DOUBLE, FeasibleSpace(min="0", max="1")) for i in range(4)]
    params.append(ParameterSpec("epochs", ParameterType.INT, FeasibleSpace(min="1", max=str(budget_max))))
    return SearchSpace(parameters=tuple(params))


def true_loss(a: dict[str, str]) -> float:
    return sum((float(a[f"x{i}"]) - c) ** 2 for i, c in enumerate(CENTRE))


def observed(a: dict[str, str], rng: random.Random) -> float:
    b = int(a["epochs"])
    return true_loss(a) + 0.3 / b + rng.gauss(0.0, 0.3 / math.sqrt(b))


def _finish(a: dict[str, str], name: str, labels: dict[str, str], rng: random.Random) -> TrialRecord:
    return TrialRecord(name, dict(a), TrialCondition.SUCCEEDED, {"loss": observed(a, rng)}, dict(labels))


# --- latency -----------------------------------------------------------------------------

def hyperband_history(size: int, r_l: int, seed: int = 1) -> tuple[list[TrialRecord], dict[str, str], int]:
    """At least `size` finished trials as hyperband makes them, with the state it returned."""
    parallel = ETA ** int(math.log(r_l) / math.log(ETA) + 1e-9)
    settings = {"resource_name": "epochs", "r_l": str(r_l), "eta": str(ETA), "random_state": str(seed)}
    space, algo, rng, history = _space(r_l), Hyperband(), random.Random(seed), []
    while len(history) < size:
        proposal = algo.propose(Problem("bench", space, LOSS, settings, parallel_trial_count=parallel),
                                history, parallel)
        settings = {**settings, **(proposal.settings or {})}
        history += [_finish(s.assignments, f"t{len(history) + k:05d}", dict(s.labels), rng)
                    for k, s in enumerate(proposal.suggestions)]
    return history, settings, parallel


def _request(space: SearchSpace, algorithm: str, settings: dict[str, str], history: list[TrialRecord],
             n: int, parallel: int) -> api_pb2.GetSuggestionsRequest:
    spec = search_space_to_proto(space)
    spec.objective.CopyFrom(objective_to_proto(LOSS))
    spec.algorithm.algorithm_name = algorithm
    spec.parallel_trial_count = parallel
    for k, v in settings.items():
        spec.algorithm.algorithm_settings.add(name=k, value=v)
    return api_pb2.GetSuggestionsRequest(experiment=api_pb2.Experiment(name="bench", spec=spec),
                                         trials=[trial_to_proto(t, LOSS) for t in history],
                                         current_request_number=n, total_request_number=len(history) + n)


def _in_process(algo: Any, problem: Problem, history: list[TrialRecord], n: int) -> None:
    algo.validate(problem)
    algo.propose(problem, history, n)


def _median_ms(call: Any, calls: int, clock: Any = time.perf_counter_ns) -> float:
    call()
    samples = []
    for _ in range(calls):
        started = clock()
        call()
        samples.append((clock() - started) / 1e6)
    return statistics.median(samples)


def latency(calls: int) -> list[str]:
    rows = ["| algorithm | trials | what the call does | CPU ms, n=1 | CPU ms, n=parallel | wall ms, n=1 | "
            "wall ms, n=parallel |", "|---|---:|---|---:|---:|---:|---:|"]
    for size, r_l in ((100, 81), (1000, 729)):
        history, state, parallel = hyperband_history(size, r_l)
        space = _space(r_l)
        for algorithm, settings in (("random", {"random_state": "1"}), ("hyperband", state)):
            algo = RandomSearch() if algorithm == "random" else Hyperband()
            problem = Problem("bench", space, LOSS, settings, parallel_trial_count=parallel)
            made = algo.propose(problem, history, parallel)
            what = "draws" if algorithm == "random" else \
                f"{len(made.suggestions)} at budget {made.suggestions[0].assignments['epochs']}" \
                if made.suggestions else "waits"
            cpu = [_median_ms(partial(_in_process, algo, problem, history, n), calls, time.process_time_ns)
                   for n in (1, parallel)]
            with served(algorithm) as stub:
                wall = [_median_ms(partial(stub.GetSuggestions,
                                           _request(space, algorithm, settings, history, n, parallel)), calls)
                        for n in (1, parallel)]
            rows.append(f"| {algorithm}{' (baseline)' if algorithm == 'random' else ''} | {len(history)} | {what} | "
                        f"{cpu[0]:.1f} | {cpu[1]:.1f} | {wall[0]:.1f} | {wall[1]:.1f} |")
    return rows


# --- budget to reach random search's best ------------------------------------------------

def _curve_random(seed: int, trials: int) -> list[tuple[int, float]]:
    """(budget spent, score of the best observed trial) after each random-search trial at budget R."""
    space, rng, algo = _space(R), random.Random(1000 + seed), RandomSearch()
    problem = Problem("rs", space, LOSS, {"random_state": str(seed)})
    history: list[TrialRecord] = []
    spent, best, curve = 0, (math.inf, math.inf), []
    for k in range(trials):
        a = {**algo.suggest(problem, history, 1)[0].assignments, "epochs": str(R)}
        trial = _finish(a, f"r{k:04d}", {}, rng)
        history.append(trial)
        spent += R
        best = min(best, (trial.metrics["loss"], true_loss(a)))
        curve.append((spent, best[1]))
    return curve


def _curve_hyperband(seed: int, budget: int, full_budget_only: bool) -> list[tuple[int, float]]:
    """As `_curve_random`; the best observed among every trial (Katib's optimal trial) or,
    `full_budget_only`, among the trials that ran at budget R (Hyperband's usual incumbent)."""
    space, rng, algo = _space(R), random.Random(1000 + seed), Hyperband()
    spent, best, curve, passes = 0, (math.inf, math.inf), [], 0
    while spent < budget:
        settings = {"resource_name": "epochs", "r_l": str(R), "eta": str(ETA), "random_state": f"{seed}{passes}"}
        history: list[TrialRecord] = []  # each pass a new experiment: its own brackets
        while spent < budget:
            try:
                proposal = algo.propose(Problem("hb", space, LOSS, settings, parallel_trial_count=R), history, R)
            except SearchSpaceExhausted:
                break
            settings = {**settings, **(proposal.settings or {})}
            for s in proposal.suggestions:
                trial = _finish(s.assignments, f"h{passes}-{len(history):04d}", dict(s.labels), rng)
                history.append(trial)
                spent += int(s.assignments["epochs"])
                if not full_budget_only or int(s.assignments["epochs"]) == R:
                    best = min(best, (trial.metrics["loss"], true_loss(s.assignments)))
                curve.append((spent, best[1]))
        passes += 1
    return curve


def _reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, score in curve if score <= target), None)


def budget_study(seeds: int, random_trials: int, full_budget_only: bool) -> tuple[list[str], str]:
    rows = ["| seed | target (random's best, true loss) | random: total budget | random: budget to target | "
            "hyperband: budget to target | hyperband / random to target |", "|---:|---:|---:|---:|---:|---:|"]
    ratios, totals, rs_budgets, hb_budgets, missed = [], [], [], [], 0
    for seed in range(seeds):
        rs = _curve_random(seed, random_trials)
        target = rs[-1][1]
        rs_at = _reach(rs, target)
        assert rs_at is not None
        total = rs[-1][0]
        hb_at = _reach(_curve_hyperband(seed, 3 * total, full_budget_only), target)
        rs_budgets.append(rs_at)
        if hb_at is None:  # counted as never (infinite) in the medians
            missed += 1
            hb_budgets.append(math.inf)
            ratios.append(math.inf)
            totals.append(math.inf)
            rows.append(f"| {seed} | {target:.4f} | {total} | {rs_at} | not within {3 * total} | – |")
            continue
        ratios.append(hb_at / rs_at)
        totals.append(hb_at / total)
        hb_budgets.append(hb_at)
        rows.append(f"| {seed} | {target:.4f} | {total} | {rs_at} | {hb_at} | {hb_at / rs_at:.2f} |")
    summary = (f"medians over {seeds} seeds: budget to reach random search's best: random {statistics.median(rs_budgets):.0f}, "
               f"hyperband {statistics.median(hb_budgets):.0f}; per-seed ratio hyperband/random (to target) "
               f"{statistics.median(ratios):.2f}; hyperband's budget / random's total {statistics.median(totals):.2f} "
               f"({missed} seeds not reached within 3x random's total, counted as infinite)")
    return rows, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--random-trials", type=int, default=60)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    print(f"load average: {os.getloadavg()}")
    if not args.skip_latency:
        print("\n".join(latency(args.calls)))
        print()
    for full_budget_only in (False, True):
        rows, summary = budget_study(args.seeds, args.random_trials, full_budget_only)
        print(f"\nhyperband's incumbent: {'best at budget R' if full_budget_only else 'best of all trials'}")
        print("\n".join(rows))
        print(summary)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
