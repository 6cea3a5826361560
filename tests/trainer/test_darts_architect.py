"""The DARTS architect on a tiny real supernet (CPU): alphas move, the hypergradient is right."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from trainer.cells import reduction_indices
from trainer.darts.architect import Architect
from trainer.darts.supernet import Supernet

pytestmark = pytest.mark.usefixtures("one_thread")  # two OpenMP threads spin against other processes here

PRIMITIVES = ("separable_convolution_3x3", "max_pooling_3x3", "skip_connection", "dilated_convolution_3x3")


def tiny(dtype: torch.dtype = torch.float32, partial_channels: int = 1, seed: int = 0,
         primitives: tuple[str, ...] = PRIMITIVES, edge_normalization: bool = False,
         ) -> tuple[Supernet, tuple[torch.Tensor, ...]]:
    torch.manual_seed(seed)
    model = Supernet(3, 5, 3, primitives, init_channels=4, num_nodes=2, stem_multiplier=2,
                     partial_channels=partial_channels, edge_normalization=edge_normalization).to(dtype)
    # Alphas (and betas) away from uniform so the softmax Jacobian is not degenerate.
    with torch.no_grad():
        for a in model.alphas():
            a.normal_(0, 0.5)
    g = torch.Generator().manual_seed(seed + 1)
    data = (torch.randn(8, 3, 8, 8, generator=g, dtype=dtype), torch.randint(0, 5, (8,), generator=g),
            torch.randn(8, 3, 8, 8, generator=g, dtype=dtype), torch.randint(0, 5, (8,), generator=g))
    return model, data


def smooth(model: Supernet) -> Supernet:
    """Swap ReLU for SiLU: finite differences only estimate derivatives of smooth functions.

    With ReLU (and max pooling, also in PC-DARTS' channel bypass) the unrolled loss has kinks every ~1e-4 along a direction,
    so no step size gives a trustworthy numerical derivative; the algebra checked here is
    the same for any activation.
    """
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.SiLU())
            elif isinstance(child, nn.MaxPool2d):  # PC-DARTS' bypass of a strided edge
                setattr(module, name, nn.AvgPool2d(child.kernel_size, child.stride, ceil_mode=child.ceil_mode))
    return model


SMOOTH_PRIMITIVES = ("separable_convolution_3x3", "avg_pooling_3x3", "skip_connection", "dilated_convolution_3x3")


def optimizers(model: Supernet, momentum: float, wd: float) -> tuple[torch.optim.SGD, torch.optim.Adam]:
    w_opt = torch.optim.SGD(model.weights(), 0.1, momentum=momentum, weight_decay=wd)
    a_opt = torch.optim.Adam(model.alphas(), 3e-2, betas=(0.5, 0.999), weight_decay=1e-3)
    return w_opt, a_opt


@pytest.mark.parametrize("order", ["first", "second"])
@pytest.mark.parametrize("partial_channels", [1, 2])
def test_one_architecture_step_moves_the_alphas_and_leaves_the_weights(order: str, partial_channels: int) -> None:
    model, (xt, yt, xv, yv) = tiny(partial_channels=partial_channels)
    w_opt, a_opt = optimizers(model, 0.9, 3e-4)
    alphas = [a.detach().clone() for a in model.alphas()]
    weights = {n: p.detach().clone() for n, p in model.named_weights().items()}
    loss = Architect(model, w_opt, a_opt, order, 0.9, 3e-4).step(xt, yt, xv, yv, lr=0.1)
    assert torch.isfinite(torch.tensor(loss))
    for before, after in zip(alphas, model.alphas()):
        assert (after - before).abs().max() > 1e-3  # Adam moves every entry by about lr
    for name, p in model.named_weights().items():
        assert torch.equal(p, weights[name]), name


@pytest.mark.parametrize("order", ["first", "second"])
def test_an_architecture_step_moves_the_edge_weights_too(order: str) -> None:
    model, (xt, yt, xv, yv) = tiny(partial_channels=2, edge_normalization=True)
    assert set(model.named_alphas()) == {"alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce"}
    assert not set(model.named_alphas()) & set(model.named_weights())
    w_opt, a_opt = optimizers(model, 0.9, 3e-4)
    betas = {n: p.detach().clone() for n, p in model.named_alphas().items() if n.startswith("beta")}
    Architect(model, w_opt, a_opt, order, 0.9, 3e-4).step(xt, yt, xv, yv, lr=0.1)
    for name, before in betas.items():
        after = getattr(model, name)
        assert after.shape == (5,)  # one weight per edge of a 2-node cell
        assert (after - before).abs().min() > 1e-3, name  # Adam moves every entry by about lr


def _unrolled_val_loss(model: Supernet, w_opt: torch.optim.SGD, alpha: list[torch.Tensor], data: tuple[torch.Tensor, ...],
                       lr: float, momentum: float, wd: float) -> torch.Tensor:
    """L_val(w - lr * (momentum * buf + dL_train/dw + wd * w), alpha), written out independently."""
    xt, yt, xv, yv = data
    names = list(model.named_weights())
    params = dict(model.named_weights())
    alphas = dict(zip(model.named_alphas(), alpha))  # alphas, then betas with edge normalisation
    loss = F.cross_entropy(functional_call(model, {**params, **alphas}, (xt,)), yt)
    grads = torch.autograd.grad(loss, list(params.values()))
    unrolled = {}
    for n, g in zip(names, grads):
        p = params[n].detach()
        buf = w_opt.state[params[n]]["momentum_buffer"]
        unrolled[n] = p - lr * (momentum * buf + g.detach() + wd * p)
    return F.cross_entropy(functional_call(model, {**unrolled, **alphas}, (xv,)), yv)


@pytest.mark.parametrize(("lr", "edge_normalization", "along"), [
    (0.05, False, "all"), (0.5, False, "all"),
    (0.05, True, "all"), (0.5, True, "betas"),
])
def test_second_order_hypergradient_matches_finite_differences_of_the_unrolled_loss(
        lr: float, edge_normalization: bool, along: str) -> None:
    # With PC-DARTS edge normalisation the betas are architecture parameters too: "betas"
    # checks the hypergradient along a direction that moves only them.
    model, data = tiny(torch.float64, primitives=SMOOTH_PRIMITIVES, edge_normalization=edge_normalization,
                       partial_channels=2 if edge_normalization else 1)
    assert len(model.alphas()) == (4 if edge_normalization else 2)
    smooth(model)
    momentum, wd = 0.9, 3e-4
    w_opt, a_opt = optimizers(model, momentum, wd)
    # One real weight step first, so the virtual step has a momentum buffer to include.
    xt, yt, xv, yv = data
    F.cross_entropy(model(xt), yt).backward()
    w_opt.step()
    w_opt.zero_grad(set_to_none=True)
    architect = Architect(model, w_opt, a_opt, "second", momentum, wd)
    _, hyper = architect.hypergradient(*data, lr=lr)

    g = torch.Generator().manual_seed(7)
    direction = [torch.randn(a.shape, generator=g, dtype=torch.float64) for a in model.alphas()]
    if along == "betas":
        direction = [d if name.startswith("beta") else torch.zeros_like(d)
                     for name, d in zip(model.named_alphas(), direction)]
    base = [a.detach() for a in model.alphas()]
    h = 1e-5

    def f(t: float) -> float:
        alpha = [b + t * d for b, d in zip(base, direction)]
        return float(_unrolled_val_loss(model, w_opt, alpha, data, lr, momentum, wd))

    numeric = (f(h) - f(-h)) / (2 * h)
    analytic = float(sum((hg * d).sum() for hg, d in zip(hyper, direction)))
    assert analytic == pytest.approx(numeric, rel=1e-3)

    # The check is sharp enough to see the second-order term: the first-order gradient misses.
    first = torch.autograd.grad(F.cross_entropy(model(xv), yv), model.alphas())
    naive = float(sum((g1 * d).sum() for g1, d in zip(first, direction)))
    assert abs(naive - numeric) > 10 * abs(analytic - numeric)


@pytest.mark.parametrize("edge_normalization", [False, True])
def test_first_order_gradient_is_the_plain_validation_gradient(edge_normalization: bool) -> None:
    model, (xt, yt, xv, yv) = tiny(torch.float64, edge_normalization=edge_normalization)
    w_opt, _ = optimizers(model, 0.0, 0.0)
    expected = torch.autograd.grad(F.cross_entropy(model(xv), yv), model.alphas())
    sgd = torch.optim.SGD(model.alphas(), lr=1.0)
    before = [a.detach().clone() for a in model.alphas()]
    Architect(model, w_opt, sgd, "first", 0.0, 0.0).step(xt, yt, xv, yv, lr=0.1)
    for b, a, e in zip(before, model.alphas(), expected):
        torch.testing.assert_close(b - a.detach(), e)


def test_reduction_cells_sit_at_one_and_two_thirds() -> None:
    assert reduction_indices(8) == (2, 5)
    assert reduction_indices(3) == (1, 2)
    assert reduction_indices(1) == (0,)
    model = Supernet(1, 3, 8, PRIMITIVES, init_channels=2, num_nodes=1)
    assert [i for i, c in enumerate(model.cells) if c.reduction] == [2, 5]
    assert model.primitives[0] == "none" and model.alpha_normal.shape == (2, len(PRIMITIVES) + 1)
