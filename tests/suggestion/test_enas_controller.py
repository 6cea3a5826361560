"""The LSTM controllers and their optimizer: sampling and re-scoring agree, shapes are
Katib's, gradients reach every weight, and our Adam matches torch.optim.Adam."""

from __future__ import annotations

import pytest
import torch

from kubenas.enas_controller.adam import Adam
from kubenas.enas_controller.policy import MacroController, MicroController


def macro(num_layers: int, seed: int = 0) -> MacroController:
    return MacroController(num_layers, 7, 16, 5.0, 2.25, 0.4, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("num_layers", [1, 2, 6])
def test_macro_rescoring_reproduces_the_sampling_distribution(num_layers: int) -> None:
    ctrl = macro(num_layers)
    with torch.no_grad():
        sampled = ctrl(32, generator=torch.Generator().manual_seed(1))
        scored = ctrl(32, forced=sampled.decisions)
    torch.testing.assert_close(scored.log_prob, sampled.log_prob)
    torch.testing.assert_close(scored.entropy, sampled.entropy)
    torch.testing.assert_close(scored.skip_penalty, sampled.skip_penalty)
    d = sampled.decisions
    assert d.shape == (32, num_layers, num_layers + 1)
    assert ((d[:, :, 0] >= 0) & (d[:, :, 0] < 7)).all()
    upper = torch.triu(torch.ones(num_layers, num_layers, dtype=torch.bool))
    assert (d[:, :, 1:][:, upper] == 0).all()  # no skip bit to the layer itself or later ones
    assert set(d[:, :, 1:].unique().tolist()) <= {0, 1}
    assert (sampled.log_prob < 0).all() and (sampled.entropy > 0).all()


def test_micro_rescoring_reproduces_the_sampling_distribution() -> None:
    ctrl = MicroController(4, 5, 16, 5.0, 2.25, torch.Generator().manual_seed(0))
    with torch.no_grad():
        sampled = ctrl(16, generator=torch.Generator().manual_seed(2))
        scored = ctrl.scorer(sampled.decisions)()
    torch.testing.assert_close(scored.log_prob, sampled.log_prob)
    torch.testing.assert_close(scored.entropy, sampled.entropy)
    d = sampled.decisions
    assert d.shape == (16, 2, 4, 4)
    for node in range(4):
        assert (d[:, :, node, :2] <= node + 1).all()  # inputs: two cell inputs or earlier nodes
    assert (d[:, :, :, 2:] < 5).all()


def test_log_prob_is_the_probability_of_exactly_those_decisions() -> None:
    # One layer, no temperature/tanh: P(op) is the softmax of the op logits; summing the
    # scored probabilities over every possible op gives 1.
    ctrl = MacroController(1, 7, 16, None, None, 0.4, torch.Generator().manual_seed(0))
    every = torch.zeros(7, 1, 2, dtype=torch.long)
    every[:, 0, 0] = torch.arange(7)
    with torch.no_grad():
        total = ctrl(7, forced=every).log_prob.exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-5)


def test_micro_probabilities_cover_only_possible_cells() -> None:
    # Two nodes, one primitive: node 0 picks inputs among 2 anchors, node 1 among 3, per
    # cell: 36 x 36 possible decision sets whose probabilities must add up to 1 (with
    # Katib's tanh squashing on, which must not give impossible inputs any mass).
    ctrl = MicroController(2, 1, 8, 5.0, 2.25, torch.Generator().manual_seed(0))
    cells = [[a, b, c, d] for a in range(2) for b in range(2) for c in range(3) for d in range(3)]
    every = torch.tensor([[[[n0a, n0b, 0, 0], [n1a, n1b, 0, 0]], [[m0a, m0b, 0, 0], [m1a, m1b, 0, 0]]]
                          for n0a, n0b, n1a, n1b in cells for m0a, m0b, m1a, m1b in cells])
    with torch.no_grad():
        total = ctrl(len(every), forced=every).log_prob.exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("kind", ["macro", "micro"])
def test_every_weight_gets_a_finite_gradient(kind: str) -> None:
    ctrl = macro(4) if kind == "macro" else MicroController(3, 5, 16, 5.0, 2.25, torch.Generator().manual_seed(0))
    with torch.no_grad():
        decisions = ctrl(8, generator=torch.Generator().manual_seed(3)).decisions
    roll = ctrl.scorer(decisions)()
    (roll.log_prob.sum() + roll.skip_penalty.sum() + roll.entropy.sum()).backward()
    for name, p in ctrl.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_same_seed_same_controller() -> None:
    a, b, c = macro(3, seed=5), macro(3, seed=5), macro(3, seed=6)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        assert not torch.equal(pa, pc), name
        assert pa.abs().max() <= 0.1


def test_adam_matches_torch_optim() -> None:
    ours_ctrl, ref_ctrl = macro(3), macro(3)
    ours = Adam(ours_ctrl.parameters(), lr=0.01)
    ref = torch.optim.Adam(ref_ctrl.parameters(), lr=0.01)
    with torch.no_grad():
        decisions = ours_ctrl(5, generator=torch.Generator().manual_seed(4)).decisions
    for _ in range(5):
        for ctrl, opt in ((ours_ctrl, ours), (ref_ctrl, ref)):
            opt.zero_grad()
            ctrl(5, forced=decisions).log_prob.sum().backward()
            opt.step()
    for p, q in zip(ours_ctrl.parameters(), ref_ctrl.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    restored = Adam(macro(3).parameters(), lr=0.01)
    restored.load_state_dict(ours.state_dict())
    assert restored.steps == 5
    assert all(torch.equal(a, b) for a, b in zip(restored.exp_avg_sq, ours.exp_avg_sq))
    with pytest.raises(ValueError, match="does not match"):
        other = MacroController(3, 7, 8, 5.0, 2.25, 0.4, torch.Generator().manual_seed(0))
        Adam(other.parameters(), lr=0.01).load_state_dict(ours.state_dict())


@pytest.mark.parametrize("tanh_const", [2.25, None])
def test_skip_terms_are_the_textbook_bernoulli_ones(tanh_const: float | None) -> None:
    # The skip log-prob, entropy and KL penalty are computed from log P(on) alone; check
    # them against the plain formulas with P(on) = sigmoid(2 * shaped score), Katib's rule.
    ctrl = MacroController(4, 7, 16, 5.0, tanh_const, 0.3, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    decisions = ctrl(5, generator=g).decisions
    op_raw = torch.randn(5, 4, 7, generator=g)
    skip_raw = 20 * torch.randn(5, 6, generator=g)  # large scores: nearly certain skips too
    bits = decisions[:, ctrl.skip_rows, ctrl.skip_cols + 1].to(torch.float32)
    got = ctrl._rollout(decisions, op_raw, skip_raw, 1 - bits)
    ops_only = ctrl._rollout(decisions, op_raw, torch.zeros(5, 0), torch.zeros(5, 0))

    shaped = skip_raw / 5.0
    p = torch.sigmoid(2 * (tanh_const * torch.tanh(shaped) if tanh_const is not None else shaped)).double()
    lp = torch.where(bits.bool(), p.log(), (1 - p).log()).sum(1)
    entropy = -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)).sum(1)
    kl = (torch.xlogy(p, p / 0.3) + torch.xlogy(1 - p, (1 - p) / 0.7)).mean(1)
    torch.testing.assert_close(got.log_prob.double() - ops_only.log_prob.double(), lp, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.entropy.double() - ops_only.entropy.double(), entropy, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.skip_penalty.double(), kl, rtol=1e-4, atol=1e-4)
