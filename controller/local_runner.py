"""The local experiment loop: ask for suggestions, start trials, collect, decide, repeat.

One thread owns everything here (store, collectors, rows); trial output arrives through
one bounded queue fed by the per-trial reader threads, GetSuggestions runs in a helper
thread (so a trial that ends meanwhile is recorded at once), and signals only set a flag.
Each pass of the loop is time-bounded, so an interrupt is acted on within a second
whatever the trials print.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console

from controller.collector import (
    CollectionError,
    FileCollector,
    StdoutCollector,
    observation_from_log,
)
from controller.grpc_clients import EarlyStoppingClient, SuggestionClient, SuggestionServerError
from controller.local import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SUCCEEDED, RunError, TrialPlan
from controller.local_observation import ObservationFold
from controller.local_trials import (
    GpuPool,
    LaunchError,
    LaunchSpec,
    TrialEvent,
    TrialProcess,
    stop_all,
    stop_escaped,
    stop_orphan,
    trial_environment,
)
from controller.logic import (
    Outcome,
    count_trials,
    experiment_outcome,
    experiment_seed,
    new_trial_name,
    optimal_trial,
    trial_condition,
    trials_to_request,
)
from controller.progress import Progress
from controller.report import (
    plot_progress,
    print_summary,
    provenance,
    record_of,
    results_document,
    write_results,
)
from controller.store import MetricLog, ObservationStore, TrialRow
from controller.template import TemplateError, meta_values, substitute, trial_parameter_values
from kubenas.early_stopping import StopRule, StopWatch
from kubenas.metrics import MetricPoint, metrics_path_problem, now_rfc3339
from kubenas.printable import printable
from kubenas.proto_convert import trial_to_proto
from kubenas.trials import TrialCondition

__all__ = ["STOP_GRACE_S", "LocalRunner"]

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0
_TICK_S = 0.2
# After a trial's main process exits, how long its output may stay open (a leftover child).
_EOF_GRACE_S = 2.0
# ... unless output read before it is still queued; but a leftover child that keeps printing
# does not keep the trial open longer than this after the main process exited.
_EOF_LIMIT_S = 30.0
_PID_KEY = "trial-pid/"
# Metrics files written by this experiment's trials: the only existing files kubenas removes.
_METRICS_FILE_KEY = "metrics-file/"
# Output chunks (64 KiB each) queued between the trials' readers and the runner.
_QUEUE_CHUNKS = 32
# Longest time one pass of the loop spends on queued output before it looks at signals again.
_PUMP_BUDGET_S = 0.5
_RERUN = (TrialCondition.CREATED, TrialCondition.RUNNING, TrialCondition.KILLED, TrialCondition.UNKNOWN)


@dataclass
class _Active:
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


class _Suggesting:
    """One GetSuggestions call in a daemon thread; wakes the runner through its event queue."""

    def __init__(self, call: Callable[[], Any], current: int, events: queue.Queue[TrialEvent]) -> None:
        self.call, self.current = call, current
        self.reply: Any = None
        self.error: SuggestionServerError | None = None
        self._done = threading.Event()

        def work() -> None:
            try:
                self.reply = call()
            except SuggestionServerError as exc:
                self.error = exc
            finally:
                self._done.set()
                events.put(TrialEvent("", None))  # no trial: only wakes the loop

        threading.Thread(target=work, name="get-suggestions", daemon=True).start()

    def done(self) -> bool:
        return self._done.is_set()


class LocalRunner:
    """Drives one experiment to its outcome (or to an interrupt). Call `run` once."""

    def __init__(self, *, experiment: Any, plan: TrialPlan, proto: Any, client: SuggestionClient,
                 store: ObservationStore, workdir: Path, parallel: int, gpus: GpuPool, console: Console,
                 cwd: str, file: Path, db_address: str | None = None,
                 on_loop_end: Callable[[], None] = lambda: None,
                 restart_suggestion: Callable[[], SuggestionClient] | None = None,
                 early_stopping: EarlyStoppingClient | None = None) -> None:
        self.experiment, self.plan, self.proto, self.client = experiment, plan, proto, client
        # Asked for rules at start and whenever a trial completes; None: no spec.earlyStopping.
        self.early_stopping = early_stopping
        self.rules: tuple[StopRule, ...] = ()
        self._rules_stale = early_stopping is not None
        # Called once if the suggestion server is lost (UNAVAILABLE); returns a client of a new one.
        self.restart_suggestion = restart_suggestion
        self.store, self.workdir, self.gpus, self.console, self.cwd, self.file = store, workdir, gpus, console, cwd, file
        self.db_address = db_address
        self.on_loop_end = on_loop_end
        self.name: str = experiment.name
        self.objective = experiment.objective()
        self.max_trials: int | None = experiment.max_trial_count
        self.max_failed: int | None = experiment.max_failed_trial_count
        self.parallel = parallel
        if gpus.enabled and len(gpus.ids) < parallel:
            log.info("%d GPUs: running at most %d trials at once (one GPU each)", len(gpus.ids), len(gpus.ids))
            self.parallel = len(gpus.ids)
        self.seed = experiment_seed(experiment.algorithm_settings())
        self.rows: dict[str, TrialRow] = {}
        self.active: dict[str, _Active] = {}
        self.events: queue.Queue[TrialEvent] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._suggesting: _Suggesting | None = None
        self.exhausted = False
        self.stop_signal: int | None = None
        self.base_env = trial_environment()
        self.metric_names = self.objective.metric_names
        self._mentions = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in self.metric_names) + r")\s*=")
        self.progress = Progress(console, self.name, self.objective, self.max_trials)

    # --- the loop ---------------------------------------------------------------------------
    def run(self, resume: bool) -> int:
        self.started_at = time.time()  # results.json's wall clock (reproducibility block)
        # Handlers first: a Ctrl-C while a resumed run reloads its trials stops it like any other.
        restore = self._install_signal_handlers()
        if resume:
            try:
                self._reload()
            except BaseException:
                restore()
                raise
        outcome: Outcome | None = None
        try:
            with self.progress:
                outcome = self._loop()
        finally:
            if self.active:
                self._stop_active()
            restore()
            self.on_loop_end()
            self._write_results(outcome)
        if outcome is None:
            self.console.print(f"interrupted; resume with: kubenas run {self.file} --workdir {self.workdir} --resume",
                               soft_wrap=True, markup=False)
            return EXIT_INTERRUPTED
        self._summary(outcome)
        return EXIT_SUCCEEDED if outcome.succeeded else EXIT_FAILED

    def _loop(self) -> Outcome | None:
        while self.stop_signal is None:
            self._take_suggestions()
            records = [record_of(r) for r in self.rows.values()]
            outcome = experiment_outcome(self.objective, self.max_trials, self.max_failed, records, self.exhausted)
            self.progress.status(count_trials(records), self._best_row(records))
            if outcome is not None:
                return outcome
            self._refresh_rules(records)
            self._request_more(records)
            self._start_pending()
            if not self.active and not self._pending() and self._suggesting is None:
                continue  # nothing left to wait for: the next round decides the outcome
            self._pump(_TICK_S)
        return None

    def _pending(self) -> list[TrialRow]:
        return [r for r in self.rows.values() if r.condition is TrialCondition.CREATED]

    def _request_more(self, records: list[Any]) -> None:
        """Start a GetSuggestions call if more trials are wanted and none is in flight; its
        reply is taken by `_take_suggestions` while the loop goes on collecting."""
        if self.exhausted or self._suggesting is not None:
            return
        counts = count_trials(records)
        current, total = trials_to_request(self.parallel, self.max_trials, counts.completed, counts.active)
        if current <= 0:
            return
        history = [trial_to_proto(r, self.objective) for r in records]
        # self.client is read when the call runs: a retry after a restart uses the new server
        self._suggesting = _Suggesting(lambda: self.client.suggest(self.proto, history, current, total),
                                       current, self.events)

    def _take_suggestions(self) -> None:
        call = self._suggesting
        if call is None or not call.done():
            return
        self._suggesting = None
        if call.error is not None:
            exc = call.error
            if exc.code is grpc.StatusCode.UNAVAILABLE and self.restart_suggestion is not None:
                # The server process died (OOM killer, a crash): its state is on disk
                # (suggestion-state), so a new one continues where it stopped. Once per run; from
                # this thread, since the server is set to die with the thread that started it.
                restart, self.restart_suggestion = self.restart_suggestion, None
                log.warning("the suggestion server is unavailable (%s); starting a new one", exc)
                self.progress.note("suggestion server lost; restarted it")
                self.client = restart()
                self._suggesting = _Suggesting(call.call, call.current, self.events)
                return
            raise RunError(f"GetSuggestions failed ({exc.code.name if exc.code else 'error'}): {printable(str(exc))}",
                           f"the trials so far are kept; see {self.workdir / 'suggestion-server.log'}, then resume "
                           f"with: kubenas run {self.file} --workdir {self.workdir} --resume")
        reply, current = call.reply, call.current
        if reply.exhausted or not reply.assignments:
            if not reply.exhausted:
                log.warning("the algorithm returned no assignments for %d requested; treating it as done", current)
            self.exhausted = True
        for item in reply.assignments[:current]:
            name = item.trial_name if item.trial_name and item.trial_name not in self.rows else self._new_name()
            row = TrialRow(name=name, assignments={a.name: a.value for a in item.assignments},
                           labels=dict(item.labels), condition=TrialCondition.CREATED, seed=self.seed,
                           workdir=str(self.workdir / "trials" / name))
            self._save(row)

    def _new_name(self) -> str:
        return new_trial_name(self.name, self.rows, self.seed)

    def _start_pending(self) -> None:
        for row in self._pending():
            if len(self.active) >= self.parallel or self.stop_signal is not None:
                return
            free = self.gpus.available()
            if free is not None and free == 0:
                return
            self._start(row)

    def _start(self, row: TrialRow) -> None:
        plan = self.plan
        try:
            values = trial_parameter_values(self.experiment, row.assignments, row.name, plan.namespace, plan.kind,
                                            plan.api_version, labels=row.labels)
            meta = meta_values(row.name, plan.namespace, plan.kind, plan.api_version, labels=row.labels)
            container = substitute(plan.container, values, meta)
            env_values = substitute(dict(plan.env), values, meta)
            metrics_file = substitute(plan.file_path, values, meta) if plan.file_path else ""
        except TemplateError as exc:
            raise RunError(f"{exc} (assignments from the algorithm: {', '.join(row.assignments) or 'none'})") from None
        argv = tuple(str(v) for v in [*(container.get("command") or []), *(container.get("args") or [])])
        env = {**self.base_env, **env_values, "KATIB_TRIAL_NAME": row.name}
        gpu = self.gpus.acquire(row.name)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        if self.db_address is not None:
            env["KATIB_DB_MANAGER_ADDRESS"] = self.db_address
        trial_dir = self.workdir / "trials" / row.name
        spec = LaunchSpec(argv=argv, env=env, cwd=self.cwd, log_path=trial_dir / "stdout.log")
        file_collector = None
        if plan.collector == "File" and metrics_file:
            field_name = "spec.metricsCollectorSpec.source.fileSystemPath.path"
            problem = metrics_path_problem(metrics_file)
            if problem is not None:  # a parameter value can bring the `..` in
                raise RunError(f"{field_name}: {metrics_file[:200]!r} (trial {row.name}) — {problem}; "
                               f"name a file below the metrics directory, e.g. metrics/${{trialSpec.Name}}.log")
            path = Path(self.cwd, metrics_file)
            self._clear_metrics_file(path, metrics_file, row.name)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunError(f"spec.metricsCollectorSpec.source.fileSystemPath.path: {metrics_file!r} — cannot "
                               f"create its directory here ({exc.strerror}); use a path this user can write, "
                               f"e.g. metrics/${{trialSpec.Name}}.log") from None
            file_collector = FileCollector(path, self.metric_names, plan.metrics_format or None, plan.file_format)
            self.store.put_meta(self.name, _METRICS_FILE_KEY + str(path), json.dumps(row.name))
        started = now_rfc3339()
        try:
            process = TrialProcess.start(row.name, spec, self.events)
        except LaunchError as exc:
            self.gpus.release(row.name)
            failed = replace(row, condition=TrialCondition.FAILED, start_time=started, completion_time=started,
                             message=str(exc), duration_s=0.0)
            self._save(failed)
            self.progress.started(failed, gpu)
            self.progress.finished(failed)
            return
        stdout = StdoutCollector(self.metric_names, plan.metrics_format or None) if plan.collector == "StdOut" else None
        # remembered so that a --resume after a hard crash of this runner can stop the orphan
        self.store.put_meta(self.name, _PID_KEY + row.name, str(process.pid))
        running = replace(row, condition=TrialCondition.RUNNING, start_time=started)
        self.active[row.name] = _Active(process, running, stdout, file_collector, gpu,
                                        watch=StopWatch(self.rules, self.objective) if self.rules else None,
                                        observed=ObservationFold(self.objective) if plan.collector != "Push" else None)
        self._save(running)
        self.progress.started(running, gpu)

    def _clear_metrics_file(self, path: Path, named: str, trial: str) -> None:
        """Make sure the trial starts without an old metrics file at `path`. Only a file an
        earlier trial of this experiment wrote there is removed; anything else is the user's,
        and the run stops rather than delete or read it."""
        if not os.path.lexists(path):
            return
        field_name = "spec.metricsCollectorSpec.source.fileSystemPath.path"
        ours = self.store.get_meta(self.name, _METRICS_FILE_KEY + str(path)) is not None
        if not ours or not (path.is_symlink() or path.is_file()):
            # Never unlink (or read) a file the user has there, /dev/null, a FIFO or a directory.
            what = "exists and is not a regular file" if not (path.is_symlink() or path.is_file()) \
                else "exists and was not written by a trial of this experiment"
            raise RunError(f"{field_name}: {named[:200]!r} (trial {trial}) — {path} {what}; kubenas never removes it; "
                           f"name a file per trial that does not exist yet, e.g. metrics/${{trialSpec.Name}}.log")
        log.info("removing the metrics file %s an earlier trial wrote, before trial %s", path, trial)
        path.unlink()

    # --- collecting -------------------------------------------------------------------------
    def _pump(self, timeout: float) -> None:
        """Handle queued output for up to _PUMP_BUDGET_S (waiting up to `timeout` for the first
        piece), poll metrics files, and finish trials whose process and output have ended."""
        deadline = time.monotonic() + _PUMP_BUDGET_S
        try:
            event = self.events.get(timeout=timeout)
            while True:
                self._handle(event)
                if time.monotonic() > deadline or self.stop_signal is not None:
                    break
                event = self.events.get_nowait()
        except queue.Empty:
            pass
        for act in list(self.active.values()):
            if act.file is not None:
                try:
                    self._report(act.row.name, act.file.poll())
                except CollectionError as exc:
                    self._collection_failed(act, str(exc))
        if self.plan.collector == "Push" and self.rules:
            self._watch_pushed()
        now = time.monotonic()
        for name, act in list(self.active.items()):
            if act.exited_at is None and act.process.returncode() is not None:
                act.exited_at = now
            if act.exited_at is not None and (act.eof or (now - act.exited_at > _EOF_GRACE_S and (
                    not _output_queued(act) or now - act.exited_at > _EOF_LIMIT_S))):
                self._finish(act)
            elif act.kill_at is not None and now > act.kill_at:
                log.info("trial %s did not stop within %.1fs of SIGTERM; sending SIGKILL", name, STOP_GRACE_S)
                act.process.signal_group(signal.SIGKILL)
                act.kill_at = None

    def _handle(self, event: TrialEvent) -> None:
        """One piece of a trial's output (or its end): to its collector, the store, the watch."""
        act = self.active.get(event.trial)
        if act is None:
            return  # a wake-up, or output of a trial already finished
        act.handled += 1
        if event.line is None:
            act.eof = True
            return
        if act.stdout is None:
            return
        try:
            found = act.stdout.feed(event.line)
        except CollectionError as exc:
            self._collection_failed(act, str(exc))
            return
        # (the substring test first: the regex, anchored by a look-behind, scans every position)
        mention = self._mentions.search(event.line) if not found and len(act.unparsed) < 3 and any(
            name in event.line for name in self.metric_names) else None
        if mention:
            start = event.line.rfind("\n", 0, mention.start()) + 1
            act.unparsed.append(event.line[start:].split("\n", 1)[0].strip()[:120])
        self._report(event.trial, found)

    def _report(self, name: str, found: list[MetricPoint]) -> None:
        if not found:
            return
        self.store.report(name, [MetricLog(p.name, p.stored_value(), p.timestamp) for p in found])
        self.progress.points(name, found)
        act = self.active.get(name)
        if act is not None and act.observed is not None:
            act.observed.feed(found)
        if act is not None and act.watch is not None and act.early_stop is None:
            stop = act.watch.feed_all((p.name, p.value) for p in found)
            if stop:
                self._stop_early(act)

    def _collection_failed(self, act: _Active, reason: str) -> None:
        """Its metrics cannot be collected: stop reading them, stop the trial; it will fail with `reason`."""
        if act.collect_error is not None:
            return
        act.collect_error, act.stdout, act.file = reason, None, None
        log.warning("trial %s: %s", act.row.name, reason)
        self._signal_stop(act)

    # --- early stopping ---------------------------------------------------------------------
    def _refresh_rules(self, records: list[Any]) -> None:
        """Ask the early-stopping service for the current rules; apply new ones to running trials too."""
        if self.early_stopping is None or not self._rules_stale:
            return
        self._rules_stale = False
        history = [trial_to_proto(r, self.objective) for r in records]
        try:
            rules = self.early_stopping.rules(self.proto, history)
        except SuggestionServerError as exc:
            # Early stopping saves time; losing it for a while must not end the run. Asked again
            # when the next trial completes.
            log.warning("GetEarlyStoppingRules failed (%s): %s; keeping the previous rules", exc.code, exc)
            self.progress.note(f"early stopping rules unavailable ({exc}); keeping the previous ones")
            return
        if rules == self.rules:
            return
        self.rules = rules
        self.progress.note("early stopping rules: " + (", ".join(map(_describe, rules)) or "none"))
        for act in list(self.active.values()):
            if act.early_stop is not None:
                continue
            act.watch = StopWatch(rules, self.objective) if rules else None
            if act.watch is None:
                continue
            # What the trial reported so far, from the store, judged by the new rules.
            logs = self.store.get(act.row.name)
            act.pushed = len(logs)
            points = (log_.as_point() for log_ in logs)
            if act.watch.feed_all((p.name, p.value) for p in points if p is not None):
                self._stop_early(act)

    def _watch_pushed(self) -> None:
        """Push trials report straight to the DBManager: their new store logs go to their watch."""
        for act in list(self.active.values()):
            if act.watch is None or act.early_stop is not None:
                continue
            logs = self.store.get(act.row.name)
            fresh, act.pushed = logs[act.pushed:], len(logs)
            points = (log_.as_point() for log_ in fresh)
            if act.watch.feed_all((p.name, p.value) for p in points if p is not None):
                self._stop_early(act)

    def _stop_early(self, act: _Active) -> None:
        """SIGTERM the trial's process group now, SIGKILL after STOP_GRACE_S (see _pump); never blocks.
        A trial whose process already ended keeps its own outcome."""
        if act.process.returncode() is not None:
            return
        act.early_stop = "stopped early: " + ", ".join(map(_describe, act.watch.rules if act.watch else ()))
        self._signal_stop(act)
        log.info("trial %s %s", act.row.name, act.early_stop)

    def _signal_stop(self, act: _Active) -> None:
        if act.process.returncode() is None and act.kill_at is None:
            act.kill_at = time.monotonic() + STOP_GRACE_S
            act.process.signal_group(signal.SIGTERM)

    def _finish(self, act: _Active) -> None:
        process, row = act.process, act.row
        code = process.wait()
        process.signal_group(signal.SIGKILL)  # leftovers in the trial's group end with it, as in a pod
        if not self._drain_output(act, 1.0):
            stop_escaped(row.name)  # something outside the group still holds the output open
            self._drain_output(act, 1.0)
        try:
            if act.stdout is not None:
                self._report(row.name, act.stdout.close())
            if act.file is not None:
                self._report(row.name, act.file.close())
        except CollectionError as exc:
            act.collect_error = act.collect_error or str(exc)
        if act.observed is not None and act.observed.in_order:
            observation = act.observed.value
        else:  # Push (the trial reports to the store itself) or time stamps out of order
            observation = observation_from_log(self.objective, self.store.get(row.name),
                                               keep_text=bool(self.plan.metrics_format))
        condition = trial_condition(code, observation, self.objective, killed=process.stop_requested,
                                    collector=self.plan.collector, early_stopped=act.early_stop is not None,
                                    collection_failed=act.collect_error is not None)
        ended = process.ended or time.time()
        done = replace(row, condition=condition, completion_time=now_rfc3339(), observation=observation,
                       exit_code=code, duration_s=round(ended - process.started, 3),
                       message=self._message(condition, code, act))
        self.gpus.release(row.name)
        del self.active[row.name]
        self._save(done)
        self.progress.finished(done)
        self._rules_stale = self.early_stopping is not None

    def _drain_output(self, act: _Active, timeout: float) -> bool:
        """Handle queued output (this trial's, and others' met on the way) until this trial's
        output ends; False if it did not within `timeout` (something still holds it open).
        The queue is bounded, so the reader may be waiting for room: it is taken, not joined."""
        deadline = time.monotonic() + timeout
        while not act.eof:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return False
            try:
                self._handle(self.events.get(timeout=min(wait, 0.05)))
            except queue.Empty:
                if act.process.join_output(0):
                    act.eof = True  # its end event was taken by an earlier pass
        return True

    def _message(self, condition: TrialCondition, code: int | None, act: _Active) -> str:
        if act.collect_error is not None:
            return printable(act.collect_error)
        if condition is TrialCondition.EARLY_STOPPED:
            return act.early_stop or "stopped early"
        if condition is TrialCondition.KILLED:
            return "stopped by kubenas run (interrupted); rerun on --resume"
        if condition is TrialCondition.FAILED:
            if code is not None and code < 0:
                try:
                    return f"killed by signal {signal.Signals(-code).name}"
                except ValueError:
                    return f"killed by signal {-code}"
            return f"exited with status {code}; see {act.process.spec.log_path}"
        if condition is TrialCondition.METRICS_UNAVAILABLE:
            text = f"objective metric {self.objective.metric_name!r} was never reported"
            if act.unparsed:
                text += f"; value not a number in: {act.unparsed[0]!r}"
            return text
        return ""

    # --- stopping, persistence, resume -------------------------------------------------------
    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: object) -> None:
            self.stop_signal = signum

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _stop_active(self) -> None:
        stop_all([a.process for a in self.active.values()], STOP_GRACE_S)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.active and time.monotonic() < deadline:
            self._pump(0.05)
        for act in list(self.active.values()):
            self._finish(act)

    def _save(self, row: TrialRow) -> None:
        self.rows[row.name] = row
        self.store.upsert_trial(self.name, row)

    def _reload(self) -> None:
        for row in self.store.list_trials(self.name):
            if row.condition is TrialCondition.RUNNING:
                stop_orphan(row.name, self.store.get_meta(self.name, _PID_KEY + row.name))
            if row.condition in _RERUN:
                self.store.delete(row.name)
                old_log = self.workdir / "trials" / row.name / "stdout.log"
                if old_log.exists():
                    kept = _free_name(old_log.with_name("stdout.interrupted.log"))
                    old_log.replace(kept)
                    for n in (1, 2):  # its rotated parts (see CappedLog) go with it
                        part = old_log.with_name(f"stdout.log.{n}")
                        if part.exists():
                            part.replace(kept.with_name(f"{kept.name}.{n}"))
                row = TrialRow(name=row.name, assignments=row.assignments, labels=row.labels, seed=row.seed,
                               workdir=row.workdir, condition=TrialCondition.CREATED)
                self.store.upsert_trial(self.name, row)
            self.rows[row.name] = row
        pending = len(self._pending())
        self.progress.note(f"resuming {self.name}: {len(self.rows) - pending} finished trials kept, "
                           f"{pending} to run again")

    def _best_row(self, records: list[Any]) -> TrialRow | None:
        best = optimal_trial(self.objective, records)
        return None if best is None else self.rows.get(best.name)

    def _write_results(self, outcome: Outcome | None) -> None:
        rows = list(self.rows.values())
        settings = self.experiment.algorithm_settings()
        provenance_block = provenance({"random_state": self.seed}, settings, self.started_at,
                                      time.time() - self.started_at)
        document = results_document(self.name, self.experiment.algorithm_name, self.objective, outcome, rows,
                                    interrupted=outcome is None, reproducibility=provenance_block)
        # The trials are safe in the store already; a results file that cannot be written (disk
        # full, a directory in its place) is reported, not raised after the whole run.
        try:
            write_results(self.workdir / "results.json", document)
        except OSError as exc:
            self.console.print(f"error: cannot write {self.workdir / 'results.json'}: {exc.strerror or exc}; "
                               f"the trials are kept in {self.workdir / 'kubenas.db'}", soft_wrap=True, markup=False)
        try:
            note = plot_progress(self.workdir / "progress.png", self.objective, rows,
                                 self.progress.objective_curves())
        except OSError as exc:
            note = f"progress.png skipped: {exc.strerror or exc}"
        if note:
            self.progress.note(note)

    def _summary(self, outcome: Outcome) -> None:
        print_summary(self.console, self.name, self.objective, list(self.rows.values()), outcome,
                      self.workdir / "results.json")


def _output_queued(act: _Active) -> bool:
    """Whether output the trial's reader has read is still waiting for the runner."""
    return act.process.waiting_for_room or act.process.posted > act.handled


def _describe(rule: StopRule) -> str:
    """`acc < 0.6 from report 4` (for the objective, its best value so far is compared)."""
    op = {"less": "<", "greater": ">", "equal": "=="}[rule.comparison.value]
    return f"{rule.metric} {op} {rule.value:.6g} from report {max(rule.start_step, 1)}"


def _free_name(path: Path) -> Path:
    """`path`, or `stem.2.suffix`, `stem.3.suffix`, ... if taken: a trial interrupted twice
    keeps the output of both runs."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate
