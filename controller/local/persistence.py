"""The trials of a local run, in memory and in the store, and how a --resume takes them back.

Every change of a trial is written through (`save`), so a run killed at any moment (even by
SIGKILL) leaves a store that `reload` can continue from.
"""

from __future__ import annotations

import json
from pathlib import Path

from controller.local.processes import stop_orphan
from controller.store import ObservationStore, TrialRow
from kubenas.trials import TrialCondition

__all__ = ["TrialLedger"]

_PID_KEY = "trial-pid/"
# Metrics files written by this experiment's trials: the only existing files kubenas removes.
_METRICS_FILE_KEY = "metrics-file/"
# The algorithm settings the suggestion server returned (hyperband's bracket state), as JSON.
_ALGORITHM_SETTINGS_KEY = "algorithm-settings"
# Trials that had not ended when the run stopped: a resume runs them again.
_RERUN = (TrialCondition.CREATED, TrialCondition.RUNNING, TrialCondition.KILLED, TrialCondition.UNKNOWN)


class TrialLedger:
    """The run's trials by name (`rows`), kept equal to the store's; one thread uses it."""

    def __init__(self, store: ObservationStore, experiment: str, workdir: Path) -> None:
        self.store, self.experiment, self.workdir = store, experiment, workdir
        self.rows: dict[str, TrialRow] = {}

    def save(self, row: TrialRow) -> None:
        self.rows[row.name] = row
        self.store.upsert_trial(self.experiment, row)

    def pending(self) -> list[TrialRow]:
        """Trials created and not started yet, in creation order."""
        return [r for r in self.rows.values() if r.condition is TrialCondition.CREATED]

    def trial_dir(self, name: str) -> Path:
        return self.workdir / "trials" / name

    def keep_algorithm_settings(self, settings: dict[str, str]) -> None:
        """What replies returned in `algorithm`, kept so --resume sends them back (Katib keeps
        them in the Suggestion's status)."""
        self.store.put_meta(self.experiment, _ALGORITHM_SETTINGS_KEY, json.dumps(settings))

    def kept_algorithm_settings(self) -> dict[str, str]:
        kept = json.loads(self.store.get_meta(self.experiment, _ALGORITHM_SETTINGS_KEY) or "{}")
        return {str(k): str(v) for k, v in kept.items()} if isinstance(kept, dict) else {}

    def remember_pid(self, trial: str, pid: int) -> None:
        """Remembered so that a --resume after a hard crash of the runner can stop the orphan."""
        self.store.put_meta(self.experiment, _PID_KEY + trial, str(pid))

    def remember_metrics_file(self, path: Path, trial: str) -> None:
        self.store.put_meta(self.experiment, _METRICS_FILE_KEY + str(path), json.dumps(trial))

    def wrote_metrics_file(self, path: Path) -> bool:
        """Whether a trial of this experiment wrote the metrics file at `path` (then it may be removed)."""
        return self.store.get_meta(self.experiment, _METRICS_FILE_KEY + str(path)) is not None

    def reload(self) -> int:
        """Take the stored trials back for a --resume; returns how many are to run again.

        Those that had not ended are created anew under their name (their metrics dropped,
        their output kept as stdout.interrupted.log); a trial process left running by a
        runner that died is stopped first.
        """
        for row in self.store.list_trials(self.experiment):
            if row.condition is TrialCondition.RUNNING:
                stop_orphan(row.name, self.store.get_meta(self.experiment, _PID_KEY + row.name))
            if row.condition in _RERUN:
                self.store.delete(row.name)
                self._keep_interrupted_output(row.name)
                row = TrialRow(name=row.name, assignments=row.assignments, labels=row.labels, seed=row.seed,
                               workdir=row.workdir, condition=TrialCondition.CREATED)
                self.store.upsert_trial(self.experiment, row)
            self.rows[row.name] = row
        return len(self.pending())

    def _keep_interrupted_output(self, trial: str) -> None:
        old_log = self.trial_dir(trial) / "stdout.log"
        if not old_log.exists():
            return
        kept = _free_name(old_log.with_name("stdout.interrupted.log"))
        old_log.replace(kept)
        for n in (1, 2):  # its rotated parts (see CappedLog) go with it
            part = old_log.with_name(f"stdout.log.{n}")
            if part.exists():
                part.replace(kept.with_name(f"{kept.name}.{n}"))


def _free_name(path: Path) -> Path:
    """`path`, or `stem.2.suffix`, `stem.3.suffix`, ... if taken: a trial interrupted twice
    keeps the output of both runs."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate
