"""The architecture step of DARTS' bilevel optimisation (first or second order).

First order treats the weights as fixed: the alphas follow d L_val(w, a) / d a.
Second order follows the validation loss after one virtual weight step
w' = w - lr * (momentum * buffer + d L_train(w, a) / d w + wd * w):

    d L_val(w', a) / d a - lr * (d^2 L_train / d a d w) . d L_val(w', a) / d w'

with the Hessian-vector product taken by central finite differences at
w +- eps * v, eps = 0.01 / |v| (the paper's choice). The virtual step uses
`torch.func.functional_call`, so the model's parameters are never overwritten.

"Alphas" here are all of `Supernet.alphas()`: with PC-DARTS' edge normalisation that
includes the edge weights (betas), which therefore get the same first- or second-order
gradient, the same all-reduce under torchrun and the same optimizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch.func import functional_call

from trainer.darts.distributed import GradSync
from trainer.darts.supernet import Supernet

__all__ = ["HESSIAN_EPS", "Architect"]

HESSIAN_EPS = 0.01

Tensors = Mapping[str, torch.Tensor]


def _grad(loss: torch.Tensor, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients in the inputs' dtype; zeros for inputs the loss does not use (e.g. `alpha_normal` when
    every cell is a reduction cell, as with 1 or 2 layers)."""
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g.to(x.dtype) for x, g in zip(inputs, grads)]


class Architect:
    """Updates the supernet's alphas with `alpha_optimizer`; never changes its weights.

    `w_optimizer` is read (its momentum buffers) for the second-order virtual step.
    `autocast` wraps the forward passes that may run in reduced precision; the
    finite-difference Hessian product always runs in fp32 because a 0.01-relative
    perturbation is below bf16's resolution.
    """

    def __init__(self, model: Supernet, w_optimizer: torch.optim.SGD, alpha_optimizer: torch.optim.Optimizer,
                 order: str = "second", momentum: float = 0.9, weight_decay: float = 3e-4,
                 sync: GradSync | None = None,
                 autocast: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext) -> None:
        if order not in ("first", "second"):
            raise ValueError(f"order must be 'first' or 'second', not {order!r}")
        self.model, self.order = model, order
        self.w_optimizer, self.alpha_optimizer = w_optimizer, alpha_optimizer
        self.momentum, self.weight_decay = momentum, weight_decay
        self.sync = sync or GradSync(1)
        self.autocast = autocast

    def step(self, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
             lr: float) -> float:
        """One alpha update; returns the validation loss it was computed at (w for 1st, w' for 2nd)."""
        alphas = self.model.alphas()
        if self.order == "first":
            with self.autocast():
                loss = F.cross_entropy(self.model(x_val), y_val)
            grads = _grad(loss, alphas)
        else:
            loss, grads = self.hypergradient(x_train, y_train, x_val, y_val, lr)
        self.sync.average(grads)
        self.alpha_optimizer.zero_grad(set_to_none=True)
        for a, g in zip(alphas, grads):
            a.grad = g.to(a.dtype)
        self.alpha_optimizer.step()
        return float(loss.detach())

    def _loss(self, weights: Tensors, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(self.model, dict(weights), (x,), strict=False), y)

    def virtual_weights(self, x_train: torch.Tensor, y_train: torch.Tensor, lr: float) -> dict[str, torch.Tensor]:
        """w' after one SGD step on the training batch (momentum and weight decay included)."""
        named = self.model.named_weights()
        with self.autocast():
            loss = self._loss(named, x_train, y_train)
        grads = _grad(loss, list(named.values()))
        self.sync.average(grads)
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for (name, p), g in zip(named.items(), grads):
                step = g + self.weight_decay * p
                buf = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    step = step + self.momentum * buf
                out[name] = (p - lr * step).requires_grad_(True)
        return out

    def hypergradient(self, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                      lr: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(L_val(w', a), d L_val(w'(a), a) / d a) — the second-order alpha gradient."""
        alphas = self.model.alphas()
        unrolled = self.virtual_weights(x_train, y_train, lr)
        with self.autocast():
            val_loss = self._loss(unrolled, x_val, y_val)
        names = list(unrolled)
        grads = _grad(val_loss, [*alphas, *unrolled.values()])
        d_alpha, d_w = grads[:len(alphas)], grads[len(alphas):]
        self.sync.average(d_w)
        hessian = self.hessian_vector(dict(zip(names, d_w)), x_train, y_train)
        return val_loss, [da - lr * h for da, h in zip(d_alpha, hessian)]

    def hessian_vector(self, vector: Tensors, x_train: torch.Tensor, y_train: torch.Tensor) -> list[torch.Tensor]:
        """(d/d a) [d L_train / d w . v] by central differences at w +- eps v."""
        named = self.model.named_weights()
        norm = torch.sqrt(sum((v ** 2).sum() for v in vector.values()))  # type: ignore[arg-type]
        eps = HESSIAN_EPS / max(float(norm), 1e-12)
        alphas = self.model.alphas()
        grads = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                shifted = {n: p + sign * eps * vector[n] for n, p in named.items()}
            loss = self._loss(shifted, x_train, y_train)
            grads.append(_grad(loss, alphas))
        out = [(gp - gm) / (2 * eps) for gp, gm in zip(*grads)]
        self.sync.average(out)
        return out
