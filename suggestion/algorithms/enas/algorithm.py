"""ENAS suggestion algorithm: an LSTM controller trained by REINFORCE on each trial's own reward.

Per call, under the experiment's lock: load the saved session (or start one from the
seed), learn from the trials finished since the last call (see `learning`), sample the
requested architectures, save the session. torch is imported on the first suggest only,
so a server reaches SERVING without paying for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from kubenas.algorithm_settings.enas import EnasSettings
from kubenas.registry import Registry
from kubenas.trials import TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.enas.macro import MacroMode
from suggestion.algorithms.enas.micro import MicroMode
from suggestion.algorithms.enas.mode import Decisions, SearchMode
from suggestion.algorithms.enas.nb201 import Nb201Mode
from suggestion.algorithms.enas.settings import parse_enas_settings
from suggestion.algorithms.enas.space_checks import checked_nas_config

if TYPE_CHECKING:
    from suggestion.algorithms.enas.session import Session

__all__ = ["MAX_DECISIONS_PER_CALL", "MAX_DRAWS", "MODES", "Enas", "state_key"]

log = logging.getLogger(__name__)

# ENAS's controller for each NAS encoding (the same names as `ENCODINGS`).
MODES: Registry[type[SearchMode]] = Registry("ENAS search mode", [
    ("macro", MacroMode), ("micro", MicroMode), ("nb201", Nb201Mode)])

# Controller decisions sampled per call at most (architectures x decisions each): 10,000
# architectures of 10 layers, or 198 of 100 layers.
MAX_DECISIONS_PER_CALL = 1_000_000

# Draws per architecture before a misfit (an op that does not fit its map) is handed out.
MAX_DRAWS = 64

_torch_ready = threading.Lock()
_torch_configured = False


def _configure_torch() -> None:
    # The server is a small CPU process; one intra-op thread is faster for these tiny
    # tensors and keeps results independent of the machine's core count.
    global _torch_configured
    with _torch_ready:
        if not _torch_configured:
            import torch

            torch.set_num_threads(1)
            _torch_configured = True


def _fingerprint(settings: EnasSettings, mode: SearchMode) -> str:
    payload = {"settings": settings.fingerprint(), "space": mode.fingerprint()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _sample_fitting(session: Session, mode: SearchMode, n: int) -> list[Decisions]:
    """`n` architectures from the controller, redrawing those that do not fit the input
    (a macro child pooling a 28x28 image five times) up to MAX_DRAWS times each: a trial
    that cannot even be built teaches the controller nothing a redraw could not."""
    import torch

    kept: list[Decisions] = []
    misfits: list[Decisions] = []
    for _ in range(MAX_DRAWS):
        if len(kept) >= n:
            break
        with torch.no_grad():
            drawn = session.controller(n - len(kept), generator=session.generator).decisions.tolist()
        for d in drawn:
            (kept if mode.fits(d) else misfits).append(d)
    # A policy that keeps drawing misfits gets them: the trial fails with the trainer's
    # error and its worst reward steers the controller away.
    return (kept + misfits)[:n]


def state_key(experiment: str) -> str:
    """The StateStore key holding one experiment's ENAS session."""
    return f"enas-{experiment}"


class Enas(Algorithm):
    name: ClassVar[str] = "enas"
    supports_hpo: ClassVar[bool] = False
    supports_nas: ClassVar[bool] = True
    description: ClassVar[str] = "ENAS: LSTM controller (PyTorch) trained with REINFORCE; search_mode macro, micro or nb201"
    settings_model = EnasSettings

    def _prepare(self, problem: Problem) -> tuple[EnasSettings, SearchMode]:
        settings = parse_enas_settings(problem.settings, EnasSettings)
        nas = checked_nas_config(problem)
        return settings, MODES[settings.search_mode](nas, settings)

    def validate(self, problem: Problem) -> None:
        self._prepare(problem)

    def saved_session(self, problem: Problem) -> Session | None:
        """The experiment's saved state (for inspection), or None if none matches the problem.

        Read-only: the returned session is a copy, changing it changes nothing stored.
        """
        settings, mode = self._prepare(problem)
        _configure_torch()
        from suggestion.algorithms.enas.session import session_from_bytes

        blob = self.state.load(state_key(problem.experiment))
        if blob is None:
            return None
        return session_from_bytes(blob, mode, settings.controller_learning_rate, _fingerprint(settings, mode))

    def suggest(self, problem: Problem, history: Sequence[TrialRecord], n: int) -> list[Suggestion]:
        settings, mode = self._prepare(problem)
        per_architecture = len(mode.encoding.choices)
        limit = max(1, MAX_DECISIONS_PER_CALL // per_architecture)
        if n > limit:
            raise InvalidSettings("current_request_number", n,
                                  f"enas samples at most {limit} architectures per call in this space "
                                  f"({per_architecture} decisions each); ask again for more")
        _configure_torch()

        from suggestion.algorithms.enas.learning import harvest, reinforce
        from suggestion.algorithms.enas.session import (
            new_session,
            session_from_bytes,
            session_to_bytes,
        )

        fingerprint = _fingerprint(settings, mode)
        key = state_key(problem.experiment)
        lr = settings.controller_learning_rate
        with self.state.lock(key):
            blob = self.state.load(key)
            session = None if blob is None else session_from_bytes(blob, mode, lr, fingerprint)
            if session is None:
                seed = settings.random_state if settings.random_state is not None else secrets.randbits(63)
                session = new_session(mode, lr, fingerprint, seed)
            crop = harvest(history, problem.objective, session.seen, session.worst_reward, mode.decode)
            session.seen.extend(crop.seen)
            session.worst_reward = crop.worst_reward
            if crop.experiences:
                session.baseline = reinforce(session.controller, session.optimizer, crop.experiences,
                                             session.baseline, settings, problem.check_cancelled)
                session.learned += len(crop.experiences)
                log.info(
                    "experiment %s: learned from %d trial(s), %d in total; baseline %.5f",
                    problem.experiment,
                    len(crop.experiences),
                    session.learned,
                    session.baseline,
                )
            suggestions = [Suggestion(mode.encode(d)) for d in _sample_fitting(session, mode, n)]
            session.calls += 1
            self.state.save(key, session_to_bytes(session))
        return suggestions
