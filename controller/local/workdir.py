"""The work directory of a local run: its lock, its checks before a run or a --resume, its marker."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import IO

from controller.local.errors import RunError

__all__ = ["DB_FILE", "LOCK_FILE", "lock_workdir", "prepare_workdir", "write_marker"]

log = logging.getLogger(__name__)

DB_FILE = "kubenas.db"
LOCK_FILE = ".kubenas-run.lock"
# Files of the work directory (docs/local-runs.md); found as directories they would fail the run at its end.
_WORKDIR_FILES = ("results.json", "progress.png", "experiment.json", "suggestion-server.log", LOCK_FILE)
#: The suggestion server's state directory in the work directory (pbt's trial directories too).
SUGGESTION_STATE_DIR = "suggestion-state"
_WORKDIR_DIRS = ("trials", SUGGESTION_STATE_DIR)
_MARKER = "experiment.json"


def lock_workdir(workdir: Path) -> IO[str]:
    """An exclusive lock on the work directory, held while the returned file is open."""
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


def prepare_workdir(workdir: Path, resume: bool, experiment_name: str) -> None:
    """Check that `workdir` can hold a new run (or holds this experiment's run, to resume); RunError if not."""
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
    if resume:
        _check_marker(workdir, experiment_name)


def _check_marker(workdir: Path, experiment_name: str) -> None:
    marker = workdir / _MARKER
    if not marker.exists():
        return
    try:
        previous = json.loads(marker.read_text(encoding="utf-8")).get("experiment")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        # The store is the truth; the marker only guards against resuming another experiment.
        log.warning("%s is unreadable; it is rewritten (the trials come from %s)", marker, DB_FILE)
        previous = experiment_name
    if previous != experiment_name:
        raise RunError(f"--resume: {str(workdir)!r} holds experiment {previous!r}, not {experiment_name!r}; "
                       f"pass the --workdir of this experiment")


def write_marker(workdir: Path, experiment_name: str, file: Path) -> None:
    """Record which experiment the work directory holds (never half-written)."""
    marker = workdir / _MARKER
    marker.with_name(marker.name + ".tmp").write_text(json.dumps(
        {"experiment": experiment_name, "file": str(Path(file).resolve()), "pid": os.getpid()}) + "\n")
    os.replace(marker.with_name(marker.name + ".tmp"), marker)
