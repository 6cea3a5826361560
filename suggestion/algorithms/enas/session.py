"""One experiment's ENAS state and its byte form for a StateStore.

Saved after every call: controller weights, Adam state, baseline, worst reward, the
experiment's torch RNG state (the only randomness the algorithm uses; no global RNG is
touched) and the names of the trials already seen. Restoring it and replaying the same
request gives exactly what an uninterrupted process gives.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
from dataclasses import dataclass, field

import torch

from kubenas.enas_controller.adam import Adam
from kubenas.enas_controller.policy import LstmPolicy
from suggestion.algorithms.enas.mode import SearchMode

__all__ = ["FORMAT_VERSION", "Session", "new_session", "session_from_bytes", "session_to_bytes"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class Session:
    """Mutable per-experiment learning state; only touched under the experiment's lock."""

    fingerprint: str
    seed: int
    controller: LstmPolicy
    optimizer: Adam
    generator: torch.Generator
    baseline: float | None = None
    worst_reward: float | None = None
    seen: list[str] = field(default_factory=list)
    calls: int = 0
    learned: int = 0


def new_session(mode: SearchMode, learning_rate: float, fingerprint: str, seed: int) -> Session:
    """A fresh controller whose weights and later samples come from `seed` alone."""
    generator = torch.Generator().manual_seed(seed)
    controller = mode.new_controller(generator)
    optimizer = Adam(controller.parameters(), lr=learning_rate)
    return Session(fingerprint, seed, controller, optimizer, generator)


def session_to_bytes(session: Session) -> bytes:
    buf = io.BytesIO()
    torch.save(
        {
            "version": FORMAT_VERSION,
            "fingerprint": session.fingerprint,
            "seed": session.seed,
            "controller": session.controller.state_dict(),
            "optimizer": session.optimizer.state_dict(),
            "generator": session.generator.get_state(),
            "baseline": session.baseline,
            "worst_reward": session.worst_reward,
            "seen": list(session.seen),
            "calls": session.calls,
            "learned": session.learned,
        },
        buf,
    )
    return buf.getvalue()


def session_from_bytes(blob: bytes, mode: SearchMode, learning_rate: float, fingerprint: str) -> Session | None:
    """The saved session, or None when it is unreadable or belongs to another space/settings."""
    try:
        data = torch.load(io.BytesIO(blob), weights_only=True)
    except (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError) as err:
        log.warning("saved ENAS state unreadable (%s); starting a fresh controller", err)
        return None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        log.warning("saved ENAS state has an unknown format; starting a fresh controller")
        return None
    if data["fingerprint"] != fingerprint:
        log.warning("search space or settings changed since the saved ENAS state; starting a fresh controller")
        return None
    session = new_session(mode, learning_rate, fingerprint, int(data["seed"]))
    session.controller.load_state_dict(data["controller"])
    session.optimizer.load_state_dict(data["optimizer"])
    session.generator.set_state(data["generator"])
    session.baseline = data["baseline"]
    session.worst_reward = data["worst_reward"]
    session.seen = list(data["seen"])
    session.calls = int(data["calls"])
    session.learned = int(data["learned"])
    if not _finite(session):
        # Written before the reward rule clipped rewards: a 1e39 reward turned the weights
        # into NaN, and reusing them would fail every later call of the experiment.
        log.warning("saved ENAS state holds non-finite weights or rewards; starting a fresh controller")
        return None
    return session


def _finite(session: Session) -> bool:
    numbers = [x for x in (session.baseline, session.worst_reward) if x is not None]
    if not all(math.isfinite(x) for x in numbers):
        return False
    tensors = [*session.controller.state_dict().values(), *session.optimizer.exp_avg, *session.optimizer.exp_avg_sq]
    return all(bool(torch.isfinite(t).all()) for t in tensors)
