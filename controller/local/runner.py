"""The local experiment loop: ask for suggestions, start trials, collect, decide, repeat.

One thread owns everything here (store, collectors, trials); trial output arrives through
one bounded queue fed by the per-trial reader threads (`collection`), GetSuggestions runs in
a helper thread (`suggestion_feed`, so a trial that ends meanwhile is recorded at once), and
signals only set a flag (`interrupts`). Each pass of the loop is time-bounded, so an
interrupt is acted on within a second whatever the trials print. What the experiment and
its trials come to is decided by `controller.logic`, as in the cluster.
"""

from __future__ import annotations

import logging
import queue
import signal
import time
from dataclasses import replace

from rich.console import Console

from controller.local.collection import MetricCollection
from controller.local.early_stopping import EarlyStopping
from controller.local.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SUCCEEDED
from controller.local.interrupts import SignalFlag
from controller.local.launcher import StartProcess, TrialLauncher
from controller.local.persistence import TrialLedger
from controller.local.processes import (
    GpuPool,
    TrialEvent,
    TrialProcess,
    stop_all,
    trial_environment,
)
from controller.local.results import best_row, print_summary, write_result_files
from controller.local.running_trial import STOP_GRACE_S, RunningTrial
from controller.local.setup import RunServices, RunSetup
from controller.local.suggestion_feed import SuggestionFeed
from controller.logic import (
    Outcome,
    count_trials,
    experiment_outcome,
    experiment_seed,
    trial_condition,
)
from controller.progress import Progress
from controller.report import record_of
from controller.store import ObservationStore, TrialRow
from kubenas.metrics import now_rfc3339

__all__ = ["LocalRunner"]

log = logging.getLogger(__name__)

_TICK_S = 0.2
# Output chunks (64 KiB each) queued between the trials' readers and the runner.
_QUEUE_CHUNKS = 32


class LocalRunner:
    """Drives one experiment to its outcome (or to an interrupt). Call `run` once."""

    def __init__(self, setup: RunSetup, services: RunServices, store: ObservationStore, gpus: GpuPool,
                 console: Console, start_process: StartProcess = TrialProcess.start) -> None:
        experiment = setup.experiment
        self.setup, self.experiment, self.plan, self.workdir = setup, experiment, setup.plan, setup.workdir
        self.store, self.gpus, self.console = store, gpus, console
        self.on_loop_end = services.on_loop_end
        self.name: str = experiment.name
        self.objective = experiment.objective()
        self.max_trials: int | None = experiment.max_trial_count
        self.max_failed: int | None = experiment.max_failed_trial_count
        self.parallel = setup.parallel
        if gpus.enabled and len(gpus.ids) < self.parallel:
            log.info("%d GPUs: running at most %d trials at once (one GPU each)", len(gpus.ids), len(gpus.ids))
            self.parallel = len(gpus.ids)
        self.seed = experiment_seed(experiment.algorithm_settings())
        self.ledger = TrialLedger(store, self.name, setup.workdir)
        self.rows = self.ledger.rows
        self.active: dict[str, RunningTrial] = {}
        self.events: queue.Queue[TrialEvent] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.signals = SignalFlag()
        self.progress = Progress(console, self.name, self.objective, self.max_trials)
        self.resume_command = f"kubenas run {setup.file} --workdir {setup.workdir} --resume"
        self.feed = SuggestionFeed(services.suggestion, setup.proto, self.objective, self.ledger, self.seed,
                                   self.events, resume_command=self.resume_command,
                                   restart=services.restart_suggestion, note=self.progress.note)
        self.early_stopping = EarlyStopping(services.early_stopping, setup.proto, self.objective, store,
                                            note=self.progress.note)
        self.launcher = TrialLauncher(experiment, setup.plan, self.ledger, gpus, self.events, cwd=setup.cwd,
                                      base_env=trial_environment(), db_address=services.db_address,
                                      start=start_process)
        self.collection = MetricCollection(self.events, self.active, setup.plan, self.objective, store,
                                           self.progress)

    # --- the loop ---------------------------------------------------------------------------
    def run(self, resume: bool) -> int:
        self.started_at = time.time()  # results.json's wall clock (reproducibility block)
        # Handlers first: a Ctrl-C while a resumed run reloads its trials stops it like any other.
        self.signals.install()
        if resume:
            try:
                self._reload()
            except BaseException:
                self.signals.restore()
                raise
        outcome: Outcome | None = None
        try:
            with self.progress:
                outcome = self._loop()
        finally:
            if self.active:
                self._stop_active()
            self.signals.restore()
            self.on_loop_end()
            write_result_files(self.workdir, self.experiment, self.seed, outcome, list(self.rows.values()),
                               self.started_at, self.console, self.progress.note,
                               self.progress.objective_curves())
        if outcome is None:
            self.console.print(f"interrupted; resume with: {self.resume_command}",
                               soft_wrap=True, markup=False)
            return EXIT_INTERRUPTED
        print_summary(self.console, self.name, self.objective, self.workdir, outcome, self.rows)
        return EXIT_SUCCEEDED if outcome.succeeded else EXIT_FAILED

    def _interrupted(self) -> bool:
        return self.signals.signum is not None

    def _loop(self) -> Outcome | None:
        while not self._interrupted():
            self.feed.take()
            records = [record_of(r) for r in self.rows.values()]
            outcome = experiment_outcome(self.objective, self.max_trials, self.max_failed, records, self.feed.exhausted)
            self.progress.status(count_trials(records), best_row(self.objective, self.rows, records))
            if outcome is not None:
                return outcome
            self.early_stopping.refresh(records, self.active.values())
            self.feed.request(records, self.parallel, self.max_trials)
            self._start_pending()
            if not self.active and not self.ledger.pending() and not self.feed.in_flight:
                continue  # nothing left to wait for: the next round decides the outcome
            self._pump(_TICK_S)
        return None

    def _start_pending(self) -> None:
        for row in self.ledger.pending():
            if len(self.active) >= self.parallel or self._interrupted() or not self.launcher.can_start():
                return
            self._start(row)

    def _start(self, row: TrialRow) -> None:
        launch = self.launcher.launch(row)
        if launch.process is None:  # its command could not start: Failed already
            self.ledger.save(launch.row)
            self.progress.started(launch.row, launch.gpu)
            self.progress.finished(launch.row)
            return
        self.active[row.name] = self.collection.track(launch.process, launch.row, launch.gpu, launch.metrics_file,
                                                      self.early_stopping.watch())
        self.ledger.save(launch.row)
        self.progress.started(launch.row, launch.gpu)

    def _pump(self, timeout: float) -> None:
        """Collect output for one pass (waiting up to `timeout` for the first piece), then
        finish trials whose process and output have ended and SIGKILL overdue ones."""
        self.collection.take_output(timeout, self._interrupted)
        if self.plan.collector == "Push":
            self.early_stopping.watch_pushed(self.active.values())
        now = time.monotonic()
        for trial in list(self.active.values()):
            if trial.ended(now):
                self._finish(trial)
            else:
                trial.kill_if_overdue(now)

    def _finish(self, trial: RunningTrial) -> None:
        process, row = trial.process, trial.row
        code = process.wait()
        process.signal_group(signal.SIGKILL)  # leftovers in the trial's group end with it, as in a pod
        observation = self.collection.conclude(trial)
        condition = trial_condition(code, observation, self.objective, killed=process.stop_requested,
                                    collector=self.plan.collector, early_stopped=trial.early_stop is not None,
                                    collection_failed=trial.collect_error is not None)
        ended = process.ended or time.time()
        done = replace(row, condition=condition, completion_time=now_rfc3339(), observation=observation,
                       exit_code=code, duration_s=round(ended - process.started, 3),
                       message=trial.message(condition, code, self.objective))
        self.gpus.release(row.name)
        del self.active[row.name]
        self.ledger.save(done)
        self.progress.finished(done)
        self.early_stopping.trial_completed()

    # --- stopping, resume, results -----------------------------------------------------------
    def _stop_active(self) -> None:
        stop_all([a.process for a in self.active.values()], STOP_GRACE_S)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.active and time.monotonic() < deadline:
            self._pump(0.05)
        for trial in list(self.active.values()):
            self._finish(trial)

    def _reload(self) -> None:
        self.feed.algorithm_settings = self.ledger.kept_algorithm_settings()
        rerun = self.ledger.reload()
        self.progress.note(f"resuming {self.name}: {len(self.rows) - rerun} finished trials kept, "
                           f"{rerun} to run again")
