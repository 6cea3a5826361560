"""`kubenas dashboard` as a user starts it: the real CLI in a subprocess."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.dashboard.runs import KUBENAS, REPO


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBENAS, "dashboard", *args], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize(("args", "message"), [
    (["--namespace", "team-a"], "--namespace: only used with --cluster"),
    (["--db-manager", "x:1"], "--db-manager: only used with --cluster"),
    (["runs", "--cluster"], "WORKDIR: 'runs' — --cluster reads the Kubernetes API, not work directories"),
    ([""], "WORKDIR: '' — give a directory"),
])
def test_flags_that_do_not_fit_are_refused(args: list[str], message: str) -> None:
    done = _cli(*args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = _cli(str(tmp_path), "--port", str(port))
    assert done.returncode == 2 and f"--host 127.0.0.1 --port {port}: cannot listen" in done.stderr
    assert "not a kubenas run" in done.stderr  # the empty directory is named too


def test_serves_until_sigterm(runs_dir: Path) -> None:
    proc = subprocess.Popen([*KUBENAS, "dashboard", str(runs_dir), "--port", "0"], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = None
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            found = re.search(r"kubenas dashboard on (http://127\.0\.0\.1:\d+/)", line)
            url = found[1] if found else None
        assert url is not None
        names = {e["name"] for e in httpx.get(url + "api/experiments", timeout=30).json()["experiments"]}
        assert names == {"curve-median", "nas-macro", "oneshot-macro"}
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then ends by the signal it caught (the conventional exit status)
        assert proc.wait(timeout=30) == -signal.SIGTERM
        rest = proc.stderr.read()
        assert "Shutting down" in rest and "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
