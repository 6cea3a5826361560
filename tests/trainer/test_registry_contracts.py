"""Contracts over the trainer-side registries: every dataset in `trainer.data.DATASETS` and
every trainer in `trainer.cli.TRAINERS` keeps the same promises, so a new entry is tested by
being registered.

Datasets that read files get them from `PROVIDERS` (small files in the real format, written
here); a registered dataset without a provider fails the contract.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.trainer.test_data import _write_cifar, _write_idx
from trainer.cli import TRAINERS
from trainer.data import DATASETS, load_dataset


def _fashion_files(directory: Path) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (120, 28, 28)), np.arange(120) % 10
    for prefix, count in (("train", 120), ("t10k", 40)):
        _write_idx(directory / f"{prefix}-images-idx3-ubyte", images[:count], compress=False)
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels[:count], compress=False)
    return {"data_dir": directory}


def _cifar_files(directory: Path) -> dict[str, Any]:
    _write_cifar(directory / "cifar-10-batches-py", per_batch=24)
    return {"data_dir": directory, "download": False}


#: How each registered dataset is given its data here: kwargs for load_dataset.
PROVIDERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "digits": lambda _d: {},
    "mnist5k": lambda _d: {},
    "fashion-mnist": _fashion_files,
    "cifar10": _cifar_files,
    "synthetic": lambda _d: {"size": 300, "input_shape": (3, 8, 8), "num_classes": 5},
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_loads_disjoint_normalised_seeded_splits(name: str, tmp_path: Path) -> None:
    assert name in PROVIDERS, f"dataset {name!r} is registered but the contract has no data for it"
    kwargs = PROVIDERS[name](tmp_path)
    a = load_dataset(name, seed=5, **kwargs)
    b = load_dataset(name, seed=5, **kwargs)
    assert a.name == name
    for split in (a.train, a.valid, a.test):
        assert len(split) > 0 and split.x.dtype == torch.float32 and split.x.is_contiguous()
        assert tuple(split.x.shape[1:]) == a.input_shape
        assert split.y.dtype == torch.int64 and len(split.y) == len(split.x)
        assert 0 <= int(split.y.min()) and int(split.y.max()) < a.num_classes
        assert torch.isfinite(split.x).all()
    # Normalised with the training split's statistics.
    assert abs(float(a.train.x.mean())) < 0.05
    assert abs(float(a.train.x.std()) - 1.0) < 0.1
    # The same seed gives the same split; the splits do not share images.
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.valid.y, b.valid.y)
    train_rows = {row.numpy().tobytes() for row in a.train.x.flatten(1)}
    assert not any(row.numpy().tobytes() in train_rows for row in a.valid.x.flatten(1))
    limited = load_dataset(name, seed=5, train_limit=7, **kwargs)
    assert len(limited.train) == 7 and torch.equal(limited.valid.y, a.valid.y)  # same images held out


def _train(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trainer.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_has_help_and_refuses_a_bad_flag_without_a_traceback(name: str) -> None:
    helped = _train(name, "--help")
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "usage" in helped.stdout.lower() and "--" in helped.stdout
    refused = _train(name, "--no-such-flag=1")
    assert refused.returncode == 2, (refused.returncode, refused.stderr[-2000:])
    assert "error" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert len(refused.stderr) < 4000
