"""Suggestion feeding: GetSuggestions calls become Created trials of the run.

One call at a time runs in a daemon thread, so the runner goes on collecting output (and
records a trial that ends meanwhile at once); the thread's end wakes the runner through its
event queue. A suggestion server that died (UNAVAILABLE) is restarted once per run.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from controller.grpc_clients import SuggestionClient, SuggestionReply, SuggestionServerError
from controller.local.errors import RunError
from controller.local.persistence import TrialLedger
from controller.local.processes import TrialEvent
from controller.logic import (
    InvalidTrialName,
    count_trials,
    may_ask,
    overlay_settings,
    suggested_trial_name,
    suggestions_ended,
    trials_to_request,
    wait_past,
)
from controller.store import TrialRow
from kubenas.printable import printable
from kubenas.proto_convert import trial_to_proto
from kubenas.trials import Objective, TrialCondition, TrialRecord

__all__ = ["SuggestionFeed"]

log = logging.getLogger(__name__)


class _Call:
    """One GetSuggestions call in a daemon thread; posts a wake-up event when it ends."""

    def __init__(self, call: Callable[[], SuggestionReply], current: int, wake: queue.Queue[TrialEvent]) -> None:
        self.call, self.current = call, current
        self.reply: SuggestionReply | None = None
        self.error: SuggestionServerError | None = None
        self._done = threading.Event()

        def work() -> None:
            try:
                self.reply = call()
            except SuggestionServerError as exc:
                self.error = exc
            finally:
                self._done.set()
                wake.put(TrialEvent("", None))  # no trial: only wakes the loop

        threading.Thread(target=work, name="get-suggestions", daemon=True).start()

    def done(self) -> bool:
        return self._done.is_set()


class SuggestionFeed:
    """Keeps the run supplied with trials: `request` starts a call when more are wanted,
    `take` turns its reply into Created trials in the ledger. One thread calls both."""

    def __init__(self, client: SuggestionClient, experiment: Any, objective: Objective, ledger: TrialLedger,
                 seed: int | None, wake: queue.Queue[TrialEvent], *, resume_command: str,
                 restart: Callable[[], SuggestionClient] | None = None,
                 note: Callable[[str], None] = lambda _text: None) -> None:
        # `experiment` is the Experiment message every request carries.
        self.client, self.experiment, self.objective, self.ledger = client, experiment, objective, ledger
        self.seed, self.wake, self.resume_command = seed, wake, resume_command
        # Called once if the suggestion server is lost (UNAVAILABLE); returns a client of a new one.
        self.restart, self.note = restart, note
        self.exhausted = False  # the algorithm has no more suggestions
        self._call: _Call | None = None
        # What replies returned in `algorithm` (sent back merged, as Katib's Suggestion status
        # keeps it; --resume reloads it from the ledger); when to ask again after a short
        # reply; (completed, active) at the last ask.
        self.algorithm_settings: dict[str, str] = {}
        self._wait_past: int | None = None
        self._asked = (0, 0)

    @property
    def in_flight(self) -> bool:
        return self._call is not None

    def request(self, records: Sequence[TrialRecord], parallel: int, max_trials: int | None) -> None:
        """Start a GetSuggestions call if more trials are wanted and none is in flight."""
        if self.exhausted or self._call is not None:
            return
        counts = count_trials(records)
        current, total = trials_to_request(parallel, max_trials, counts.completed, counts.active)
        if current <= 0 or not may_ask(self._wait_past, counts.completed):
            return
        history = [trial_to_proto(r, self.objective) for r in records]
        self._asked, stored = (counts.completed, counts.active), dict(self.algorithm_settings)
        # self.client is read when the call runs: a retry after a restart uses the new server
        self._call = _Call(lambda: self.client.suggest(self.experiment, history, current, total, stored),
                           current, self.wake)

    def take(self) -> None:
        """If the call in flight has ended, save its suggestions as Created trials. Raises
        RunError if it failed (after one restart of a lost server)."""
        call = self._call
        if call is None or not call.done():
            return
        self._call = None
        if call.error is not None:
            self._failed(call, call.error)
            return
        reply, current = call.reply, call.current
        assert reply is not None
        self._keep_algorithm_settings(reply.algorithm_settings)
        self._wait_past = wait_past(current, len(reply.assignments), self._asked[0])
        if suggestions_ended(reply.exhausted, len(reply.assignments), self._asked[1]):
            if not reply.exhausted:
                log.warning("the algorithm returned no assignments for %d requested; treating it as done", current)
            self.exhausted = True
        rows = self.ledger.rows
        for item in reply.assignments[:current]:
            try:
                name = suggested_trial_name(self.ledger.experiment, item.trial_name, rows, self.seed)
            except InvalidTrialName as exc:
                raise RunError(f"GetSuggestions returned an unusable trial name: {exc}",
                               f"the trials so far are kept; see {self.ledger.workdir / 'suggestion-server.log'}"
                               ) from None
            self.ledger.save(TrialRow(name=name, assignments={a.name: a.value for a in item.assignments},
                                      labels=dict(item.labels), condition=TrialCondition.CREATED, seed=self.seed,
                                      workdir=str(self.ledger.trial_dir(name))))

    def _keep_algorithm_settings(self, returned: Sequence[tuple[str, str]]) -> None:
        merged = overlay_settings(self.algorithm_settings, returned)
        if merged != self.algorithm_settings:
            self.algorithm_settings = merged
            self.ledger.keep_algorithm_settings(merged)

    def _failed(self, call: _Call, exc: SuggestionServerError) -> None:
        if exc.code is grpc.StatusCode.UNAVAILABLE and self.restart is not None:
            # The server process died (OOM killer, a crash): its state is on disk
            # (suggestion-state), so a new one continues where it stopped. Once per run; from
            # this thread, since the server is set to die with the thread that started it.
            restart, self.restart = self.restart, None
            log.warning("the suggestion server is unavailable (%s); starting a new one", exc)
            self.note("suggestion server lost; restarted it")
            self.client = restart()
            self._call = _Call(call.call, call.current, self.wake)
            return
        workdir = self.ledger.workdir
        raise RunError(f"GetSuggestions failed ({exc.code.name if exc.code else 'error'}): {printable(str(exc))}",
                       f"the trials so far are kept; see {workdir / 'suggestion-server.log'}, then resume "
                       f"with: {self.resume_command}")
