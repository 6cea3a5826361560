"""controller.local.processes: real processes, real process groups, real pipes."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.local.processes import (
    CappedLog,
    GpuPool,
    LaunchError,
    LaunchSpec,
    TrialProcess,
    detect_gpus,
    stop_all,
    stop_orphan,
    trial_environment,
)

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"


def _spec(tmp_path: Path, *argv: str) -> LaunchSpec:
    return LaunchSpec(argv=argv, env=dict(os.environ), cwd=str(tmp_path), log_path=tmp_path / "t" / "stdout.log")


def _drain(events: queue.Queue, name: str, timeout: float = 20.0) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = events.get(timeout=deadline - time.monotonic())
        assert event.trial == name
        if event.line is None:
            return lines
        lines.append(event.line)
    raise AssertionError("no end of output")


def test_output_is_teed_to_log_and_events_in_order(tmp_path: Path) -> None:
    events: queue.Queue = queue.Queue()
    spec = _spec(tmp_path, sys.executable, str(PROGRAMS / "quadratic.py"), "--x", "3", "--exit-code", "4")
    trial = TrialProcess.start("t1", spec, events)
    chunks = _drain(events, "t1")  # pieces of output, not necessarily whole lines
    lines = "".join(chunks).splitlines(keepends=True)
    assert trial.wait(10) == 4
    assert [line.split()[0] for line in lines[:3]] == ["epoch=1", "epoch=2", "epoch=3"]
    assert "done\n" in lines  # stderr is merged
    assert spec.log_path.read_text() == "".join(chunks)


def test_missing_command_and_directory_are_launch_errors(tmp_path: Path) -> None:
    events: queue.Queue = queue.Queue()
    with pytest.raises(LaunchError, match="command not found: no-such-program-xyz"):
        TrialProcess.start("t", _spec(tmp_path, "no-such-program-xyz", "--x"), events)
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(LaunchError, match="command not executable"):
        TrialProcess.start("t", _spec(tmp_path, str(script)), events)
    spec = LaunchSpec((sys.executable, "-c", "pass"), dict(os.environ), str(tmp_path / "gone"), tmp_path / "l.log")
    with pytest.raises(LaunchError, match="working directory not found"):
        TrialProcess.start("t", spec, events)


def _first_line(events: queue.Queue, timeout: float = 20.0) -> str:
    """The first complete output line; events carry chunks, which may split a line."""
    text, deadline = "", time.monotonic() + timeout
    while "\n" not in text:
        event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        assert event.line is not None, f"output ended before a full line: {text!r}"
        text += event.line
    return text.split("\n", 1)[0] + "\n"


def test_stop_all_terminates_the_whole_group(tmp_path: Path) -> None:
    events: queue.Queue = queue.Queue()
    trial = TrialProcess.start("t", _spec(tmp_path, sys.executable, str(PROGRAMS / "spawn_and_sleep.py")), events)
    child = int(_first_line(events).strip().split("=")[1])
    assert os.getpgid(child) == trial.pid  # own session: the child is in the trial's group
    assert os.getsid(trial.pid) == trial.pid
    started = time.monotonic()
    stop_all([trial], grace_s=3.0)
    assert trial.returncode() == -signal.SIGTERM
    assert time.monotonic() - started < 3.0
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("child survived")
    assert trial.stop_requested


def test_stop_all_escalates_to_sigkill(tmp_path: Path) -> None:
    events: queue.Queue = queue.Queue()
    code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    trial = TrialProcess.start("t", _spec(tmp_path, sys.executable, "-c", code), events)
    assert _first_line(events) == "ready\n"
    stop_all([trial], grace_s=0.5)
    assert trial.returncode() == -signal.SIGKILL


def test_detect_gpus_from_env_without_torch() -> None:
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "0,2", "PATH": ""}) == ["0", "2"]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "", "PATH": ""}) == []
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "-1", "PATH": ""}) == []
    assert detect_gpus({"PATH": ""}) == []  # no nvidia-smi on PATH


def test_fake_nvidia_smi_is_counted(tmp_path: Path) -> None:
    # A fake nvidia-smi stands in for the GPU driver, which this machine lacks.
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Fake (UUID: GPU-a)'\necho 'GPU 1: Fake (UUID: GPU-b)'\n")
    fake.chmod(0o755)
    assert detect_gpus({"PATH": str(tmp_path)}) == ["0", "1"]


def test_gpu_pool_hands_out_one_per_trial() -> None:
    pool = GpuPool(["0", "1"])
    assert pool.acquire("a") == "0" and pool.acquire("b") == "1"
    assert pool.available() == 0
    pool.release("a")
    assert pool.acquire("c") == "0"
    empty = GpuPool([])
    assert empty.available() is None and empty.acquire("x") is None and not empty.enabled


def test_trial_environment_puts_our_interpreter_first() -> None:
    env = trial_environment({"PATH": "/usr/bin", "X": "1"})
    assert env["PATH"].split(os.pathsep)[:2] == [os.path.dirname(sys.executable), "/usr/bin"]
    assert env["X"] == "1"


def test_stop_orphan_kills_only_the_named_trial(tmp_path: Path) -> None:
    code = "import time; print('ready', flush=True); time.sleep(60)"
    env = {**os.environ, "KATIB_TRIAL_NAME": "exp-abcdefgh"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        stop_orphan("exp-other", str(proc.pid))   # another trial's name: not touched
        stop_orphan("exp-abcdefgh", None)         # nothing recorded: nothing done
        assert proc.poll() is None
        stop_orphan("exp-abcdefgh", str(proc.pid))
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_log_that_cannot_be_created_is_a_launch_error_not_a_crash(tmp_path: Path) -> None:
    # Before: the OSError from mkdir escaped TrialProcess.start and ended the whole run.
    (tmp_path / "t").write_text("a file where the trial's directory goes")
    with pytest.raises(LaunchError, match="cannot create its log"):
        TrialProcess.start("t", _spec(tmp_path, sys.executable, "-c", "pass"), queue.Queue())


def test_capped_log_keeps_the_start_and_the_latest_output_in_three_parts(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    (tmp_path / "stdout.log.1").write_bytes(b"an earlier run's part")
    log = CappedLog(path, part_bytes=1000)
    assert not (tmp_path / "stdout.log.1").exists()
    for i in range(50):  # 5,000 bytes in uneven writes
        log.write(bytes([48 + i % 10]) * (1 if i % 7 == 0 else 130))
    log.close()
    head, older, latest = (path.read_bytes(), (tmp_path / "stdout.log.2").read_bytes(),
                           (tmp_path / "stdout.log.1").read_bytes())
    assert head.startswith(b"0" + b"1" * 130) and b"the output goes on in stdout.log.2 and then stdout.log.1" in head
    assert len(head) - len(head.split(b"\n[kubenas:")[0]) < 200 and len(head.split(b"\n[kubenas:")[0]) == 1000
    assert len(older) == 1000 and 0 < len(latest) <= 1000
    written = b"".join(bytes([48 + i % 10]) * (1 if i % 7 == 0 else 130) for i in range(50))
    assert older + latest == written[-(len(older) + len(latest)):]  # the latest bytes, in order


def test_a_trial_printing_faster_than_the_runner_reads_waits_for_room(tmp_path: Path) -> None:
    # The queue is bounded: the trial blocks on its pipe instead of the runner's memory growing.
    events: queue.Queue = queue.Queue(maxsize=2)
    trial = TrialProcess.start("t", _spec(tmp_path, sys.executable, "-c",
                                          "import sys; sys.stdout.write('x' * 10_000_000)"), events)
    time.sleep(1.0)
    assert trial.returncode() is None and trial.waiting_for_room and trial.posted == 2
    received = 0
    while (event := events.get(timeout=10)).line is not None:
        received += len(event.line)
    assert received == 10_000_000 and trial.wait(10) == 0
