"""`kubenas run` against trials that misbehave (tests/programs/hostile.py) and hostile flags.

Real runs of the real CLI: each trial is a real process doing the bad thing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e_local.conftest import KUBENAS, REPO

pytestmark = [pytest.mark.e2e]

MODES = ["nonewline", "bigline", "binary", "fork", "setsid", "closeout"]
LOSS = {"nonewline": 0.5, "bigline": 0.25, "binary": 0.125, "fork": 0.0625, "setsid": 0.0625, "closeout": 0.03125}


def _hostile(make_experiment, modes: list[str], name: str = "hostile", **kw):  # type: ignore[no-untyped-def]
    return make_experiment(
        name, algorithm="grid", max_trials=len(modes), parallel=len(modes),
        parameters=[{"name": "mode", "parameterType": "categorical", "feasibleSpace": {"list": modes}}],
        command=["python", "tests/programs/hostile.py", "${trialParameters.mode}"], **kw)


def _processes_of(trials: list[str]) -> list[int]:
    """Live processes carrying one of these trials' KATIB_TRIAL_NAME (zombies excluded)."""
    markers = {f"KATIB_TRIAL_NAME={t}".encode() for t in trials}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = set(Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"))
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if environ & markers and state != "Z":
            found.append(int(entry))
    return found


def test_misbehaving_output_and_processes_still_give_their_metrics(run_experiment, make_experiment) -> None:
    start = time.monotonic()
    run = run_experiment(_hostile(make_experiment, MODES), timeout=60)
    assert run.code == 0, run.stderr
    trials = run.results["trials"]
    assert {t["assignments"]["mode"]: (t["condition"], t["observation"]["loss"]) for t in trials} == \
        {mode: ("Succeeded", loss) for mode, loss in LOSS.items()}
    # children holding the output open (60 s sleeps) neither delay the run nor outlive it;
    # before, a child that called setsid() kept running after kubenas had exited
    assert time.monotonic() - start < 30
    assert _processes_of([t["name"] for t in trials]) == []
    log = (run.workdir / "trials" / run.trial(mode="bigline")["name"] / "stdout.log").stat().st_size
    assert log > 6_000_000  # the log keeps the output whole; only the parser bounds its lines


@pytest.mark.slow  # the 5 s grace is the point
def test_ctrl_c_kills_a_trial_that_ignores_sigterm_after_the_grace(tmp_path: Path, make_experiment,
                                                                   write_experiment, spawn_run) -> None:
    path = write_experiment(_hostile(make_experiment, ["ignoreterm"], name="stubborn"))
    workdir = tmp_path / "work"
    proc = spawn_run(str(path), "--workdir", str(workdir))
    deadline = time.monotonic() + 60
    while not any(p.read_text().startswith("ready") for p in workdir.glob("trials/*/stdout.log")):
        assert time.monotonic() < deadline and proc.poll() is None, "the trial did not start"
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert 4.5 < time.monotonic() - sent < 15  # SIGTERM, 5 s of grace, then SIGKILL
    (trial,) = json.loads((workdir / "results.json").read_text())["trials"]
    assert trial["condition"] == "Killed"
    assert _processes_of([trial["name"]]) == []


def test_ctrl_c_during_start_up_says_so_and_leaves_a_usable_workdir(tmp_path: Path, make_experiment,
                                                                   write_experiment, cli) -> None:
    path = write_experiment(_hostile(make_experiment, ["nonewline"], name="early"))
    workdir = tmp_path / "work"
    proc = subprocess.Popen([*KUBENAS, "run", str(path), "--workdir", str(workdir)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (workdir / "suggestion-server.log").exists():  # inside start-up, before any trial
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "interrupted during start-up" in out  # before: exit 130 without a word
    resumed = (workdir / "kubenas.db").exists()
    again = cli("run", str(path), "--workdir", str(workdir), *(["--resume"] if resumed else []))
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--workdir", ""], "--workdir: '' — give a directory"),
    (["--parallel", "99999999999"], "2147483647"),
])
def test_bad_run_flags_are_refused_before_anything_runs(tmp_path: Path, make_experiment, write_experiment,
                                                       cli, args: list[str], message: str) -> None:
    path = write_experiment(_hostile(make_experiment, ["nonewline"], name="flags"))
    done = cli("run", str(path), *args, env={"COLUMNS": "400"})
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (REPO / "kubenas.db").exists() and not (REPO / "results.json").exists()


def test_an_empty_file_argument_is_named(cli) -> None:
    done = cli("run", "")
    assert done.returncode == 2 and "FILE: '' — give the path of an Experiment YAML" in done.stderr


def test_a_directory_as_file_is_named_as_one(cli, tmp_path: Path) -> None:
    done = cli("run", str(tmp_path))  # before: "no such file"
    assert done.returncode == 2 and f"FILE: {str(tmp_path)!r} — is a directory" in done.stderr


def test_parallel_above_max_trial_count_runs_exactly_max_trial_count(run_experiment, make_experiment) -> None:
    run = run_experiment(_hostile(make_experiment, ["nonewline", "binary"], name="wide"), "--parallel", "50")
    assert run.code == 0, run.stderr
    assert run.results["counts"]["total"] == 2


def test_suggestion_serve_names_a_state_dir_that_is_a_file(tmp_path: Path, cli) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    done = cli("suggestion", "serve", "-a", "random", "--port", "0", "--state-dir", str(blocker))
    assert done.returncode == 2
    assert f"--state-dir: invalid value {str(blocker)!r}" in done.stderr and "--port" not in done.stderr


def test_a_yaml_bomb_is_refused_by_run_at_once(tmp_path: Path, cli) -> None:
    laughs = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" if i else "l0: &l0 [lol, lol, lol]\n"
                     for i in range(9))
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs)
    start = time.monotonic()
    done = cli("run", str(path), "--workdir", str(tmp_path / "w"), timeout=30)
    assert done.returncode == 2 and "alias" in done.stderr
    assert time.monotonic() - start < 10
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("marker", ['{"exper'])  # cut short mid-write; '[1]' takes the same path
def test_resume_survives_a_damaged_experiment_marker(tmp_path: Path, make_experiment, run_experiment,
                                                     marker: str) -> None:
    doc = _hostile(make_experiment, ["nonewline", "binary"], name="marked")
    first = run_experiment(doc)
    assert first.code == 0, first.stderr
    kept = {t["name"] for t in first.results["trials"]}
    (first.workdir / "experiment.json").write_bytes(marker.encode("latin-1"))
    again = run_experiment(doc, "--resume")  # before: a JSONDecodeError/AttributeError traceback
    assert again.code == 0, again.stderr
    assert {t["name"] for t in again.results["trials"]} == kept  # nothing lost, nothing run twice
    assert json.loads((first.workdir / "experiment.json").read_text())["experiment"] == "marked"


@pytest.mark.parametrize("blocked", ["results.json", "progress.png", ".kubenas-run.lock", "trials"])
def test_a_directory_where_the_run_writes_a_file_is_refused_at_start(tmp_path: Path, make_experiment, write_experiment,
                                                                     cli, blocked: str) -> None:
    path = write_experiment(_hostile(make_experiment, ["nonewline"], name="blocked"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    if blocked == "trials":
        (workdir / blocked).write_text("a file where the trials' directory goes")
    else:
        (workdir / blocked).mkdir()
    done = cli("run", str(path), "--workdir", str(workdir))
    # before: the whole experiment ran, then ended in an IsADirectoryError traceback
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--workdir: {str(workdir / blocked)!r}" in done.stderr
    assert not (workdir / "trials").is_dir()


def test_results_that_cannot_be_written_are_reported_and_the_store_kept(run_experiment, make_experiment,
                                                                       tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    (workdir / "results.json.tmp").mkdir(parents=True)  # makes the atomic write itself fail
    run = run_experiment(_hostile(make_experiment, ["nonewline"], name="unwritable"), workdir=workdir)
    assert run.code == 0
    assert f"cannot write {workdir / 'results.json'}" in run.stdout and "kubenas.db" in run.stdout
    from controller.store import open_store

    with open_store(str(workdir / "kubenas.db")) as store:
        assert [t.condition.value for t in store.list_trials("unwritable")] == ["Succeeded"]


def test_a_nul_byte_in_an_assignment_fails_only_its_trial(run_experiment, make_experiment) -> None:
    # Before: Popen's ValueError("embedded null byte") escaped and ended the run in a traceback.
    doc = make_experiment(
        "nul", algorithm="grid", max_trials=2, parallel=1,
        parameters=[{"name": "c", "parameterType": "categorical", "feasibleSpace": {"list": ["a\0b", "ok"]}}],
        command=["python", "-c", "import sys; print('loss=1')", "${trialParameters.c}"])
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    bad, good = run.trial(c="a\0b"), run.trial(c="ok")
    assert bad["condition"] == "Failed" and "NUL byte" in bad["message"]
    assert good["condition"] == "Succeeded"


@pytest.mark.parametrize("name", ["A=B", "1ABC", "WITH SPACE", ""])
def test_an_env_name_no_process_can_take_is_refused_at_start(tmp_path: Path, make_experiment, write_experiment,
                                                            cli, name: str) -> None:
    doc = _hostile(make_experiment, ["nonewline"], name="envs", env=[{"name": name, "value": "x"}])
    done = cli("run", str(write_experiment(doc)), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "containers[0].env[0].name" in done.stderr


def _children_running(parent: int, needle: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and needle in cmdline:
            found.append(int(entry))
    return found


def test_a_suggestion_server_killed_mid_run_is_restarted(tmp_path: Path, make_experiment, write_experiment,
                                                        spawn_run) -> None:
    # Before: the next GetSuggestions failed UNAVAILABLE, the running trial was killed and the
    # run ended with exit 2 ("bad input") and no hint that --resume would continue it.
    doc = make_experiment(
        "phoenix", max_trials=3, parallel=1,
        parameters=[{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        command=["python", "-c", "import sys, time; time.sleep(0.3); print('loss=' + sys.argv[1])"],
        args=["${trialParameters.x}"])
    workdir = tmp_path / "work"
    proc = spawn_run(str(write_experiment(doc)), "--workdir", str(workdir))
    deadline = time.monotonic() + 60
    while not list(workdir.glob("trials/*/stdout.log")):
        assert time.monotonic() < deadline and proc.poll() is None, "no trial started"
        time.sleep(0.05)
    (server,) = _children_running(proc.pid, "suggestion serve")
    os.kill(server, signal.SIGKILL)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "starting a new one" in err
    trials = json.loads((workdir / "results.json").read_text())["trials"]
    assert [t["condition"] for t in trials] == ["Succeeded"] * 3


@pytest.mark.parametrize("kind", ["fifo"])  # a directory takes the same path
def test_a_file_collector_path_that_is_not_a_regular_file_is_left_alone(tmp_path: Path, make_experiment,
                                                                        run_experiment, kind: str) -> None:
    # Before: whatever was there was unlinked before each trial — as root that includes
    # /dev/null — and a FIFO or /dev/zero would then be read forever. (A FIFO stands in for
    # the device files here, which a test must not risk.)
    target = tmp_path / "metrics.log"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    doc = _hostile(make_experiment, ["nonewline"], name="special", extra_spec={"metricsCollectorSpec": {
        "collector": {"kind": "File"}, "source": {"fileSystemPath": {"path": str(target), "kind": "File"}}}})
    run = run_experiment(doc)
    assert run.code == 2
    assert f"fileSystemPath.path: {str(target)!r}" in run.stderr and "not a regular file" in run.stderr
    assert target.exists() and (target.is_fifo() if kind == "fifo" else target.is_dir())


@pytest.mark.slow
def test_a_trial_interrupted_twice_keeps_both_outputs(tmp_path: Path, make_experiment, write_experiment,
                                                     spawn_run) -> None:
    # Before: the second interrupt's rename overwrote the first run's stdout.interrupted.log.
    doc = make_experiment(
        "twice", max_trials=1, parallel=1,
        parameters=[{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        command=["python", "-c", "import os, sys, time; print('pid', os.getpid(), flush=True); time.sleep(30)"],
        args=["${trialParameters.x}"])
    path = write_experiment(doc)
    workdir = tmp_path / "work"
    seen = []
    for flags in ((), ("--resume",), ("--resume",)):
        proc = spawn_run(str(path), "--workdir", str(workdir), *flags)
        deadline = time.monotonic() + 60
        while True:
            logs = list(workdir.glob("trials/*/stdout.log"))
            try:  # a new run's output (the previous one's log is moved aside while it resumes)
                text = logs[0].read_text() if logs else ""
            except FileNotFoundError:
                text = ""
            if text.startswith("pid") and text not in seen:
                seen.append(text)
                break
            assert time.monotonic() < deadline and proc.poll() is None, "the trial did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (flags, text, seen, proc.returncode, out[-1500:], err[-1500:])
    trial_dir = logs[0].parent
    kept = [trial_dir / "stdout.interrupted.log", trial_dir / "stdout.interrupted.2.log"]
    assert [p.read_text() for p in kept] == seen[:2]
    assert (trial_dir / "stdout.log").read_text() == seen[2]
