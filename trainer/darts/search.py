"""The DARTS search loop: split the training set 50/50, alternate alpha and weight steps.

Per epoch the main process prints Katib-format metric lines and the current genotype;
at the end `Best-Genotype=Genotype(...)` (the genotype of the epoch with the best
validation accuracy), and writes genotype.json, alphas.json (alphas, and the edge
weights `beta_*` when PC-DARTS edge normalisation is on) and cells.png.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
import torch.distributed as dist
import torch.nn.functional as F

from kubenas.genotype import Genotype
from kubenas.metrics import format_metrics
from trainer.darts.architect import Architect
from trainer.darts.distributed import GradSync, Topology, init_topology, shutdown
from trainer.darts.settings import ConfigError, DartsSettings
from trainer.darts.supernet import Supernet
from trainer.data import Split, batches, load_dataset
from trainer.train import on_cuda_unless_set

__all__ = ["PRECISIONS", "SearchConfig", "SearchResult", "Searcher", "run"]

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class SearchConfig:
    settings: DartsSettings
    primitives: tuple[str, ...]
    num_layers: int
    dataset: str = "cifar10"
    data_dir: Path | None = None
    device: str = "auto"
    output_dir: Path | None = None
    compile: bool = False
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere
    channels_last: bool | None = None  # None: on CUDA only
    train_limit: int | None = None  # keep only the first N training images (quick runs)
    steps_per_epoch: int | None = None  # cap (benchmarks, smoke runs)
    dataset_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    genotype: Genotype
    best_epoch: int
    best_accuracy: float
    history: list[dict[str, float]]


def _seed(settings: DartsSettings, topology: Topology) -> int:
    seed = settings.random_state if settings.random_state is not None else int(time.time_ns() % (2**31))
    if topology.world_size > 1:
        # Every rank must build the same initial supernet: rank 0's seed wins.
        t = torch.tensor([seed], dtype=torch.int64, device=topology.device)
        dist.broadcast(t, 0)
        seed = int(t.item())
    return seed


def _halves(train: Split, seed: int, topology: Topology) -> tuple[Split, Split]:
    """50/50 weight/architecture split, each sharded evenly over the ranks."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=g).to(train.y.device)
    half = len(train) // 2
    parts = []
    for idx in (order[:half], order[half:2 * half]):
        per_rank = len(idx) // topology.world_size
        mine = idx[topology.rank * per_rank:(topology.rank + 1) * per_rank]
        parts.append(Split(train.x[mine], train.y[mine]))
    return parts[0], parts[1]


class Searcher:
    """Owns the supernet, both optimisers and the data of one search; `epoch()` runs one epoch."""

    def __init__(self, config: SearchConfig, topology: Topology, out: TextIO = sys.stdout) -> None:
        s = config.settings
        if s.init_channels % s.partial_channels:
            raise ConfigError("--algorithm-settings.partial_channels", s.partial_channels,
                              f"must divide init_channels ({s.init_channels})")
        self.config, self.topology, self.out = config, topology, out
        self.device = topology.device
        self.seed = _seed(s, topology)
        torch.manual_seed(self.seed)
        data = load_dataset(config.dataset, config.data_dir, self.device, train_limit=config.train_limit,
                            **config.dataset_options)
        self.augment = data.augment
        self.w_half, self.a_half = _halves(data.train, self.seed, topology)
        if len(self.w_half) < 1:
            raise ConfigError("--dataset", config.dataset, "has too few training images to split 50/50 across the ranks")
        self.batch_size = min(s.batch_size or len(self.w_half), len(self.w_half))
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed + 1 + topology.rank)
        model = Supernet(data.input_shape[0], data.num_classes, config.num_layers, config.primitives,
                         s.init_channels, s.num_nodes, s.stem_multiplier, s.partial_channels,
                         s.uses_edge_normalization).to(self.device)
        self.channels_last = on_cuda_unless_set(config.channels_last, self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = model
        if config.compile:
            model.compile_edges()
        self.w_optimizer = torch.optim.SGD(model.weights(), s.w_lr, momentum=s.w_momentum, weight_decay=s.w_weight_decay)
        self.alpha_optimizer = torch.optim.Adam(model.alphas(), s.alpha_lr, betas=(0.5, 0.999),
                                                weight_decay=s.alpha_weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_optimizer, s.num_epochs, eta_min=s.w_lr_min)
        self.sync = GradSync(topology.world_size)
        self.architect = Architect(model, self.w_optimizer, self.alpha_optimizer, s.order, s.w_momentum,
                                   s.w_weight_decay, self.sync, self.autocast)

    @property
    def bf16(self) -> bool:
        p = self.config.precision
        return p == "bf16" or (p == "auto" and self.device.type == "cuda")

    def autocast(self) -> AbstractContextManager[object]:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the weight half, alternating with the architecture half; (loss, accuracy)."""
        s, model = self.config.settings, self.model
        model.train()
        lr = float(self.scheduler.get_last_lr()[0])
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen = 0
        weight_batches = batches(self.w_half, self.batch_size, True, self.generator, self.augment, drop_last=True)
        arch_batches = batches(self.a_half, self.batch_size, True, self.generator, None, drop_last=True)
        for step, ((xw, yw), (xa, ya)) in enumerate(zip(weight_batches, arch_batches)):
            if self.config.steps_per_epoch is not None and step >= self.config.steps_per_epoch:
                break
            xw, xa = self._prepare(xw), self._prepare(xa)
            self.architect.step(xw, yw, xa, ya, lr)
            with self.autocast():
                logits = model(xw)
                loss = F.cross_entropy(logits, yw)
            weights = model.weights()
            raw = torch.autograd.grad(loss, weights, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(weights, raw)]
            self.sync.average(grads)
            for p, g in zip(weights, grads):
                p.grad = g
            torch.nn.utils.clip_grad_norm_(weights, s.w_grad_clip)
            self.w_optimizer.step()
            self.w_optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach().float() * len(yw)
            correct += (logits.argmax(1) == yw).sum()
            seen += len(yw)
            if self.topology.is_main and (step + 1) % s.print_step == 0:
                log.info("train epoch %d step %d loss %.4f", epoch, step + 1, float(loss.detach()))
        self.scheduler.step()
        loss_avg, acc = self.sync.mean_scalars([float(loss_sum) / max(seen, 1), float(correct) / max(seen, 1)], self.device)
        return loss_avg, acc

    @torch.no_grad()
    def evaluate(self, split: Split) -> tuple[float, float]:
        """Loss and accuracy on `split` with batch statistics in BatchNorm.

        The supernet's weights move fast and its BN running averages trail them, so in
        inference mode the first epochs score near chance; batch statistics measure the
        network the architecture step actually sees. (Running averages are never used.)
        """
        loss_sum, correct = 0.0, 0
        for x, y in batches(split, self.batch_size):
            with self.autocast():
                logits = self.model(self._prepare(x))
            loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        n = max(len(split), 1)
        loss, acc = self.sync.mean_scalars([loss_sum / n, correct / n], self.device)
        return loss, acc

    def emit(self, line: str) -> None:
        if self.topology.is_main:
            print(line, file=self.out, flush=True)


def run(config: SearchConfig, out: TextIO = sys.stdout,
        on_epoch: Callable[[int, Searcher], None] | None = None) -> SearchResult:
    """Run the whole search; only rank 0 prints and writes files."""
    topology = init_topology(config.device)
    try:
        return _run(config, topology, out, on_epoch)
    finally:
        shutdown(topology)


def _run(config: SearchConfig, topology: Topology, out: TextIO,
         on_epoch: Callable[[int, Searcher], None] | None) -> SearchResult:
    searcher = Searcher(config, topology, out)
    s = config.settings
    if topology.is_main:
        log.info("DARTS search: %s order, %d layers, %d nodes, primitives %s, partial channels 1/%d, "
                 "edge normalisation %s, seed %d, %d rank(s) on %s, %s, %s layout%s",
                 s.order, config.num_layers, s.num_nodes, list(searcher.model.primitives), s.partial_channels,
                 "on" if s.uses_edge_normalization else "off", searcher.seed, topology.world_size, topology.device,
                 "bf16" if searcher.bf16 else "fp32", "channels_last" if searcher.channels_last else "NCHW",
                 ", compiled edges" if config.compile else "")
    if topology.is_main and not any(not cell.reduction for cell in searcher.model.cells):
        log.warning("with %d layer(s) every cell is a reduction cell: the normal cell of the genotype is "
                    "decoded from untrained alphas (use >= 3 layers to search it)", config.num_layers)
    best: tuple[float, int, Genotype] | None = None
    history: list[dict[str, float]] = []
    for epoch in range(1, s.num_epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = searcher.train_epoch(epoch)
        val_loss, val_acc = searcher.evaluate(searcher.a_half)
        genotype = searcher.model.genotype()
        metrics = {"Training-Loss": train_loss, "Training-Accuracy": train_acc,
                   "Validation-Loss": val_loss, "Validation-Accuracy": val_acc}
        history.append({"epoch": epoch, **metrics, "seconds": time.perf_counter() - started})
        searcher.emit(f"epoch={epoch} {format_metrics(metrics)}")
        searcher.emit(f"Current-Genotype={genotype.to_katib()}")
        if math.isfinite(val_acc) and (best is None or val_acc > best[0]):
            best = (val_acc, epoch, genotype)
        if on_epoch is not None:
            on_epoch(epoch, searcher)
    assert best is not None
    acc, best_epoch, genotype = best
    if topology.world_size > 1:
        agree = searcher.sync.replicas_agree([*searcher.model.alphas(), *searcher.model.weights()], searcher.device)
        if topology.is_main:
            log.info("%d ranks agree on alphas and weights: %s", topology.world_size, agree)
    searcher.emit(f"Best-Genotype={genotype.to_katib()}")
    if topology.is_main and config.output_dir is not None:
        _write_outputs(config.output_dir, searcher, genotype, best_epoch, history)
    return SearchResult(genotype, best_epoch, acc, history)


def _write_outputs(directory: Path, searcher: Searcher, genotype: Genotype, best_epoch: int,
                   history: list[dict[str, float]]) -> None:
    from trainer.darts.plot import plot_genotype

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "genotype.json").write_text(genotype.to_json() + "\n")
    model = searcher.model
    alphas: dict[str, Any] = {
        "primitives": list(model.primitives),
        "num_nodes": model.num_nodes,
        "best_epoch": best_epoch,
        "edge_normalization": model.edge_normalization,
        # alpha_normal, alpha_reduce and, with edge normalisation, beta_normal and beta_reduce.
        **{name: p.detach().float().cpu().tolist() for name, p in model.named_alphas().items()},
        "history": history,
    }
    (directory / "alphas.json").write_text(json.dumps(alphas, indent=1) + "\n")
    plot_genotype(genotype, directory / "cells.png")
    log.info("wrote genotype.json, alphas.json and cells.png to %s", directory)
