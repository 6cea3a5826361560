"""`kubenas run`: an experiment on this machine, end to end.

The suggestion server runs as a real gRPC server on localhost (the same program as the
cluster's pod), observations and trials go to SQLite in the work directory, and trials are
local processes built from the trialTemplate's primary container. The experiment logic is
`controller.logic`, shared with the Kubernetes controller. See README.md.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc
from rich.console import Console

from controller.grpc_clients import EarlyStoppingClient, SuggestionClient, SuggestionServerError
from controller.local.processes import GpuPool, detect_gpus
from controller.local.suggestion_server import LocalSuggestionServer
from controller.template import placeholders
from kubenas.printable import printable

__all__ = ["EXIT_INTERRUPTED", "RunError", "TrialPlan", "plan_trials", "run_experiment"]

log = logging.getLogger(__name__)

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
DB_FILE = "kubenas.db"
LOCK_FILE = ".kubenas-run.lock"
LOCAL_COLLECTORS = ("StdOut", "File", "Push", "None")
# Files of the work directory (README.md); found as directories they would fail the run at its end.
_WORKDIR_FILES = ("results.json", "progress.png", "experiment.json", "suggestion-server.log", LOCK_FILE)
_WORKDIR_DIRS = ("trials", "suggestion-state")
# Kubernetes' rule for env names (C_IDENTIFIER relaxed with '-' and '.'); '=' or NUL would
# otherwise reach the process environment and fail every trial at start.
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class RunError(Exception):
    """Bad input to `kubenas run`; each line names the field or flag, the value and what is allowed."""

    def __init__(self, *lines: str) -> None:
        # values quoted from the experiment or a trial may hold terminal control sequences
        self._lines = [printable(line) for line in lines if line]
        super().__init__("\n".join(self._lines))

    def lines(self) -> list[str]:
        return list(self._lines)


@dataclass(frozen=True)
class TrialPlan:
    """How every trial of the experiment is started, derived once from the trialTemplate."""

    container: Mapping[str, Any]      # the primary container, placeholders still in it
    env: Mapping[str, str]            # the container's env (values, not yet substituted)
    kind: str
    api_version: str
    namespace: str
    collector: str                    # StdOut | File | Push | None
    metrics_format: tuple[str, ...]
    file_path: str                    # File collector: path (may hold placeholders)
    file_format: str                  # TEXT | JSON


def _containers(trial_spec: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """(field path, containers) of a Job-like spec: spec.template.spec.containers."""
    pod = ((trial_spec.get("spec") or {}).get("template") or {}).get("spec") or {}
    return "spec.trialTemplate.trialSpec.spec.template.spec.containers", list(pod.get("containers") or [])


def plan_trials(experiment: Any) -> TrialPlan:
    """Check the parts of the trialTemplate a local run needs; raise RunError naming each problem."""
    template = experiment.spec.trial_template
    if template is None or template.trial_spec is None:
        raise RunError("spec.trialTemplate.trialSpec: missing — kubenas run needs an inline trialSpec "
                       "(a trialTemplate from a ConfigMap is read only in the cluster)")
    where, containers = _containers(template.trial_spec)
    primary = template.primary_container_name
    matches = [c for c in containers if isinstance(c, dict) and c.get("name") == primary]
    if not matches:
        names = [c.get("name") for c in containers if isinstance(c, dict)]
        raise RunError(f"spec.trialTemplate.primaryContainerName: {primary!r} — no container of that name "
                       f"in {where} (found: {', '.join(map(str, names)) or 'none'})")
    index = containers.index(matches[0])
    container = matches[0]
    problems = []
    command = container.get("command")
    if not command:
        problems.append(f"{where}[{index}].command: missing — kubenas run starts the command and args "
                        f"itself (an image's entrypoint is not known locally)")
    for key in ("command", "args"):
        value = container.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)):
            problems.append(f"{where}[{index}].{key}: {value!r} — must be a list of strings")
    env: dict[str, str] = {}
    for i, item in enumerate(container.get("env") or []):
        name = item.get("name") if isinstance(item, dict) else None
        if not name:
            problems.append(f"{where}[{index}].env[{i}].name: {item!r} — every env entry needs a name")
        elif not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            problems.append(f"{where}[{index}].env[{i}].name: {name!r} — must be letters, digits, '_', '-' or '.', "
                            f"not starting with a digit (what Kubernetes and a process environment accept)")
        elif "valueFrom" in item:
            problems.append(f"{where}[{index}].env[{i}].valueFrom: {item['valueFrom']!r} — not supported by "
                            f"kubenas run (no Kubernetes API here); give a literal value")
        else:
            env[str(name)] = "" if item.get("value") is None else str(item.get("value"))
    mc = experiment.spec.metrics_collector_spec
    kind = mc.collector.kind.value
    if kind not in LOCAL_COLLECTORS:
        problems.append(f"spec.metricsCollectorSpec.collector.kind: {kind!r} — kubenas run supports "
                        f"{', '.join(LOCAL_COLLECTORS)}")
    file_path, file_format = "", "TEXT"
    fsp = mc.source.file_system_path if mc.source is not None else None
    if kind == "File" and fsp is not None:
        file_path = fsp.path
        file_format = fsp.format.value if fsp.format is not None else "TEXT"
    defined = {p.name for p in template.trial_parameters}
    for text in sorted(placeholders({"c": container, "p": file_path})):
        name = text[len("${trialParameters."):-1] if text.startswith("${trialParameters.") else None
        if name is not None and name not in defined:
            problems.append(f"spec.trialTemplate: {text!r} — not in trialParameters "
                            f"({', '.join(sorted(defined)) or 'none defined'})")
    if problems:
        raise RunError(*problems)
    metadata = template.trial_spec.get("metadata") or {}
    namespace = getattr(experiment, "namespace", None) or metadata.get("namespace") or "default"
    return TrialPlan(
        container=container,
        env=env,
        kind=str(template.trial_spec.get("kind") or "Job"),
        api_version=str(template.trial_spec.get("apiVersion") or "batch/v1"),
        namespace=str(namespace),
        collector=kind,
        metrics_format=tuple(mc.metrics_format),
        file_path=file_path,
        file_format=file_format,
    )


def _load(file: Path) -> Any:
    from kubenas.experiment import SpecError, load_experiment_file

    if Path(file).is_dir():
        raise RunError(f"FILE: {str(file)!r} — is a directory; give the path of an Experiment YAML")
    if not Path(file).exists():
        raise RunError(f"FILE: {str(file)!r} — no such file; give the path of an Experiment YAML")
    try:
        return load_experiment_file(file)
    except SpecError as exc:
        raise RunError(*(f"{file}: {line}" for line in exc.lines())) from None


def _lock(workdir: Path) -> IO[str]:
    try:
        handle = open(workdir / LOCK_FILE, "a+")
    except OSError as exc:
        raise RunError(f"--workdir: {str(workdir / LOCK_FILE)!r} — cannot be opened as the run's lock file: "
                       f"{exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(f"--workdir: {str(workdir)!r} — another kubenas run is using it; wait for it "
                       f"or pass another --workdir") from None
    return handle


def _prepare_workdir(workdir: Path, resume: bool, experiment_name: str) -> None:
    db = workdir / DB_FILE
    if resume and not db.exists():
        raise RunError(f"--resume: nothing to resume in {str(workdir)!r} (no {DB_FILE}); "
                       f"run without --resume to start, or pass the --workdir of the interrupted run")
    if not resume and db.exists():
        raise RunError(f"--workdir: {str(workdir)!r} — holds a previous run ({DB_FILE}); pass --resume to "
                       f"continue it, or another --workdir to start afresh")
    workdir.mkdir(parents=True, exist_ok=True)
    for name in _WORKDIR_FILES:
        if (workdir / name).is_dir():
            raise RunError(f"--workdir: {str(workdir / name)!r} — is a directory; kubenas run writes a file there "
                           f"(remove it or choose another --workdir)")
    for name in _WORKDIR_DIRS:
        if (workdir / name).exists() and not (workdir / name).is_dir():
            raise RunError(f"--workdir: {str(workdir / name)!r} — is not a directory; kubenas run keeps a directory "
                           f"there (remove it or choose another --workdir)")
    marker = workdir / "experiment.json"
    if resume and marker.exists():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8")).get("experiment")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            # The store is the truth; the marker only guards against resuming another experiment.
            log.warning("%s is unreadable; it is rewritten (the trials come from %s)", marker, DB_FILE)
            previous = experiment_name
        if previous != experiment_name:
            raise RunError(f"--resume: {str(workdir)!r} holds experiment {previous!r}, not {experiment_name!r}; "
                           f"pass the --workdir of this experiment")


class _EarlyInterrupt:
    """Ctrl-C (or SIGTERM) during start-up is only recorded, and `check()` acts on it at safe
    points: a KeyboardInterrupt raised from a signal handler can land inside gRPC waits,
    subprocess start-up or a lock held by logging, where it is swallowed or leaves the lock
    taken. The runner installs its own handlers once trials can start."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum: int, _frame: object) -> None:
        self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt

    def restore(self) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}


def run_experiment(
    file: Path,
    workdir: Path | None = None,
    parallel: int | None = None,
    resume: bool = False,
    console: Console | None = None,
) -> int:
    """Run (or `resume`) the experiment in `file` with trials as local processes.

    Returns the exit code: 0 Succeeded, 1 Failed (maxFailedTrialCount reached), 130
    interrupted (SIGINT/SIGTERM; resumable). Raises RunError for bad input, before any
    trial starts where possible.
    """
    console = console or Console(highlight=False)
    experiment = _load(Path(file))
    plan = plan_trials(experiment)
    if parallel is not None and parallel < 1:
        raise RunError(f"--parallel: {parallel!r} — must be >= 1")
    workdir = Path(workdir) if workdir is not None else Path("runs") / experiment.name
    if workdir.exists() and not workdir.is_dir():
        raise RunError(f"--workdir: {str(workdir)!r} — exists and is not a directory")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"--workdir: {str(workdir)!r} — cannot create it: {exc.strerror or exc}") from None
    early = _EarlyInterrupt()
    try:
        with ExitStack() as stack:
            stack.callback(early.restore)
            stack.enter_context(_lock(workdir))
            _prepare_workdir(workdir, resume, experiment.name)
            marker = workdir / "experiment.json"
            marker.with_name(marker.name + ".tmp").write_text(json.dumps(
                {"experiment": experiment.name, "file": str(Path(file).resolve()), "pid": os.getpid()}) + "\n")
            os.replace(marker.with_name(marker.name + ".tmp"), marker)  # never half-written
            server = LocalSuggestionServer(experiment.algorithm_name, workdir / "suggestion-state",
                                           workdir / "suggestion-server.log")
            server.start()  # it boots while we import the runner; wait_ready below
            stack.callback(server.stop)
            from controller.local.runner import LocalRunner
            from controller.store import StoreError, open_store

            early.check()
            try:
                address = server.wait_ready()
            except SuggestionServerError as exc:
                raise RunError(f"spec.algorithm.algorithmName: {experiment.algorithm_name!r} — {exc}") from None
            early.check()
            client = SuggestionClient(address)
            stack.callback(client.close)
            proto = experiment.to_proto()
            try:
                client.validate(proto)
            except SuggestionServerError as exc:
                where = "spec.algorithm.algorithmSettings" if exc.code is grpc.StatusCode.INVALID_ARGUMENT else "spec.algorithm"
                raise RunError(f"{where}: {exc}") from None
            try:
                store = open_store(str(workdir / DB_FILE))
            except StoreError as exc:
                raise RunError(f"--workdir: {exc}") from None
            stack.callback(store.close)
            db_address = None
            early_stopping = experiment.spec.early_stopping is not None
            if plan.collector == "Push" or early_stopping:
                # Push trials report with ReportObservationLog, as in the cluster, to a DBManager on our
                # store; the early-stopping service reads the finished trials' logs from it.
                from controller.dbmanager import make_dbmanager_server

                db_server, port = make_dbmanager_server(store, "127.0.0.1", 0)
                stack.callback(lambda: db_server.stop(1.0).wait())
                db_address = f"127.0.0.1:{port}"
            stopper = None
            if early_stopping and db_address is not None:
                stopper = EarlyStoppingClient(address, db_address)
                stack.callback(lambda: stopper.close() if stopper is not None else None)
                try:
                    stopper.validate(proto.spec.early_stopping)
                except SuggestionServerError as exc:
                    text = str(exc)
                    name_field = "early_stopping.algorithm_name: "
                    where = ("spec.earlyStopping.algorithmName: " + text[len(name_field):]
                             if text.startswith(name_field) else f"spec.earlyStopping.algorithmSettings: {text}")
                    raise RunError(where) from None
            gpus = GpuPool(detect_gpus())
            def restart_suggestion() -> SuggestionClient:
                server.stop()
                server.start()
                fresh = SuggestionClient(server.wait_ready())
                stack.callback(fresh.close)
                if stopper is not None:  # the same process serves early stopping
                    runner.early_stopping = EarlyStoppingClient(server.address, stopper.db_address)
                    stack.callback(runner.early_stopping.close)
                return fresh

            runner = LocalRunner(
                experiment=experiment, plan=plan, proto=proto, client=client, store=store, workdir=workdir,
                parallel=parallel or experiment.parallel_trial_count, gpus=gpus, console=console,
                cwd=os.getcwd(), file=Path(file), db_address=db_address if plan.collector == "Push" else None,
                early_stopping=stopper,
                on_loop_end=server.terminate,  # no more suggestions needed: let it shut down meanwhile
                restart_suggestion=restart_suggestion,
            )
            early.check()
            return runner.run(resume=resume)
    except KeyboardInterrupt:
        # Ctrl-C before the runner took over signals (it handles them itself once trials run).
        if (workdir / DB_FILE).exists():
            console.print(f"interrupted during start-up; resume with: kubenas run {file} --workdir {workdir} --resume",
                          soft_wrap=True, markup=False)
        else:
            console.print("interrupted during start-up; no trial ran", markup=False)
        return EXIT_INTERRUPTED
    raise AssertionError("unreachable")

