"""The runner's observation, folded as points arrive, equals the store-log reduction it replaces."""

from __future__ import annotations

import random

import pytest

from controller.local.observation_fold import ObservationFold
from kubenas.metrics import MetricPoint
from kubenas.trials import MetricStrategy, Objective, ObjectiveType, observe


@pytest.mark.parametrize("seed", range(20))
def test_the_fold_in_batches_equals_observe_over_the_whole_log(seed: int) -> None:
    rng = random.Random(seed)
    objective = Objective(rng.choice(list(ObjectiveType)), "loss", additional_metric_names=("acc", "genotype"),
                          strategies={"acc": rng.choice(list(MetricStrategy))})
    points = []
    for i in range(rng.randint(1, 300)):
        name = rng.choice(["loss", "acc", "genotype", "other"])
        value: float | str = f"G{i}" if name == "genotype" or rng.random() < 0.05 else rng.uniform(-5, 5)
        points.append(MetricPoint(name, value, f"2026-01-01T00:00:{i // 10:02d}.{i:06d}Z"))
    folded = ObservationFold(objective)
    at = 0
    while at < len(points):
        step = rng.randint(1, 40)
        folded.feed(points[at:at + step])
        at += step
    assert folded.in_order
    assert folded.value == observe(objective, [(p.name, p.value) for p in points])


def test_time_stamps_going_back_hand_the_reduction_to_the_store() -> None:
    folded = ObservationFold(Objective(ObjectiveType.MINIMIZE, "loss"))
    folded.feed([MetricPoint("loss", 1.0, "2026-01-01T00:00:02Z")])
    assert folded.in_order
    folded.feed([MetricPoint("loss", 2.0, "2026-01-01T01:00:01+01:00")])  # 00:00:01Z: earlier
    assert not folded.in_order
