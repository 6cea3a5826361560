"""A trial of a local run while its process runs: its collectors, its stop, its end.

`RunningTrial` is only state and the decisions made on it (when to SIGKILL, when its output
has ended, which message it fails with); the runner, the collection and early stopping act
on it from one thread.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.collector import FileCollector, StdoutCollector
from controller.local.observation_fold import ObservationFold
from controller.local.processes import TrialProcess
from controller.store import TrialRow
from kubenas.early_stopping import StopRule, StopWatch
from kubenas.printable import printable
from kubenas.trials import Objective, TrialCondition

__all__ = ["EOF_GRACE_S", "EOF_LIMIT_S", "STOP_GRACE_S", "RunningTrial", "describe_rule"]

log = logging.getLogger(__name__)

# SIGTERM to SIGKILL, for a trial stopped early or whose metrics cannot be collected.
STOP_GRACE_S = 5.0
# After a trial's main process exits, how long its output may stay open (a leftover child).
EOF_GRACE_S = 2.0
# ... unless output read before it is still queued; but a leftover child that keeps printing
# does not keep the trial open longer than this after the main process exited.
EOF_LIMIT_S = 30.0


@dataclass
class RunningTrial:
    process: TrialProcess
    row: TrialRow
    stdout: StdoutCollector | None
    file: FileCollector | None
    gpu: str | None
    exited_at: float | None = None
    handled: int = 0                      # events of this trial taken from the queue
    eof: bool = False
    unparsed: list[str] = field(default_factory=list)
    watch: StopWatch | None = None        # the early-stopping rules applied to its metrics
    early_stop: str | None = None         # why it was stopped early (set once, when it is)
    collect_error: str | None = None      # why its metrics could not be collected (it fails)
    kill_at: float | None = None          # SIGKILL deadline after the early-stop SIGTERM
    pushed: int = 0                       # Push collector: store logs already fed to `watch`
    observed: ObservationFold | None = None  # its observation so far, folded as metrics arrive

    @property
    def name(self) -> str:
        return self.row.name

    def request_stop(self) -> None:
        """SIGTERM the process group now, SIGKILL after STOP_GRACE_S (`kill_if_overdue`); never blocks."""
        if self.process.returncode() is None and self.kill_at is None:
            self.kill_at = time.monotonic() + STOP_GRACE_S
            self.process.signal_group(signal.SIGTERM)

    def judge(self, metrics: Iterable[tuple[str, float | str]]) -> None:
        """Feed metrics to its early-stopping watch; stop the trial when the rules say so."""
        if self.watch is not None and self.early_stop is None and self.watch.feed_all(metrics):
            self.stop_early()

    def stop_early(self) -> None:
        """Stop it as EarlyStopped; a trial whose process already ended keeps its own outcome."""
        if self.process.returncode() is not None:
            return
        self.early_stop = "stopped early: " + ", ".join(map(describe_rule, self.watch.rules if self.watch else ()))
        self.request_stop()
        log.info("trial %s %s", self.name, self.early_stop)

    def collection_failed(self, reason: str) -> None:
        """Its metrics cannot be collected: stop reading them, stop the trial; it will fail with `reason`."""
        if self.collect_error is not None:
            return
        self.collect_error, self.stdout, self.file = reason, None, None
        log.warning("trial %s: %s", self.name, reason)
        self.request_stop()

    def output_queued(self) -> bool:
        """Whether output the trial's reader has read is still waiting for the runner."""
        return self.process.waiting_for_room or self.process.posted > self.handled

    def ended(self, now: float) -> bool:
        """Whether its process has exited and its output ended (or stayed open too long after)."""
        if self.exited_at is None and self.process.returncode() is not None:
            self.exited_at = now
        if self.exited_at is None:
            return False
        return self.eof or (now - self.exited_at > EOF_GRACE_S and (
            not self.output_queued() or now - self.exited_at > EOF_LIMIT_S))

    def kill_if_overdue(self, now: float) -> None:
        if self.kill_at is not None and now > self.kill_at:
            log.info("trial %s did not stop within %.1fs of SIGTERM; sending SIGKILL", self.name, STOP_GRACE_S)
            self.process.signal_group(signal.SIGKILL)
            self.kill_at = None

    def message(self, condition: TrialCondition, code: int | None, objective: Objective) -> str:
        """The trial's message for its final `condition` (why it did not succeed)."""
        if self.collect_error is not None:
            return printable(self.collect_error)
        if condition is TrialCondition.EARLY_STOPPED:
            return self.early_stop or "stopped early"
        if condition is TrialCondition.KILLED:
            return "stopped by kubenas run (interrupted); rerun on --resume"
        if condition is TrialCondition.FAILED:
            if code is not None and code < 0:
                try:
                    return f"killed by signal {signal.Signals(-code).name}"
                except ValueError:
                    return f"killed by signal {-code}"
            return f"exited with status {code}; see {self.process.spec.log_path}"
        if condition is TrialCondition.METRICS_UNAVAILABLE:
            text = f"objective metric {objective.metric_name!r} was never reported"
            if self.unparsed:
                text += f"; value not a number in: {self.unparsed[0]!r}"
            return text
        return ""


def describe_rule(rule: StopRule) -> str:
    """`acc < 0.6 from report 4` (for the objective, its best value so far is compared)."""
    op = {"less": "<", "greater": ">", "equal": "=="}[rule.comparison.value]
    return f"{rule.metric} {op} {rule.value:.6g} from report {max(rule.start_step, 1)}"
