"""The one-shot ENAS loop: shared weights and the controller take turns, one epoch at a time.

Per epoch: (1) one pass over the training split, each minibatch training the shared
weights of one sampled child; (2) `controller_steps_per_epoch` controller steps, each
sampling `controller_children_per_step` children, rewarding each with its accuracy on one
validation minibatch (shared weights, batch statistics) and taking REINFORCE steps with
the moving baseline, entropy bonus and skip penalty (`kubenas.enas_controller.reinforce`).
With `sampler: random` children are drawn uniformly and the controller is never trained
(random search with weight sharing). At the end `final_children` children are sampled and
scored on the whole validation split; the best is printed and written out.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
import torch.nn.functional as F
from torch import nn

from kubenas.enas_controller.adam import Adam
from kubenas.enas_controller.reinforce import moving_baseline, policy_loss
from kubenas.metrics import format_metrics
from trainer.data import DatasetError, Split, batches, load_dataset
from trainer.enas_search.children import Child, architecture_of, new_controller, uniform_children
from trainer.enas_search.macro import MacroSupernet
from trainer.enas_search.micro import MicroSupernet, genotype_of
from trainer.enas_search.ranks import Ranks, start_ranks
from trainer.enas_search.settings import ConfigError, EnasOneshotSettings, SpaceSpec
from trainer.train import on_cuda_unless_set, seed_everything

__all__ = ["MAX_DRAWS", "SearchConfig", "SearchResult", "Searcher", "build_supernet", "run"]

log = logging.getLogger(__name__)

# Draws per training step before giving up on finding a child that fits the input.
MAX_DRAWS = 64


@dataclass(frozen=True)
class SearchConfig:
    settings: EnasOneshotSettings
    space: SpaceSpec
    data_dir: Path | None = None
    device: str = "auto"
    output_dir: Path | None = None
    amp: bool | None = None  # None: bf16 autocast on CUDA only
    channels_last: bool | None = None  # None: on CUDA only
    train_limit: int | None = None
    steps_per_epoch: int | None = None  # cap the shared-weight steps (smoke runs, benchmarks)
    grad_chunks: int | None = None  # chunks per global minibatch (None: one per rank); see ranks.py
    dataset_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    architecture: str
    nn_config: dict[str, Any]
    accuracy: float
    candidates: list[dict[str, Any]]
    history: list[dict[str, float]]


def build_supernet(space: SpaceSpec, settings: EnasOneshotSettings) -> nn.Module:
    if space.mode == "micro":
        return MicroSupernet(space, settings.init_channels)
    return MacroSupernet(space, settings.init_channels)


def _cycle(split: Split, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled validation minibatches (a new order each pass)."""
    while True:
        yield from batches(split, min(batch_size, len(split)), True, generator, None, drop_last=True)


class Searcher:
    """Owns the data, supernet, controller and optimisers of one search."""

    def __init__(self, config: SearchConfig, out: TextIO | None = None, ranks: Ranks | None = None) -> None:
        s, space = config.settings, config.space
        self.config, self.settings, self.space = config, s, space
        self.out = out  # None: whatever sys.stdout is when a line is printed
        self.ranks = ranks or start_ranks(config.device)
        self.device = self.ranks.device
        self.grad_chunks = config.grad_chunks or self.ranks.world
        if self.grad_chunks % self.ranks.world:
            raise ConfigError("--grad-chunks", self.grad_chunks, f"must be a multiple of the {self.ranks.world} ranks")
        self.seed = self.ranks.same_int(s.random_state if s.random_state is not None else int(time.time_ns() % 2**31))
        self.data_generator = seed_everything(self.seed, self.device)
        self.model = build_supernet(space, s)  # built before the data: a bad space costs nothing
        data = load_dataset(s.dataset, config.data_dir, self.device, train_limit=config.train_limit,
                            **config.dataset_options)
        c, h, w = data.input_shape
        if data.input_shape != space.input_shape:
            c0, h0, w0 = space.input_shape
            raise ConfigError("--search-space.input_sizes", [h0, w0, c0],
                              f"must match dataset {s.dataset!r} images [H, W, C] = [{h}, {w}, {c}]")
        if space.num_classes < data.num_classes:
            raise ConfigError("--search-space.output_sizes", space.num_classes,
                              f"must be >= the {data.num_classes} classes of dataset {s.dataset!r}")
        if len(data.valid) < 1 or len(data.train) < 1:
            raise DatasetError("--dataset", s.dataset, "needs training and validation images")
        self.train, self.valid, self.augment = data.train, data.valid, data.augment
        self.batch_size = min(s.batch_size, len(self.train))
        if self.batch_size < self.grad_chunks:
            raise ConfigError("--algorithm-settings.batch_size", s.batch_size,
                              f"must be >= the {self.grad_chunks} gradient chunks (one per rank)")
        self.amp = on_cuda_unless_set(config.amp, self.device)
        self.channels_last = on_cuda_unless_set(config.channels_last, self.device)
        self.model = self.model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # The controller is a few kilobytes: it stays on the CPU, as in the `enas` service.
        self.sample_generator = torch.Generator().manual_seed(self.seed + 1)
        self.controller = new_controller(space, s, torch.Generator().manual_seed(self.seed))
        self.controller_optimizer = Adam(self.controller.parameters(), lr=s.controller_learning_rate)
        self.baseline: float | None = None
        self.optimizer = torch.optim.SGD(self.model.parameters(), s.child_lr, momentum=s.child_momentum,
                                         weight_decay=s.child_weight_decay, nesterov=s.child_momentum > 0)
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if s.child_lr_schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, s.num_epochs, eta_min=s.child_lr_min)
        self.valid_batches = _cycle(self.valid, self.batch_size, torch.Generator(device=self.device).manual_seed(self.seed + 2))
        self.images_trained = 0
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0  # this process's CPU time: robust to other load on the machine

    def autocast(self) -> AbstractContextManager[object]:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def sample(self, n: int) -> list[Child]:
        """`n` children from the sampler (the controller's current policy, or uniform)."""
        if self.settings.sampler == "random":
            return uniform_children(self.space, n, self.sample_generator)
        with torch.no_grad():
            return self.controller(n, generator=self.sample_generator).decisions.tolist()

    def fits(self, child: Child) -> bool:
        return bool(self.model.feasible(child))  # type: ignore[operator]

    def sample_fitting(self) -> Child:
        for _ in range(MAX_DRAWS):
            child = self.sample(1)[0]
            if self.fits(child):
                return child
        raise ConfigError("--search-space", f"{self.space.num_layers} layers",
                          f"{MAX_DRAWS} sampled children in a row do not fit the input; use fewer layers or "
                          "fewer shrinking ops")

    def train_epoch(self) -> tuple[float, float]:
        """One pass over the training split, one child per minibatch; (loss, accuracy)."""
        s, model = self.settings, self.model
        model.train()
        # Per chunk slot, so that the totals add up in one order whichever rank ran a chunk.
        loss_sum = torch.zeros(self.grad_chunks, device=self.device, dtype=torch.float64)
        correct = torch.zeros(self.grad_chunks, device=self.device, dtype=torch.float64)
        seen = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for step, (x, y) in enumerate(batches(self.train, self.batch_size, True, self.data_generator,
                                              self.augment, drop_last=True)):
            if self.config.steps_per_epoch is not None and step >= self.config.steps_per_epoch:
                break
            child = self.sample_fitting()
            self.optimizer.zero_grad(set_to_none=True)
            for k, (xk, yk) in enumerate(zip(x.tensor_split(self.grad_chunks), y.tensor_split(self.grad_chunks))):
                if not self.ranks.mine(k):
                    continue
                with self.autocast():
                    logits = model(self._prepare(xk), child)
                    loss = F.cross_entropy(logits.float(), yk)
                loss.backward()
                loss_sum[k] += loss.detach().double() * len(yk)
                correct[k] += (logits.argmax(1) == yk).sum()
            self._average_gradients()
            nn.utils.clip_grad_norm_(model.parameters(), s.child_grad_clip)
            self.optimizer.step()
            seen += len(y)
        self.train_seconds += time.perf_counter() - started
        self.train_cpu_seconds += time.process_time() - cpu_started
        self.images_trained += seen
        if self.scheduler is not None:
            self.scheduler.step()
        totals = self.ranks.sum_(torch.stack([loss_sum, correct])).sum(1)
        return float(totals[0]) / max(seen, 1), float(totals[1]) / max(seen, 1)

    def _average_gradients(self) -> None:
        """Sum the chunk gradients over the ranks and divide by the chunk count.

        Every rank ran the same child, so the same weights hold a gradient everywhere;
        the others keep none and the optimiser leaves them alone.
        """
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return
        flat = self.ranks.sum_(torch.cat([g.reshape(-1) for g in grads]))
        flat /= self.grad_chunks
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    @torch.no_grad()
    def reward(self, child: Child, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of `child` on one minibatch with the shared weights (0 if it does not fit).

        Batch statistics in BatchNorm: the running averages mix every child the shared
        weights trained, so they describe none of them.
        """
        if not self.fits(child):
            return 0.0
        self.model.train()
        with self.autocast():
            logits = self.model(self._prepare(x), child)
        return float((logits.argmax(1) == y).float().mean())

    def controller_epoch(self) -> tuple[float, float, Child, float]:
        """Controller steps; (mean reward, mean entropy, best child seen, its reward)."""
        s = self.settings
        rewards_seen: list[float] = []
        entropies: list[float] = []
        best: tuple[float, Child] | None = None
        for step in range(1, s.controller_steps_per_epoch + 1):
            children = self.sample(s.controller_children_per_step)
            scores = torch.zeros(len(children), dtype=torch.float64, device=self.device)
            for i, child in enumerate(children):
                x, y = next(self.valid_batches)  # every rank draws every batch, so all stay in step
                if self.ranks.mine(i):
                    scores[i] = self.reward(child, x, y)
            rewards = self.ranks.sum_(scores).tolist()
            for r, child in zip(rewards, children):
                if best is None or r > best[0]:
                    best = (r, child)
            rewards_seen += rewards
            if s.sampler == "random":
                continue
            self.baseline, advantages = moving_baseline(self.baseline, rewards, s.controller_baseline_decay)
            score = self.controller.scorer(torch.tensor(children, dtype=torch.long))
            adv = torch.tensor(advantages, dtype=torch.float32)
            for _ in range(s.controller_train_steps):
                roll = score()
                loss = policy_loss(roll, adv, s.controller_entropy_weight, s.controller_skip_weight)
                self.controller_optimizer.zero_grad()
                loss.backward()
                self.controller_optimizer.step()
            self.ranks.broadcast_(list(self.controller.parameters()))
            entropies.append(float(roll.entropy.detach().mean()))
            if step % s.controller_log_every_steps == 0:
                log.info("controller step %d/%d: loss %.5f, entropy %.4f, baseline %.4f, mean reward %.4f",
                         step, s.controller_steps_per_epoch, float(loss.detach()), entropies[-1], self.baseline,
                         sum(rewards) / len(rewards))
        if not entropies:  # random sampler: the entropy of the policy it stands in for
            with torch.no_grad():
                entropies.append(float(self.controller(16, generator=torch.Generator().manual_seed(0)).entropy.mean()))
        assert best is not None
        return sum(rewards_seen) / len(rewards_seen), sum(entropies) / len(entropies), best[1], best[0]

    @torch.no_grad()
    def validation_accuracy(self, child: Child) -> float:
        """Accuracy of `child` on the whole validation split (shared weights, batch statistics)."""
        if not self.fits(child):
            return 0.0
        self.model.train()
        correct = 0
        for x, y in batches(self.valid, self.batch_size):
            with self.autocast():
                logits = self.model(self._prepare(x), child)
            correct += int((logits.argmax(1) == y).sum())
        return correct / len(self.valid)

    def emit(self, line: str) -> None:
        if self.ranks.is_main:
            print(line, file=self.out or sys.stdout, flush=True)

    @property
    def label(self) -> str:
        """What a printed child is called: Katib's ENAS `Architecture` rows, DARTS' `Genotype`."""
        return "Genotype" if self.space.mode == "micro" else "Architecture"

    def describe(self, child: Child) -> str:
        """The one-token form of a child printed in metric lines."""
        if self.space.mode == "micro":
            return genotype_of(child, self.space.primitives).to_katib()
        return architecture_of(self.space, child, self.settings.init_channels)[0]


def run(config: SearchConfig, out: TextIO | None = None) -> SearchResult:
    """The whole search: epochs, final selection, printed results and files (rank 0 only)."""
    ranks = start_ranks(config.device)
    try:
        return _run(Searcher(config, out, ranks), config)
    finally:
        ranks.close()


def _run(searcher: Searcher, config: SearchConfig) -> SearchResult:
    s, space = config.settings, config.space
    log.info("enas-oneshot %s search: %d layers, %s, sampler %s, seed %d, %d rank(s) on %s, %s, %s layout; "
             "%d shared weights",
             space.mode, space.num_layers,
             f"{len(space.ops)} ops" if space.mode == "macro" else f"{space.num_nodes} nodes x {len(space.primitives)} primitives",
             s.sampler, searcher.seed, searcher.ranks.world, searcher.device, "bf16" if searcher.amp else "fp32",
             "channels_last" if searcher.channels_last else "NCHW", sum(p.numel() for p in searcher.model.parameters()))
    history: list[dict[str, float]] = []
    for epoch in range(1, s.num_epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = searcher.train_epoch()
        reward, entropy, best_child, best_reward = searcher.controller_epoch()
        metrics = {"Training-Loss": train_loss, "Training-Accuracy": train_acc, "Reward-Mean": reward,
                   "Controller-Entropy": entropy}
        history.append({"epoch": epoch, **metrics, "Best-Reward": best_reward, "seconds": time.perf_counter() - started})
        searcher.emit(f"epoch={epoch} {format_metrics(metrics)}")
        searcher.emit(f"Current-{searcher.label}={searcher.describe(best_child)}")
    candidates = _final_candidates(searcher)
    best = max(candidates, key=lambda c: c["accuracy"])
    architecture, nn_config = architecture_of(space, best["child"], s.init_channels)
    searcher.emit(f"Best-{searcher.label}={searcher.describe(best['child'])}")
    if space.mode == "macro":
        searcher.emit(f"Best-NN-Config={json.dumps(nn_config, separators=(',', ':'))}")
    searcher.emit(format_metrics({"Validation-Accuracy": best["accuracy"]}))
    result = SearchResult(architecture, nn_config, best["accuracy"], candidates, history)
    if searcher.ranks.world > 1:
        agree = searcher.ranks.agree([*searcher.model.parameters(), *searcher.controller.parameters()])
        if searcher.ranks.is_main:
            log.info("%d ranks agree on the shared weights and the controller: %s", searcher.ranks.world, agree)
    if config.output_dir is not None and searcher.ranks.is_main:
        _write_outputs(config.output_dir, searcher, result)
    return result


def _final_candidates(searcher: Searcher) -> list[dict[str, Any]]:
    """`final_children` distinct fitting children from the sampler, each scored on validation
    (by one rank each; every rank draws the same children)."""
    n = searcher.settings.final_children
    seen: set[str] = set()
    children: list[Child] = []
    for child in itertools.islice((c for _ in range(4) for c in searcher.sample(n)), 4 * n):
        key = json.dumps(child)
        if key in seen or not searcher.fits(child):
            continue
        seen.add(key)
        children.append(child)
        if len(children) == n:
            break
    if not children:
        children.append(searcher.sample_fitting())
    scores = torch.zeros(len(children), dtype=torch.float64, device=searcher.device)
    for i, child in enumerate(children):
        if searcher.ranks.mine(i):
            scores[i] = searcher.validation_accuracy(child)
    accuracies = searcher.ranks.sum_(scores).tolist()
    return [{"child": c, "architecture": searcher.describe(c), "accuracy": a} for c, a in zip(children, accuracies)]


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _write_outputs(directory: Path, searcher: Searcher, result: SearchResult) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "architecture.json").write_text(result.architecture + "\n")
    (directory / "nn_config.json").write_text(json.dumps(result.nn_config) + "\n")
    seconds = searcher.train_seconds
    summary = {
        "search_mode": searcher.space.mode,
        "sampler": searcher.settings.sampler,
        "seed": searcher.seed,
        "settings": searcher.settings.model_dump(),
        "best": {"architecture": result.architecture, "validation_accuracy": result.accuracy},
        "candidates": [{"architecture": c["architecture"], "validation_accuracy": c["accuracy"]}
                       for c in result.candidates],
        "history": result.history,
        "supernet_images_per_second": round(searcher.images_trained / seconds, 1) if seconds > 0 else math.nan,
        "supernet_images_per_cpu_second": (round(searcher.images_trained / searcher.train_cpu_seconds, 1)
                                           if searcher.train_cpu_seconds > 0 else math.nan),
        "peak_rss_bytes": _peak_rss_bytes(),
        "device": str(searcher.device),
    }
    (directory / "search.json").write_text(json.dumps(summary, indent=1) + "\n")
    if searcher.space.mode == "micro":
        from kubenas.genotype import Genotype
        from trainer.darts.plot import plot_genotype

        plot_genotype(Genotype.from_json(result.architecture), directory / "cells.png")
    else:
        from trainer.enas_search.plot import plot_macro

        plot_macro(json.loads(result.architecture), searcher.space.ops, directory / "architecture.png")
    log.info("wrote architecture.json, nn_config.json, search.json and a picture to %s", directory)
