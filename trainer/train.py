"""The shared training loop: optimizer, cosine schedule, AMP, compile, metrics, summary.

Used by `trainer.enas`, `trainer.retrain` (and the DARTS retraining path). One `device`
comes in; nothing here calls `.cuda()`. On CUDA the loop uses bf16 autocast and
channels_last by default; on CPU it is fp32 and deterministic under `seed`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kubenas.errors import InvalidValue
from kubenas.metrics import format_metrics, now_rfc3339
from trainer.data import Split, Splits, batches

__all__ = [
    "OPTIMIZERS",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "count_macs",
    "count_params",
    "evaluate",
    "fit",
    "print_metrics",
    "resolve_device",
    "seed_everything",
    "write_outputs",
]

log = logging.getLogger(__name__)

Reporter = Callable[[int, Mapping[str, float]], None]


class TrainError(InvalidValue):
    """A training flag is unusable; names the flag, the value and what is allowed."""


def _sgd(params: Iterable[nn.Parameter], lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd, nesterov=True)


def _adamw(params: Iterable[nn.Parameter], lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


# name -> (factory, default learning rate, default weight decay)
OPTIMIZERS: dict[str, tuple[Callable[..., torch.optim.Optimizer], float, float]] = {
    "sgd": (_sgd, 0.1, 3e-4),
    "adamw": (_adamw, 2e-3, 1e-2),
}


def on_cuda_unless_set(option: bool | None, device: torch.device) -> bool:
    """An on/off speed option (bf16 autocast, channels_last) left unset is on exactly on CUDA."""
    return device.type == "cuda" if option is None else option


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float | None = None  # None: the optimizer's default
    weight_decay: float | None = None
    label_smoothing: float = 0.0
    grad_clip: float = 5.0
    seed: int = 0
    amp: bool | None = None  # None: bf16 autocast on CUDA only
    channels_last: bool | None = None  # None: on CUDA only
    compile: bool = False
    drop_path: float = 0.0  # cell networks only; ramps linearly over the epochs
    eval_batch_size: int = 1024

    def check(self) -> None:
        """Raise TrainError naming the flag for out-of-range values."""
        if self.epochs < 1:
            raise TrainError("--num_epochs", self.epochs, "must be >= 1")
        if self.batch_size < 1:
            raise TrainError("--batch-size", self.batch_size, "must be >= 1")
        if self.optimizer not in OPTIMIZERS:
            raise TrainError("--optimizer", self.optimizer, f"must be one of {sorted(OPTIMIZERS)}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise TrainError("--lr", self.lr, "must be a positive number")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise TrainError("--label-smoothing", self.label_smoothing, "must be in [0, 1)")
        if not 0.0 <= self.drop_path < 1.0:
            raise TrainError("--drop-path", self.drop_path, "must be in [0, 1)")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
    peak_memory_bytes: int = 0

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def resolve_device(device: str, num_gpus: int = 1) -> torch.device:
    """`auto` picks CUDA when present and `num_gpus` >= 1; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if num_gpus >= 1 and torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TrainError("--device", device, "must be auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device", device, "CUDA is not available on this machine; use cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise TrainError("--device", device, "must be auto, cpu, cuda or cuda:N")
    return dev


def seed_everything(seed: int, device: torch.device) -> torch.Generator:
    """Seed torch and return a generator on `device` for shuffling and augmentation."""
    torch.manual_seed(seed)
    if device.type == "cpu":
        # CPU kernels are deterministic when asked; CUDA stays fast (bf16 is not bitwise anyway).
        torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass on one image (conv and linear layers)."""
    total = 0

    def conv_hook(module: nn.Module, _: Any, output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        k = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
        total += int(output.numel() // output.shape[0]) * k

    def linear_hook(module: nn.Module, _: Any, output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += module.in_features * module.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def _autocast(device: torch.device, amp: bool) -> Any:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)


def evaluate(model: nn.Module, split: Split, batch_size: int = 1024, amp: bool = False,
             channels_last: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on `split` (eval mode, no grad)."""
    model.eval()
    device = split.x.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    with torch.no_grad(), _autocast(device, amp):
        for x, y in batches(split, batch_size):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x).float()
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    n = max(len(split), 1)
    return float(loss_sum) / n, float(correct) / n


def print_metrics(epoch: int, metrics: Mapping[str, float]) -> None:
    """One Katib StdOut line: `<RFC 3339 time> epoch=N Name=value ...`, flushed at once."""
    print(f"{now_rfc3339()} epoch={epoch} {format_metrics(metrics)}", flush=True)


def fit(model: nn.Module, splits: Splits, config: TrainConfig, report: Reporter | None = None) -> TrainResult:
    """Train `model` (already on the data's device) and report metrics after every epoch.

    `report(epoch, metrics)` is called with Training-Loss, Training-Accuracy,
    Validation-Loss and Validation-Accuracy; default prints them for Katib's collector.
    """
    config.check()
    device = splits.train.x.device
    amp = on_cuda_unless_set(config.amp, device)
    channels_last = on_cuda_unless_set(config.channels_last, device)
    generator = seed_everything(config.seed, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    factory, default_lr, default_wd = OPTIMIZERS[config.optimizer]
    lr = config.lr if config.lr is not None else default_lr
    wd = config.weight_decay if config.weight_decay is not None else default_wd
    optimizer = factory(model.parameters(), lr, wd)
    steps_per_epoch = math.ceil(len(splits.train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    step_model: nn.Module = model
    if config.compile:
        step_model = torch.compile(model)  # type: ignore[assignment]
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    report = report or print_metrics
    result = TrainResult()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    train_seconds = 0.0
    for epoch in range(1, config.epochs + 1):
        set_drop_path = getattr(model, "set_drop_path", None)
        if callable(set_drop_path):
            set_drop_path(config.drop_path * (epoch - 1) / config.epochs)
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        epoch_start = time.perf_counter()
        for x, y in batches(splits.train, config.batch_size, shuffle=True, generator=generator,
                            augment=splits.augment):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, amp):
                logits = step_model(x)
                loss = criterion(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            # Accumulating on-device avoids a host sync per step.
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(1) == y).sum()
            seen += y.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds += time.perf_counter() - epoch_start
        val_loss, val_acc = evaluate(step_model, splits.valid, config.eval_batch_size, amp, channels_last)
        metrics = {
            "Training-Loss": float(loss_sum) / max(seen, 1),
            "Training-Accuracy": float(correct) / max(seen, 1),
            "Validation-Loss": val_loss,
            "Validation-Accuracy": val_acc,
        }
        result.history.append(metrics)
        report(epoch, metrics)
    result.seconds = time.perf_counter() - started
    result.images_per_second = config.epochs * len(splits.train) / max(train_seconds, 1e-9)
    if device.type == "cuda":
        result.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device))
    return result


def write_outputs(output_dir: Path, model: nn.Module, summary: Mapping[str, Any], config: TrainConfig) -> None:
    """Write `model.pt` (state dict) and `summary.json` to `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, output_dir / "model.pt")
    data = {**summary, "config": asdict(config)}
    (output_dir / "summary.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
