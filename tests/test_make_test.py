"""`make test`'s pytest command (read from the Makefile): a native crash fails one named test, not the run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _make_vars() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    return {m[1]: m[2].strip() for m in re.finditer(r"^(\w+)\s*[:?]?=\s*(.*)$", text, re.MULTILINE)}


def _pytest_command() -> list[str]:
    line = _make_vars()["PYTEST"].replace("$(PY)", shlex.quote(sys.executable)).replace("$(TEST_WORKERS)", "2")
    return [*shlex.split(line), "-p", "no:cacheprovider"]


def test_a_worker_that_aborts_fails_its_test_and_the_others_still_run(tmp_path: Path) -> None:
    (tmp_path / "test_native_crash.py").write_text(
        "import os\n\ndef test_aborts():\n    os.abort()\n\ndef test_still_runs():\n    assert True\n")
    proc = subprocess.run(_pytest_command(), cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "crashed while running 'test_native_crash.py::test_aborts'" in proc.stdout, proc.stdout[-2000:]
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout[-2000:]


def test_collecting_no_tests_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "test_none.py").write_text("X = 1\n")
    proc = subprocess.run(_pytest_command(), cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 5, proc.stdout[-2000:]  # make, and .ci/run under `set -e`, stop on it


def test_the_trainer_tests_run_again_on_the_avx2_kernels() -> None:
    make = _make_vars()
    assert set(shlex.split(make["AVX2"])) == {"ATEN_CPU_CAPABILITY=avx2", "ONEDNN_MAX_CPU_ISA=AVX2"}
    recipe = (ROOT / "Makefile").read_text().split("\ntest: install\n", 1)[1].split("\n\n", 1)[0]
    assert [line.strip() for line in recipe.splitlines()][-2:] == ["$(PYTEST)", "$(AVX2) $(PYTEST) tests/trainer"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and ci.rstrip().endswith("make test")
