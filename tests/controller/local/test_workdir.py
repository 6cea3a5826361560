"""controller.local.workdir: one run per work directory, resume only what it holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from controller.local.errors import RunError
from controller.local.workdir import DB_FILE, lock_workdir, prepare_workdir, write_marker


def test_the_lock_is_exclusive_while_held(tmp_path: Path) -> None:
    with lock_workdir(tmp_path):
        with pytest.raises(RunError, match="another kubenas run is using it"):
            lock_workdir(tmp_path)
    with lock_workdir(tmp_path):  # released with the file
        pass


def test_a_new_run_needs_no_store_and_a_resume_needs_one(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="--resume: nothing to resume"):
        prepare_workdir(tmp_path, True, "exp")
    prepare_workdir(tmp_path, False, "exp")
    (tmp_path / DB_FILE).write_bytes(b"")
    with pytest.raises(RunError, match="holds a previous run"):
        prepare_workdir(tmp_path, False, "exp")
    prepare_workdir(tmp_path, True, "exp")


@pytest.mark.parametrize(("make", "message"), [("results.json", "is a directory"), ("trials", "is not a directory")])
def test_what_the_run_writes_must_have_the_right_kind(tmp_path: Path, make: str, message: str) -> None:
    (tmp_path / make).mkdir() if make.endswith(".json") else (tmp_path / make).write_text("")
    with pytest.raises(RunError, match=message):
        prepare_workdir(tmp_path, False, "exp")


def test_the_marker_guards_against_resuming_another_experiment(tmp_path: Path) -> None:
    write_marker(tmp_path, "first", tmp_path / "first.yaml")
    marker = json.loads((tmp_path / "experiment.json").read_text())
    assert marker == {"experiment": "first", "file": str((tmp_path / "first.yaml").resolve()), "pid": os.getpid()}
    (tmp_path / DB_FILE).write_bytes(b"")
    prepare_workdir(tmp_path, True, "first")
    with pytest.raises(RunError, match="holds experiment 'first', not 'second'"):
        prepare_workdir(tmp_path, True, "second")
    (tmp_path / "experiment.json").write_text("[not an object")  # unreadable: the store decides
    prepare_workdir(tmp_path, True, "second")
