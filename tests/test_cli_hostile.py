"""The `kubenas` CLI fed hostile files, flags and environment: exit 2, one line naming the
problem, never a traceback or a hang. Real subprocesses, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (ROOT / "examples" / "random-hpo.yaml").read_text()


def kubenas(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubenas", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False, env={**os.environ, "COLUMNS": "300", **(env or {})})


def _laughs() -> str:
    return "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" if i else "l0: &l0 [lol, lol, lol]\n"
                   for i in range(10))


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "is empty"),
    (b"\x00\x01\x02\xff" * 1000, "is not UTF-8 text"),
    (_laughs().encode(), "counting every use of an *alias"),
    (b"a: &a [*a]\n", "recursive"),
    (b"x" * (4 * 1024 * 1024 + 1), "is larger than 4194304 bytes"),
    (EXAMPLE.replace("name: random-hpo", "name: " + "n" * 500_000).encode(), "more characters"),
])
def test_validate_refuses_hostile_files_in_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "with space é.yaml"
    path.write_bytes(content)
    done = kubenas("validate", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert expected in done.stderr and str(path) in done.stderr
    assert len(done.stderr) < 3000


def test_validate_accepts_a_path_with_spaces_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "my experiments" / "ü.yaml"
    path.parent.mkdir()
    path.write_text(EXAMPLE)
    done = kubenas("validate", str(path))
    assert done.returncode == 0 and done.stdout.startswith("ok ")


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "1e9"])
def test_controller_refuses_a_bad_reconcile_interval(value: str) -> None:
    # Before: float() at import time raised a ValueError traceback (or accepted 0 and nan).
    done = kubenas("controller", env={"KUBENAS_RECONCILE_INTERVAL": value})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"KUBENAS_RECONCILE_INTERVAL: invalid value {value!r}" in done.stderr
