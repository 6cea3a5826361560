"""The controller really learns: a synthetic reward that favours some operations makes the
controller pick them far more often than uniform within a few dozen trials, and a reward
that carries no information leaves it near uniform (so it is the reward, not drift)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

import pytest

from kubenas.genotype import Genotype
from kubenas.space import SearchSpace
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import Problem
from suggestion.algorithms.enas import Enas
from tests.suggestion.test_enas_spaces import katib_space, unit_scenario_space

METRIC = "Validation-Accuracy"


def macro_ops(assignments: dict[str, str]) -> list[int]:
    return [row[0] for row in json.loads(assignments["architecture"])]


def micro_ops(assignments: dict[str, str]) -> list[str]:
    g = Genotype.from_json(assignments["architecture"])
    return [p for p, _ in g.normal + g.reduce]


def share(samples: Sequence[dict[str, str]], decode: Callable[[dict[str, str]], list], favoured: set) -> float:  # type: ignore[type-arg]
    picks = [op for s in samples for op in decode(s)]
    return sum(op in favoured for op in picks) / len(picks)


def search(space: SearchSpace, settings: dict[str, str], reward: Callable[[dict[str, str]], float],
           rounds: int, per_round: int, objective: Objective) -> list[dict[str, str]]:
    """Run `rounds` suggest/evaluate rounds; return 200 fresh samples of the final policy."""
    algo = Enas()
    problem = Problem("learn", space, objective, settings)
    history: list[TrialRecord] = []
    for r in range(rounds):
        for i, s in enumerate(algo.suggest(problem, history, per_round)):
            value = reward(dict(s.assignments))
            metric = value if objective.type is ObjectiveType.MAXIMIZE else 1.0 - value
            history.append(TrialRecord(f"r{r}-{i}", dict(s.assignments), TrialCondition.SUCCEEDED, {METRIC: metric}))
    return [dict(s.assignments) for s in algo.suggest(problem, history, 200)]


MAXIMIZE = Objective(ObjectiveType.MAXIMIZE, METRIC)
MINIMIZE = Objective(ObjectiveType.MINIMIZE, METRIC)
SMALL = {"controller_learning_rate": "0.01", "controller_train_steps": "20"}


@pytest.mark.parametrize("objective", [MAXIMIZE, MINIMIZE], ids=["maximize", "minimize"])
def test_favoured_op_share_rises_far_above_uniform(objective: Objective) -> None:
    # Katib's unit-scenario space: 4 layers, 4 ops; the reward is the share of layers using op 0.
    space = unit_scenario_space()
    shares = []
    for seed in (1, 2, 3):
        samples = search(space, {**SMALL, "random_state": str(seed)},
                         lambda a: share([a], macro_ops, {0}), rounds=8, per_round=4, objective=objective)
        shares.append(share(samples, macro_ops, {0}))
    # Uniform is 0.25; after 32 trials every seed is well above it.
    assert min(shares) > 0.45 and sum(shares) / 3 > 0.55, shares


def test_uninformative_reward_stays_near_uniform() -> None:
    """With a noise reward each seed's policy random-walks (20 Adam steps per call on four
    noisy advantages move it far, either way: shares of 0.0 and 0.96 both occur), so only
    the mean over many seeds says whether there is a pull toward op 0. Uniform over the
    architectures that fit a 32x32 input gives op 0 (the only op keeping the map) 0.28."""
    space = unit_scenario_space()
    noise = random.Random(0)
    shares = []
    for seed in range(1, 17):
        samples = search(space, {**SMALL, "random_state": str(seed)},
                         lambda a: noise.random(), rounds=8, per_round=4, objective=MAXIMIZE)
        shares.append(share(samples, macro_ops, {0}))
    assert sum(shares) / len(shares) < 0.45, shares


def test_katib_gpu_space_learns_within_a_few_dozen_trials() -> None:
    # 8 layers over Katib's 106 ops; the 10 `convolution` 3x3 ops (ids 0-9) are rewarded.
    # A larger entropy weight keeps one seed's early luck from collapsing the policy.
    space = katib_space("enas-gpu")
    favoured = set(range(10))
    settings = {"controller_learning_rate": "0.01", "controller_baseline_decay": "0.99",
                "controller_train_steps": "10", "controller_entropy_weight": "0.01"}
    shares = []
    for seed in (1, 2, 3, 4):
        samples = search(space, {**settings, "random_state": str(seed)},
                         lambda a: share([a], macro_ops, favoured), rounds=10, per_round=4, objective=MAXIMIZE)
        shares.append(share(samples, macro_ops, favoured))
    uniform = 10 / 106
    assert sum(shares) / len(shares) > 2 * uniform and min(shares) > 1.5 * uniform, shares


def test_micro_mode_learns_a_favoured_primitive() -> None:
    space = katib_space("enas-cpu")  # 11 odd-kernel primitives (2x2 poolings are left out)
    settings = {**SMALL, "search_mode": "micro", "num_nodes": "3", "random_state": "4"}
    favoured = {"max_pooling_3x3"}
    samples = search(space, settings, lambda a: share([a], micro_ops, favoured), rounds=8, per_round=4,
                     objective=MAXIMIZE)
    assert share(samples, micro_ops, favoured) > 5 / 11  # uniform is 1/11
