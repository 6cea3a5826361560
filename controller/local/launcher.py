"""Process launching in a local run: a Created trial becomes a started process (or a Failed
trial when its command cannot start), from the trial plan and the trial's assignments."""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from controller.local.errors import RunError
from controller.local.persistence import TrialLedger
from controller.local.plan import TrialPlan
from controller.local.processes import GpuPool, LaunchError, LaunchSpec, TrialEvent, TrialProcess
from controller.local.workdir import SUGGESTION_STATE_DIR
from controller.store import TrialRow
from controller.template import (
    TemplateError,
    meta_values,
    remap_path,
    substitute,
    trial_parameter_values,
)
from kubenas import trial_dirs
from kubenas.metrics import metrics_path_problem, now_rfc3339
from kubenas.trials import TrialCondition

__all__ = ["Launch", "StartProcess", "TrialLauncher"]

log = logging.getLogger(__name__)

_FILE_PATH_FIELD = "spec.metricsCollectorSpec.source.fileSystemPath.path"

#: Starts a trial's process: TrialProcess.start, or a test's fake child process.
StartProcess = Callable[[str, LaunchSpec, "queue.Queue[TrialEvent]"], TrialProcess]


@dataclass(frozen=True)
class Launch:
    """A launched trial: Running with its process, or Failed (no process) if it could not start."""

    row: TrialRow
    gpu: str | None
    process: TrialProcess | None = None
    metrics_file: Path | None = None     # File collector: where its metrics appear


class TrialLauncher:
    """Starts trials as the plan says: command and env substituted, one GPU each, the metrics
    file made ready. Raises RunError for what no trial of the run could get past."""

    def __init__(self, experiment: Any, plan: TrialPlan, ledger: TrialLedger, gpus: GpuPool,
                 events: queue.Queue[TrialEvent], *, cwd: str, base_env: Mapping[str, str],
                 db_address: str | None = None, start: StartProcess = TrialProcess.start) -> None:
        self.experiment, self.plan, self.ledger, self.gpus, self.events = experiment, plan, ledger, gpus, events
        # db_address: Push trials report to this DBManager (KATIB_DB_MANAGER_ADDRESS)
        self.cwd, self.base_env, self.db_address, self.start = cwd, dict(base_env), db_address, start

    def can_start(self) -> bool:
        """Whether a GPU is free for one more trial (always, without GPUs)."""
        free = self.gpus.available()
        return free is None or free > 0

    def launch(self, row: TrialRow) -> Launch:
        """Start the Created trial `row` (check `can_start` first)."""
        argv, env_values, metrics_file = self._substituted(row)
        env = {**self.base_env, **env_values, "KATIB_TRIAL_NAME": row.name}
        gpu = self.gpus.acquire(row.name)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        if self.db_address is not None:
            env["KATIB_DB_MANAGER_ADDRESS"] = self.db_address
        spec = LaunchSpec(argv=argv, env=env, cwd=self.cwd, log_path=self.ledger.trial_dir(row.name) / "stdout.log")
        path = self._metrics_file(metrics_file, row.name) if self.plan.collector == "File" and metrics_file else None
        started = now_rfc3339()
        try:
            process = self.start(row.name, spec, self.events)
        except LaunchError as exc:
            self.gpus.release(row.name)
            return Launch(replace(row, condition=TrialCondition.FAILED, start_time=started, completion_time=started,
                                  message=str(exc), duration_s=0.0), gpu)
        self.ledger.remember_pid(row.name, process.pid)
        return Launch(replace(row, condition=TrialCondition.RUNNING, start_time=started), gpu, process, path)

    def _substituted(self, row: TrialRow) -> tuple[tuple[str, ...], dict[str, str], str]:
        """(argv, env, metrics file path) of the trial: the plan's placeholders filled in."""
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
        mount = trial_dirs.mount_path(self.experiment.algorithm_settings())
        if mount is not None:  # suggestion_trial_dir: the trial's directory, as a pod sees it mounted
            local = trial_dirs.trial_dir((self.ledger.workdir / SUGGESTION_STATE_DIR).resolve(),
                                         self.ledger.experiment, row.name)
            local.mkdir(parents=True, exist_ok=True)
            container, env_values = remap_path(container, mount, str(local)), remap_path(env_values, mount, str(local))
        argv = tuple(str(v) for v in [*(container.get("command") or []), *(container.get("args") or [])])
        return argv, env_values, metrics_file

    def _metrics_file(self, named: str, trial: str) -> Path:
        """The trial's metrics file, checked, without an old file in its place, its directory made."""
        problem = metrics_path_problem(named)
        if problem is not None:  # a parameter value can bring the `..` in
            raise RunError(f"{_FILE_PATH_FIELD}: {named[:200]!r} (trial {trial}) — {problem}; "
                           f"name a file below the metrics directory, e.g. metrics/${{trialSpec.Name}}.log")
        path = Path(self.cwd, named)
        self._clear_metrics_file(path, named, trial)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"{_FILE_PATH_FIELD}: {named!r} — cannot "
                           f"create its directory here ({exc.strerror}); use a path this user can write, "
                           f"e.g. metrics/${{trialSpec.Name}}.log") from None
        self.ledger.remember_metrics_file(path, trial)
        return path

    def _clear_metrics_file(self, path: Path, named: str, trial: str) -> None:
        """Make sure the trial starts without an old metrics file at `path`. Only a file an
        earlier trial of this experiment wrote there is removed; anything else is the user's,
        and the run stops rather than delete or read it."""
        if not os.path.lexists(path):
            return
        ours = self.ledger.wrote_metrics_file(path)
        if not ours or not (path.is_symlink() or path.is_file()):
            # Never unlink (or read) a file the user has there, /dev/null, a FIFO or a directory.
            what = "exists and is not a regular file" if not (path.is_symlink() or path.is_file()) \
                else "exists and was not written by a trial of this experiment"
            raise RunError(f"{_FILE_PATH_FIELD}: {named[:200]!r} (trial {trial}) — {path} {what}; kubenas never "
                           f"removes it; name a file per trial that does not exist yet, e.g. "
                           f"metrics/${{trialSpec.Name}}.log")
        log.info("removing the metrics file %s an earlier trial wrote, before trial %s", path, trial)
        path.unlink()
