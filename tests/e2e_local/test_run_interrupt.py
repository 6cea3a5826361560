"""Ctrl-C during `kubenas run`, then `--resume`: nothing finished runs twice, nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from controller.store import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaps, e.g. under a container's PID 1, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigint_kills_running_trials_and_resume_finishes_the_rest(
        tmp_path: Path, make_experiment, write_experiment, spawn_run, cli) -> None:
    doc = make_experiment(
        "quad-interrupt", max_trials=5, parallel=2, settings={"random_state": "3"},
        parameters=[{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "3"}}],
        command=["python", "tests/programs/quadratic.py"],
        args=["--x", "${trialParameters.x}", "--epochs", "3", "--sleep", "${trialParameters.sleep}"],
        trial_parameters=[{"name": "x", "reference": "x"}, {"name": "sleep", "reference": "sleep"}])
    # the first trials are quick, later ones slow, so the interrupt finds some done and some running
    doc["spec"]["parameters"].append(
        {"name": "sleep", "parameterType": "categorical", "feasibleSpace": {"list": ["0.05", "0.6"]}})
    path = write_experiment(doc)
    workdir = tmp_path / "work"
    proc = spawn_run(str(path), "--workdir", str(workdir))
    trials_dir = workdir / "trials"

    def finished_and_running() -> bool:
        if not trials_dir.exists():
            return False
        logs = [p / "stdout.log" for p in trials_dir.iterdir()]
        done = sum(1 for log in logs if log.exists() and "done" in log.read_text())
        running = sum(1 for log in logs if log.exists() and "done" not in log.read_text())
        return done >= 1 and running >= 1

    _wait_for(finished_and_running, 60, "one finished and one running trial")
    time.sleep(0.3)  # let the runner record the finished trial
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"interrupted; resume with: kubenas run {path} --workdir {workdir} --resume" in out
    first = json.loads((workdir / "results.json").read_text())
    assert first["status"] == "Interrupted"
    killed = [t for t in first["trials"] if t["condition"] == "Killed"]
    kept = [t for t in first["trials"] if t["condition"] == "Succeeded"]
    assert killed and kept, first["trials"]
    assert all(t["message"].startswith("stopped by kubenas run") for t in killed)
    # every trial process (own session, so not hit by the runner's SIGINT) is gone
    for t in killed:
        log = (workdir / "trials" / t["name"] / "stdout.log").read_text()
        assert "done" not in log
    kept_logs = {t["name"]: (workdir / "trials" / t["name"] / "stdout.log").read_text() for t in kept}

    again = cli("run", str(path), "--workdir", str(workdir), "--resume", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    res = json.loads((workdir / "results.json").read_text())
    assert res["status"] == "Succeeded" and res["reason"] == "ExperimentMaxTrialsReached"
    assert len(res["trials"]) == 5 and res["counts"]["succeeded"] == 5
    by_name = {t["name"]: t for t in res["trials"]}
    for t in kept:  # finished trials were kept, not re-run
        assert by_name[t["name"]] == t
        assert (workdir / "trials" / t["name"] / "stdout.log").read_text() == kept_logs[t["name"]]
    for t in killed:  # killed trials ran again under the same name with the same assignments
        assert by_name[t["name"]]["assignments"] == t["assignments"]
        assert by_name[t["name"]]["condition"] == "Succeeded"
        assert (workdir / "trials" / t["name"] / "stdout.interrupted.log").exists()
    assert f"resuming quad-interrupt: {len(kept)} finished trials kept" in again.stdout


def test_sigterm_is_handled_like_ctrl_c_and_the_workdir_is_locked(
        tmp_path: Path, make_experiment, write_experiment, spawn_run, cli) -> None:
    doc = make_experiment(
        "sleepy", max_trials=2, parallel=2, command=["python", "tests/programs/spawn_and_sleep.py"],
        parameters=[{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        args=["${trialParameters.x}"])
    path = write_experiment(doc)
    workdir = tmp_path / "work"
    proc = spawn_run(str(path), "--workdir", str(workdir))
    children: list[int] = []

    def both_started() -> bool:
        children.clear()
        for log in (workdir / "trials").glob("*/stdout.log") if (workdir / "trials").exists() else []:
            text = log.read_text()
            if text.startswith("child="):
                children.append(int(text.split("=")[1]))
        return len(children) == 2

    _wait_for(both_started, 60, "two trials with children")
    second = cli("run", str(path), "--workdir", str(workdir), "--resume")
    assert second.returncode == 2 and "another kubenas run is using it" in second.stderr
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    res = json.loads((workdir / "results.json").read_text())
    assert [t["condition"] for t in res["trials"]] == ["Killed", "Killed"]
    _wait_for(lambda: not any(_alive(pid) for pid in children), 5, "grandchildren to be gone")


def test_resume_after_the_runner_was_killed_stops_its_orphaned_trial(
        tmp_path: Path, make_experiment, write_experiment, spawn_run, cli) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    doc = make_experiment(
        "orphan", max_trials=1, parallel=1, command=["python", "tests/programs/sleep_once.py"],
        parameters=[{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        args=[str(markers / "${trialSpec.Name}"), "${trialParameters.x}"])
    path = write_experiment(doc)
    workdir = tmp_path / "work"
    proc = spawn_run(str(path), "--workdir", str(workdir))
    db = workdir / "kubenas.db"

    def recorded_running() -> bool:
        if not db.exists() or not any(markers.iterdir()) or not next(markers.iterdir()).read_text():
            return False
        with open_store(str(db)) as store:
            return [t.condition.value for t in store.list_trials("orphan")] == ["Running"]

    _wait_for(recorded_running, 60, "the trial to start and be recorded")
    orphan = int(next(markers.iterdir()).read_text())
    server_log = (workdir / "suggestion-server.log")
    proc.kill()  # SIGKILL: no chance to clean up; the trial (own session) lives on
    proc.wait()
    assert _alive(orphan)
    # the suggestion server does not outlive the runner (parent-death signal)
    _wait_for(lambda: "stopped" in server_log.read_text(), 20,
              f"the orphaned suggestion server to stop: {server_log.read_text()}")
    again = cli("run", str(path), "--workdir", str(workdir), "--resume", timeout=60)
    assert again.returncode == 0, again.stderr
    _wait_for(lambda: not _alive(orphan), 5, "the orphaned trial to be stopped")
    res = json.loads((workdir / "results.json").read_text())
    assert [t["condition"] for t in res["trials"]] == ["Succeeded"]
    assert "1 to run again" in again.stdout
