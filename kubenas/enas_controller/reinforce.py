"""The controller's REINFORCE objective: advantage-weighted log-prob, entropy bonus, skip penalty.

For rollouts re-scored under the current policy and one advantage per architecture
(reward minus baseline), the loss is the mean over architectures of
`-(r - b) * log p(arch) - entropy_weight * H(arch) + skip_weight * KL(skips || target)`;
a `None` weight turns its term off (Katib's "None").
"""

from __future__ import annotations

import torch

from kubenas.enas_controller.policy import Rollout

__all__ = ["moving_baseline", "policy_loss"]


def policy_loss(roll: Rollout, advantages: torch.Tensor, entropy_weight: float | None,
                skip_weight: float | None) -> torch.Tensor:
    """The scalar loss whose gradient step moves the policy toward positive advantages."""
    per_arch = -advantages * roll.log_prob
    if entropy_weight is not None:
        per_arch = per_arch - entropy_weight * roll.entropy
    if skip_weight is not None:
        per_arch = per_arch + skip_weight * roll.skip_penalty
    return per_arch.mean()


def moving_baseline(baseline: float | None, rewards: list[float], decay: float) -> tuple[float, list[float]]:
    """The exponential moving average after `rewards` (started at their mean when None) and
    each reward's advantage against the baseline just after its own update (as Katib does)."""
    if baseline is None:
        baseline = sum(rewards) / len(rewards)
    advantages = []
    for r in rewards:
        baseline -= (1.0 - decay) * (baseline - r)
        advantages.append(r - baseline)
    return baseline, advantages
