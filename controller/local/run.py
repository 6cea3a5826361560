"""`kubenas run`: an experiment on this machine, end to end.

The suggestion server runs as a real gRPC server on localhost (the same program as the
cluster's pod), observations and trials go to SQLite in the work directory, and trials are
local processes built from the trialTemplate's primary container. The experiment logic is
`controller.logic`, shared with the Kubernetes controller. See docs/local-runs.md.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from rich.console import Console

from controller.grpc_clients import EarlyStoppingClient, SuggestionClient, SuggestionServerError
from controller.local.errors import EXIT_INTERRUPTED, RunError
from controller.local.interrupts import SignalFlag
from controller.local.plan import plan_trials
from controller.local.processes import GpuPool, detect_gpus
from controller.local.setup import RunServices, RunSetup
from controller.local.suggestion_server import SuggestionServerProcess
from controller.local.workdir import (
    DB_FILE,
    SUGGESTION_STATE_DIR,
    lock_workdir,
    prepare_workdir,
    write_marker,
)

if TYPE_CHECKING:
    from controller.local.runner import LocalRunner
    from controller.store import ObservationStore

__all__ = ["run_experiment"]


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
    workdir = _make_workdir(Path(workdir) if workdir is not None else Path("runs") / experiment.name)
    # Ctrl-C during start-up is acted on at safe points (early.check); the runner installs
    # its own handlers once trials can start.
    early = SignalFlag().install()
    try:
        with ExitStack() as stack:
            stack.callback(early.restore)
            stack.enter_context(lock_workdir(workdir))
            prepare_workdir(workdir, resume, experiment.name)
            write_marker(workdir, experiment.name, Path(file))
            setup = RunSetup(experiment=experiment, plan=plan, proto=experiment.to_proto(), workdir=workdir,
                             file=Path(file), cwd=os.getcwd(), parallel=parallel or experiment.parallel_trial_count)
            runner = _start_runner(stack, setup, console, early)
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


def _start_runner(stack: ExitStack, setup: RunSetup, console: Console, early: SignalFlag) -> LocalRunner:
    """Start the services the run talks to (stopped with `stack`), check the experiment with
    them, and build the runner; `early.check()` raises at the safe points between."""
    experiment, plan, workdir, proto = setup.experiment, setup.plan, setup.workdir, setup.proto
    server = SuggestionServerProcess(experiment.algorithm_name, workdir / SUGGESTION_STATE_DIR,
                                     workdir / "suggestion-server.log")
    server.start()  # it boots while we import the runner; wait_ready below
    stack.callback(server.stop)
    from controller.local.runner import LocalRunner

    early.check()
    address = _wait_ready(server, experiment)
    early.check()
    client = SuggestionClient(address)
    stack.callback(client.close)
    _validate_algorithm(client, proto)
    store = _open_store(workdir)
    stack.callback(store.close)
    early_stopping = experiment.spec.early_stopping is not None
    db_address = None
    if plan.collector == "Push" or early_stopping:
        db_address = _start_dbmanager(stack, store)
    stopper = None
    if early_stopping and db_address is not None:
        stopper = EarlyStoppingClient(address, db_address)
        stack.callback(lambda: stopper.close() if stopper is not None else None)
        _validate_early_stopping(stopper, proto)

    def restart_suggestion() -> SuggestionClient:
        server.stop()
        server.start()
        fresh = SuggestionClient(server.wait_ready())
        stack.callback(fresh.close)
        if stopper is not None:  # the same process serves early stopping
            again = EarlyStoppingClient(server.address, stopper.db_address)
            stack.callback(again.close)
            runner.early_stopping.client = again
        return fresh

    services = RunServices(
        suggestion=client, restart_suggestion=restart_suggestion, early_stopping=stopper,
        db_address=db_address if plan.collector == "Push" else None,
        on_loop_end=server.terminate,  # no more suggestions needed: let it shut down meanwhile
    )
    runner = LocalRunner(setup, services, store, GpuPool(detect_gpus()), console)
    return runner


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


def _make_workdir(workdir: Path) -> Path:
    if workdir.exists() and not workdir.is_dir():
        raise RunError(f"--workdir: {str(workdir)!r} — exists and is not a directory")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"--workdir: {str(workdir)!r} — cannot create it: {exc.strerror or exc}") from None
    return workdir


def _wait_ready(server: SuggestionServerProcess, experiment: Any) -> str:
    try:
        return server.wait_ready()
    except SuggestionServerError as exc:
        raise RunError(f"spec.algorithm.algorithmName: {experiment.algorithm_name!r} — {exc}") from None


def _validate_algorithm(client: SuggestionClient, proto: Any) -> None:
    try:
        client.validate(proto)
    except SuggestionServerError as exc:
        where = "spec.algorithm.algorithmSettings" if exc.code is grpc.StatusCode.INVALID_ARGUMENT else "spec.algorithm"
        raise RunError(f"{where}: {exc}") from None


def _open_store(workdir: Path) -> ObservationStore:
    from controller.store import StoreError, open_store

    try:
        return open_store(str(workdir / DB_FILE))
    except StoreError as exc:
        raise RunError(f"--workdir: {exc}") from None


def _start_dbmanager(stack: ExitStack, store: ObservationStore) -> str:
    """A DBManager on our store, stopped with `stack`; returns its address. Push trials report
    to it with ReportObservationLog, as in the cluster; the early-stopping service reads the
    finished trials' logs from it."""
    from controller.dbmanager import make_dbmanager_server

    db_server, port = make_dbmanager_server(store, "127.0.0.1", 0)
    stack.callback(lambda: db_server.stop(1.0).wait())
    return f"127.0.0.1:{port}"


def _validate_early_stopping(stopper: EarlyStoppingClient, proto: Any) -> None:
    try:
        stopper.validate(proto.spec.early_stopping)
    except SuggestionServerError as exc:
        text = str(exc)
        name_field = "early_stopping.algorithm_name: "
        where = ("spec.earlyStopping.algorithmName: " + text[len(name_field):]
                 if text.startswith(name_field) else f"spec.earlyStopping.algorithmSettings: {text}")
        raise RunError(where) from None
