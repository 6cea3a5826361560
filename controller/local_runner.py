"""The local experiment loop: ask for suggestions, start trials, collect, decide, repeat.

One thread owns everything here (store, collectors, rows); trial output arrives through
one queue fed by the per-trial reader threads, and signals only set a flag.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import secrets
import signal
import string
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console

from controller.collector import FileCollector, StdoutCollector, observation_from_log
from controller.local import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SUCCEEDED, RunError, TrialPlan
from controller.local_suggestion import EarlyStoppingClient, SuggestionClient, SuggestionServerError
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
    optimal_trial,
    trial_condition,
    trials_to_request,
)
from controller.progress import Progress
from controller.report import (
    plot_progress,
    print_unsqueezed,
    provenance,
    record_of,
    results_document,
    results_table,
    write_results,
)
from controller.store import MetricLog, ObservationStore, TrialRow
from controller.template import TemplateError, meta_values, substitute, trial_parameter_values
from kubenas.early_stopping import StopRule, StopWatch
from kubenas.metrics import MetricPoint, now_rfc3339
from kubenas.proto_convert import trial_to_proto
from kubenas.trials import TrialCondition

__all__ = ["STOP_GRACE_S", "LocalRunner"]

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0
_TICK_S = 0.2
# After a trial's main process exits, how long its output may stay open (a leftover child).
_EOF_GRACE_S = 2.0
_PID_KEY = "trial-pid/"
_RERUN = (TrialCondition.CREATED, TrialCondition.RUNNING, TrialCondition.KILLED, TrialCondition.UNKNOWN)


@dataclass
class _Active:
    process: TrialProcess
    row: TrialRow
    stdout: StdoutCollector | None
    file: FileCollector | None
    gpu: str | None
    exited_at: float | None = None
    eof: bool = False
    unparsed: list[str] = field(default_factory=list)
    watch: StopWatch | None = None        # the early-stopping rules applied to its metrics
    early_stop: str | None = None         # why it was stopped early (set once, when it is)
    kill_at: float | None = None          # SIGKILL deadline after the early-stop SIGTERM
    pushed: int = 0                       # Push collector: store logs already fed to `watch`


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
        self.seed = _seed(experiment)
        self.rows: dict[str, TrialRow] = {}
        self.active: dict[str, _Active] = {}
        self.events: queue.Queue[TrialEvent] = queue.Queue()
        self.exhausted = False
        self.stop_signal: int | None = None
        self.base_env = trial_environment()
        self.metric_names = self.objective.metric_names
        self._mentions = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in self.metric_names) + r")\s*=")
        self.progress = Progress(console, self.name, self.objective, self.max_trials)

    # --- the loop ---------------------------------------------------------------------------
    def run(self, resume: bool) -> int:
        self.started_at = time.time()  # results.json's wall clock (reproducibility block)
        if resume:
            self._reload()
        restore = self._install_signal_handlers()
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
            records = [record_of(r) for r in self.rows.values()]
            outcome = experiment_outcome(self.objective, self.max_trials, self.max_failed, records, self.exhausted)
            self.progress.status(count_trials(records), self._best_row(records))
            if outcome is not None:
                return outcome
            self._refresh_rules(records)
            self._request_more(records)
            self._start_pending()
            if not self.active and not self._pending():
                continue  # nothing left to wait for: the next round decides the outcome
            self._pump(_TICK_S)
        return None

    def _pending(self) -> list[TrialRow]:
        return [r for r in self.rows.values() if r.condition is TrialCondition.CREATED]

    def _request_more(self, records: list[Any]) -> None:
        if self.exhausted:
            return
        counts = count_trials(records)
        current, total = trials_to_request(self.parallel, self.max_trials, counts.completed, counts.active)
        if current <= 0:
            return
        history = [trial_to_proto(r, self.objective) for r in records]
        try:
            reply = self._suggest(history, current, total)
        except SuggestionServerError as exc:
            raise RunError(f"GetSuggestions failed ({exc.code.name if exc.code else 'error'}): {exc}",
                           f"the trials so far are kept; see {self.workdir / 'suggestion-server.log'}, then resume "
                           f"with: kubenas run {self.file} --workdir {self.workdir} --resume") from None
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

    def _suggest(self, history: list[Any], current: int, total: int) -> Any:
        try:
            return self.client.suggest(self.proto, history, current, total)
        except SuggestionServerError as exc:
            if exc.code is not grpc.StatusCode.UNAVAILABLE or self.restart_suggestion is None:
                raise
            # The server process died (OOM killer, a crash): its state is on disk
            # (suggestion-state), so a new one continues where it stopped. Once per run.
            restart, self.restart_suggestion = self.restart_suggestion, None
            log.warning("the suggestion server is unavailable (%s); starting a new one", exc)
            self.progress.note("suggestion server lost; restarted it")
            self.client = restart()
            return self.client.suggest(self.proto, history, current, total)

    def _new_name(self) -> str:
        # Seeded algorithms derive their draws from the history's trial names, so a seeded
        # experiment gets the same names on a rerun (and with them the same suggestions).
        pick: Any = secrets if self.seed is None else random.Random(f"{self.name}:{self.seed}:{len(self.rows)}")
        while True:
            name = f"{self.name}-{''.join(pick.choice(string.ascii_lowercase) for _ in range(8))}"
            if name not in self.rows:
                return name

    # --- starting ---------------------------------------------------------------------------
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
            path = Path(self.cwd, metrics_file)
            if path.exists() and not path.is_file():
                # Never unlink (or endlessly read) /dev/null, /dev/zero, a FIFO or a directory.
                raise RunError(f"spec.metricsCollectorSpec.source.fileSystemPath.path: {metrics_file!r} — {path} "
                               f"exists and is not a regular file; name a file the trial writes, "
                               f"e.g. metrics/${{trialSpec.Name}}.log")
            if path.exists():
                log.info("removing a stale metrics file %s before trial %s", path, row.name)
                path.unlink()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunError(f"spec.metricsCollectorSpec.source.fileSystemPath.path: {metrics_file!r} — cannot "
                               f"create its directory here ({exc.strerror}); use a path this user can write, "
                               f"e.g. metrics/${{trialSpec.Name}}.log") from None
            file_collector = FileCollector(path, self.metric_names, plan.metrics_format or None, plan.file_format)
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
                                        watch=StopWatch(self.rules, self.objective) if self.rules else None)
        self._save(running)
        self.progress.started(running, gpu)

    # --- collecting -------------------------------------------------------------------------
    def _pump(self, timeout: float) -> None:
        batch: list[TrialEvent] = []
        try:
            batch.append(self.events.get(timeout=timeout))
            while len(batch) < 10_000:
                batch.append(self.events.get_nowait())
        except queue.Empty:
            pass
        points: dict[str, list[MetricPoint]] = defaultdict(list)
        for event in batch:
            act = self.active.get(event.trial)
            if act is None:
                continue
            if event.line is None:
                act.eof = True
            elif act.stdout is not None:
                found = act.stdout.feed(event.line)
                points[event.trial].extend(found)
                mention = self._mentions.search(event.line) if not found and len(act.unparsed) < 3 else None
                if mention:
                    start = event.line.rfind("\n", 0, mention.start()) + 1
                    act.unparsed.append(event.line[start:].split("\n", 1)[0].strip()[:120])
        for name, act in self.active.items():
            if act.file is not None:
                points[name].extend(act.file.poll())
        if self.plan.collector == "Push" and self.rules:
            self._watch_pushed()
        for name, found in points.items():
            self._report(name, found)
        now = time.monotonic()
        for name, act in list(self.active.items()):
            if act.exited_at is None and act.process.returncode() is not None:
                act.exited_at = now
            if act.exited_at is not None and (act.eof or now - act.exited_at > _EOF_GRACE_S):
                self._finish(act)
            elif act.kill_at is not None and now > act.kill_at:
                log.info("trial %s did not stop within %.1fs of SIGTERM; sending SIGKILL", name, STOP_GRACE_S)
                act.process.signal_group(signal.SIGKILL)
                act.kill_at = None

    def _report(self, name: str, found: list[MetricPoint]) -> None:
        if not found:
            return
        self.store.report(name, [MetricLog(p.name, p.stored_value(), p.timestamp) for p in found])
        self.progress.metrics(name, {p.name: p.value for p in found})
        act = self.active.get(name)
        if act is not None and act.watch is not None and act.early_stop is None:
            stop = act.watch.feed_all((p.name, p.value) for p in found)
            if stop:
                self._stop_early(act)

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
        act.kill_at = time.monotonic() + STOP_GRACE_S
        act.process.signal_group(signal.SIGTERM)
        log.info("trial %s %s", act.row.name, act.early_stop)

    def _finish(self, act: _Active) -> None:
        process, row = act.process, act.row
        code = process.wait()
        process.signal_group(signal.SIGKILL)  # leftovers in the trial's group end with it, as in a pod
        if not process.join_output(1.0):
            stop_escaped(row.name)  # something outside the group still holds the output open
            process.join_output(1.0)
        self._drain_output(act)
        tail: list[MetricPoint] = []
        if act.stdout is not None:
            tail += act.stdout.close()
        if act.file is not None:
            tail += act.file.close()
        self._report(row.name, tail)
        observation = observation_from_log(self.objective, self.store.get(row.name),
                                           keep_text=bool(self.plan.metrics_format))
        if act.early_stop is not None:
            condition = TrialCondition.EARLY_STOPPED  # the rule's verdict stands, however the process ended
        elif self.plan.collector == "None" and code == 0 and not process.stop_requested:
            condition = TrialCondition.SUCCEEDED  # nothing is collected, so a clean exit is success
        else:
            condition = trial_condition(code, observation, self.objective, killed=process.stop_requested)
        ended = process.ended or time.time()
        done = replace(row, condition=condition, completion_time=now_rfc3339(), observation=observation,
                       exit_code=code, duration_s=round(ended - process.started, 3),
                       message=self._message(condition, code, act))
        self.gpus.release(row.name)
        del self.active[row.name]
        self._save(done)
        self.progress.finished(done)
        self._rules_stale = self.early_stopping is not None

    def _drain_output(self, act: _Active) -> None:
        """Lines of this trial still queued (read before EOF) go to its collector, not lost."""
        keep: list[TrialEvent] = []
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event.trial == act.row.name:
                if event.line is not None and act.stdout is not None:
                    self._report(event.trial, act.stdout.feed(event.line))
            else:
                keep.append(event)
        for event in keep:
            self.events.put(event)

    def _message(self, condition: TrialCondition, code: int | None, act: _Active) -> str:
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
                    old_log.replace(_free_name(old_log.with_name("stdout.interrupted.log")))
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
            note = plot_progress(self.workdir / "progress.png", self.objective, rows)
        except OSError as exc:
            note = f"progress.png skipped: {exc.strerror or exc}"
        if note:
            self.progress.note(note)

    def _summary(self, outcome: Outcome) -> None:
        rows = list(self.rows.values())
        best = self._best_row([record_of(r) for r in rows])
        print_unsqueezed(self.console, results_table(self.objective, rows, best.name if best else None))
        status = "Succeeded" if outcome.succeeded else "Failed"
        self.console.print(f"experiment {self.name} {status} ({outcome.reason.value}): {outcome.message}",
                           soft_wrap=True, markup=False)
        if best is not None:
            value = best.observation.get(self.objective.metric_name)
            self.console.print(f"best trial {best.name}: {self.objective.metric_name}={value!r}", markup=False)
            for key, val in best.assignments.items():
                self.console.print(f"  {key} = {val}", soft_wrap=True, markup=False)
        else:
            self.console.print("no trial reported the objective metric", markup=False)
        self.console.print(f"results: {self.workdir / 'results.json'}", soft_wrap=True, markup=False)


def _describe(rule: StopRule) -> str:
    """`acc < 0.6 from report 4` (for the objective, its best value so far is compared)."""
    op = {"less": "<", "greater": ">", "equal": "=="}[rule.comparison.value]
    return f"{rule.metric} {op} {rule.value:.6g} from report {max(rule.start_step, 1)}"


def _seed(experiment: Any) -> int | None:
    """The experiment's `random_state` setting, recorded with every trial (None if absent)."""
    raw = experiment.algorithm_settings().get("random_state")
    try:
        return None if raw in (None, "") else int(raw)
    except ValueError:
        return None  # the server's validation reports a malformed value


def _free_name(path: Path) -> Path:
    """`path`, or `stem.2.suffix`, `stem.3.suffix`, ... if taken: a trial interrupted twice
    keeps the output of both runs."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate
