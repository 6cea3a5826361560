"""How the controller learns: which trials give which reward, and the REINFORCE update.

Reward rule (per trial, each trial learned from exactly once, in history order):
- A trial with a reward under `suggestion.algorithms.reward` (Succeeded or EarlyStopped
  with a finite objective value, clipped to +-REWARD_LIMIT, negated for minimize): it.
- Failed, MetricsUnavailable, or Succeeded/EarlyStopped without a finite objective value:
  the worst reward seen so far (over every succeeded trial learned from, this call's
  included). Before any trial has succeeded there is no such reward, so these trials wait
  (unlearned) until one has.
- Killed: never a reward (stopping is a decision about the experiment, not the
  architecture); marked as seen.
- Created, Running, Unknown: not finished yet; looked at again next call.
- An architecture that does not fit the space (other numLayers, unknown op id or
  primitive, unreadable JSON) is logged once and marked as seen.

Update: the baseline is an exponential moving average of rewards, started at the mean
reward of the first trials learned from and then moved once per trial:
`b <- b - (1 - decay) * (b - r)`, the advantage of a trial being `r - b` after its own
update (as Katib does). Then `controller_train_steps` Adam steps minimise, over the new
trials (the newest MAX_BATCH of them), the mean of
`-(r - b) * log p(arch) - entropy_weight * H(arch) + skip_weight * KL(skips || target)`,
each trial's architecture re-scored under the current policy at every step. Advantages
larger than ADVANTAGE_SCALE in magnitude are all divided by one common factor first: the
controller trains in float32, where a 1e30 advantage would overflow Adam's squared
gradients, and Adam's step hardly depends on the gradient's scale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubenas.trials import Objective, TrialCondition, TrialRecord
from suggestion.algorithms.enas.mode import Decisions
from suggestion.algorithms.reward import reward

if TYPE_CHECKING:
    from kubenas.enas_controller.adam import Adam
    from kubenas.enas_controller.policy import LstmPolicy
    from suggestion.algorithms.enas.settings import EnasSettings

__all__ = ["MAX_BATCH", "Experience", "Harvest", "harvest", "reinforce"]

log = logging.getLogger(__name__)

# Gradient steps look at the newest trials only, so a call after a long outage costs about
# as much as a normal one (and little memory); older ones still move the baseline.
MAX_BATCH = 32
# Largest advantage magnitude used as it is (see the module docstring).
ADVANTAGE_SCALE = 1e6

@dataclass(frozen=True)
class Experience:
    """One evaluated architecture paired with its own reward."""

    trial: str
    decisions: Decisions
    reward: float


@dataclass(frozen=True)
class Harvest:
    """What this call learns: new experiences, names now seen, and the updated worst reward."""

    experiences: list[Experience]
    seen: list[str]
    worst_reward: float | None


def harvest(
    history: Sequence[TrialRecord],
    objective: Objective,
    seen: Collection[str],
    worst_reward: float | None,
    decode: Callable[[Mapping[str, str]], Decisions],
) -> Harvest:
    """Apply the reward rule to the trials not seen yet; does not mutate its arguments."""
    fresh: list[tuple[TrialRecord, Decisions]] = []
    newly_seen: list[str] = []
    names = set(seen)
    for trial in history:
        if trial.name in names or not trial.condition.finished:
            continue
        names.add(trial.name)
        if trial.condition is TrialCondition.KILLED:
            newly_seen.append(trial.name)
            continue
        try:
            decisions = decode(trial.assignments)
        except ValueError as err:
            log.warning("trial %s: architecture ignored: %s", trial.name, err)
            newly_seen.append(trial.name)
            continue
        fresh.append((trial, decisions))
        value = reward(trial, objective)
        if value is not None:
            worst_reward = value if worst_reward is None else min(worst_reward, value)
    experiences: list[Experience] = []
    for trial, decisions in fresh:
        value = reward(trial, objective)
        if value is None:
            if worst_reward is None:
                continue  # no success yet: keep it for a later call
            value = worst_reward
        experiences.append(Experience(trial.name, decisions, value))
        newly_seen.append(trial.name)
    return Harvest(experiences, newly_seen, worst_reward)


def reinforce(
    controller: LstmPolicy,
    optimizer: Adam,
    experiences: Sequence[Experience],
    baseline: float | None,
    settings: EnasSettings,
    check_cancelled: Callable[[], None] = lambda: None,
) -> float:
    """Update the controller from `experiences` (non-empty); returns the new baseline.

    `check_cancelled` runs before every step and may raise to abandon the update."""
    import torch

    from kubenas.enas_controller.reinforce import moving_baseline, policy_loss

    baseline, advantages = moving_baseline(baseline, [e.reward for e in experiences],
                                           settings.controller_baseline_decay)
    batch = experiences[-MAX_BATCH:]
    used = advantages[-MAX_BATCH:]
    scale = max(1.0, max(abs(a) for a in used) / ADVANTAGE_SCALE)
    scaled = torch.tensor([a / scale for a in used], dtype=torch.float32)
    score = controller.scorer(torch.tensor([e.decisions for e in batch], dtype=torch.long))
    for step in range(1, settings.controller_train_steps + 1):
        check_cancelled()
        roll = score()
        loss = policy_loss(roll, scaled, settings.controller_entropy_weight, settings.controller_skip_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % settings.controller_log_every_steps == 0:
            log.info(
                "controller step %d/%d: loss %.5f, entropy %.4f, baseline %.5f, trials %d",
                step,
                settings.controller_train_steps,
                float(loss.detach()),
                float(roll.entropy.detach().mean()),
                baseline,
                len(batch),
            )
    return baseline
