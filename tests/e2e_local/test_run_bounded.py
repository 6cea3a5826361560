"""`kubenas run` never hangs and stays bounded, whatever a trial does (tests/programs/hostile.py).

Real runs of the real CLI: metrics files swapped for a FIFO or a link to /dev/zero, a line
that makes a metricsFormat filter backtrack, output floods and terminal escapes, a runner
SIGKILLed while a slow suggestion server answers, and File-collector paths that climb out.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e_local.conftest import KUBENAS, REPO

pytestmark = [pytest.mark.e2e]


def _modes(make_experiment, modes: list[str], name: str, *, args: list[str] | None = None, **kw):  # type: ignore[no-untyped-def]
    return make_experiment(
        name, algorithm="grid", max_trials=len(modes), parallel=len(modes), max_failed=len(modes),
        parameters=[{"name": "mode", "parameterType": "categorical", "feasibleSpace": {"list": modes}}],
        command=["python", "tests/programs/hostile.py", "${trialParameters.mode}", *(args or [])], **kw)


def _file_collector(path: str, filters: list[str] | None = None) -> dict:
    spec: dict = {"collector": {"kind": "File"}, "source": {"fileSystemPath": {"path": path, "kind": "File"}}}
    if filters:
        spec["source"]["filter"] = {"metricsFormat": filters}
    return {"metricsCollectorSpec": spec}


def test_a_metrics_file_swapped_for_a_fifo_or_a_link_to_dev_zero_fails_its_trial_at_once(
        tmp_path: Path, run_experiment, make_experiment) -> None:
    # Before: the FIFO blocked the runner in open(), /dev/zero kept it reading at 100% CPU;
    # neither ever ended, and Ctrl-C was ignored.
    metrics = f"{tmp_path}/m/${{trialSpec.Name}}.log"
    doc = _modes(make_experiment, ["fifo", "zerolink"], "swapped", args=[metrics],
                 extra_spec=_file_collector(metrics))
    start = time.monotonic()
    run = run_experiment(doc, timeout=60)
    assert time.monotonic() - start < 30  # the trials sleep 60 s: they were stopped
    fifo, link = run.trial(mode="fifo"), run.trial(mode="zerolink")
    assert fifo["condition"] == link["condition"] == "Failed"
    assert f"{tmp_path}/m/{fifo['name']}.log is not a regular file (a FIFO)" in fifo["message"]
    assert f"{tmp_path}/m/{link['name']}.log was replaced by a symbolic link" in link["message"]
    assert Path("/dev/zero").exists()


def test_a_filter_that_backtracks_fails_its_trial_and_validate_refuses_a_nested_repeat(
        tmp_path: Path, run_experiment, make_experiment, write_experiment, cli) -> None:
    # `.*a.*a.*a.*a.*!` passes the nested-repeat check but is polynomial: on the trial's
    # 20,000-character line it would run for hours; the time limit fails the trial instead.
    slow = r"([\w-]+)=(.*a.*a.*a.*a.*!)"
    doc = _modes(make_experiment, ["evilline"], "backtrack",
                 extra_spec={"metricsCollectorSpec": {"collector": {"kind": "StdOut"},
                                                      "source": {"filter": {"metricsFormat": [slow]}}}})
    start = time.monotonic()
    run = run_experiment(doc, timeout=90)
    assert time.monotonic() - start < 60
    trial = run.trial(mode="evilline")
    assert trial["condition"] == "Failed"
    assert "backtracks catastrophically" in trial["message"] and "ran over 1 s" in trial["message"]
    # the filter: refused before anything runs, by validate and by run
    nested = r"([\w-]+)=((?:a|aa)+|[0-9.]+)$"
    doc["spec"]["metricsCollectorSpec"]["source"]["filter"]["metricsFormat"] = [nested]
    path = write_experiment(doc)
    checked = cli("validate", str(path))
    assert checked.returncode == 2 and "metricsFormat[0]" in checked.stderr, checked.stderr
    refused = cli("run", str(path), "--workdir", str(tmp_path / "refused"))
    assert refused.returncode == 2 and "metricsFormat[0]" in refused.stderr
    assert not list((tmp_path / "refused").glob("trials/*"))


def test_ctrl_c_stops_a_run_whose_trial_floods_its_output(tmp_path: Path, make_experiment, write_experiment) -> None:
    path = write_experiment(_modes(make_experiment, ["flood"], "flood"))
    workdir = tmp_path / "work"
    proc = subprocess.Popen([*KUBENAS, "run", str(path), "--workdir", str(workdir)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while sum(p.stat().st_size for p in workdir.glob("trials/*/stdout.log")) < 20_000_000:
            assert time.monotonic() < deadline and proc.poll() is None, "the trial did not flood"
            time.sleep(0.1)
        rss = psutil.Process(proc.pid).memory_info().rss
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert time.monotonic() - sent < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rss < 150 * 2**20
    (trial,) = json.loads((workdir / "results.json").read_text())["trials"]
    assert trial["condition"] == "Killed"


def _peak_rss_of_run(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], int]:
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runner, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, runner.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.02)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err), peak


@pytest.mark.slow
def test_memory_stays_flat_and_stdout_log_is_capped_whatever_the_trial_prints(
        tmp_path: Path, make_experiment, write_experiment) -> None:
    # Before: the runner held a trial's whole output (1 GB printed, 1 GB resident) and every
    # metric point (a million lines, 684 MB). 100 MB of output, then 200,000 metric lines.
    program = ("import sys\nout = sys.stdout.buffer\nblock = (b'#' * 1023 + b'\\n') * 1024\n"
               "for _ in range(100): out.write(block)\n"
               "for i in range(200_000): out.write(b'loss=%d acc=0.5\\n' % (200_000 - i))\n")
    doc = make_experiment("flat", max_trials=1, parameters=[
        {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        command=["python", "-c", program, "${trialParameters.x}"])
    workdir = tmp_path / "work"
    done, peak = _peak_rss_of_run([*KUBENAS, "run", str(write_experiment(doc)), "--workdir", str(workdir)])
    assert done.returncode == 0, done.stderr
    assert peak < 150 * 2**20, peak
    (trial,) = json.loads((workdir / "results.json").read_text())["trials"]
    assert trial["observation"]["loss"] == 1.0  # the minimum over every line
    logs = workdir / "trials" / trial["name"]
    head, latest = (logs / "stdout.log").stat().st_size, (logs / "stdout.log.1").stat().st_size
    assert 64 * 2**20 < head < 64 * 2**20 + 1000  # the first 64 MiB and a note where the rest is
    assert "output goes on in stdout.log.2 and then stdout.log.1" in (logs / "stdout.log").read_bytes()[-200:].decode()
    assert not (logs / "stdout.log.2").exists()
    assert (logs / "stdout.log.1").read_bytes().endswith(b"loss=1 acc=0.5\n")
    assert head + latest > 100 * 2**20


def test_control_characters_from_parameters_and_output_are_shown_escaped(run_experiment, make_experiment) -> None:
    title = "\x1b]0;pwned\x07"
    doc = make_experiment(
        "escapes", algorithm="grid", max_trials=1,
        parameters=[{"name": "mode", "parameterType": "categorical", "feasibleSpace": {"list": [f"ansi{title}"]}}],
        command=["python", "tests/programs/hostile.py", "ansi", "${trialParameters.mode}"])
    run = run_experiment(doc)
    assert run.code == 0, run.stderr
    assert "\x1b" not in run.stdout + run.stderr and "\x07" not in run.stdout + run.stderr
    assert "ansi\\x1b]0;pwned\\x07" in run.stdout  # the start line and the best trial's assignments
    (trial,) = run.results["trials"]
    assert trial["assignments"]["mode"] == f"ansi{title}"  # results.json keeps the value as it is
    assert trial["observation"]["loss"] == 0.5


_SLOW_SERVER = """
import sys, time
if "suggestion" in sys.argv and "serve" in sys.argv:
    import suggestion.service as service
    original = service.SuggestionServicer.GetSuggestions
    calls = []

    def slow(self, request, context):
        calls.append(1)
        if len(calls) > 1:  # the first answer is quick, every later one takes a minute
            time.sleep(60)
        return original(self, request, context)

    service.SuggestionServicer.GetSuggestions = slow
"""


def _conditions(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT name, condition FROM trials").fetchall())


def test_a_trial_that_ends_during_a_slow_suggestion_is_recorded_at_once_and_never_rerun(
        tmp_path: Path, make_experiment, write_experiment) -> None:
    # Before: the runner sat in GetSuggestions while the second trial exited 0; SIGKILLed
    # then, the store still said Running and --resume ran that trial again.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_SLOW_SERVER)
    ran = tmp_path / "ran.txt"
    program = (f"import sys, time; time.sleep(float(sys.argv[1])); "
               f"open({str(ran)!r}, 'a').write(sys.argv[1] + '\\n'); print('loss=' + sys.argv[1])")
    doc = make_experiment(
        "slowsuggest", algorithm="grid", max_trials=3, parallel=2,
        parameters=[{"name": "delay", "parameterType": "categorical", "feasibleSpace": {"list": ["0.1", "2", "0.2"]}}],
        command=["python", "-c", program, "${trialParameters.delay}"])
    path, workdir = write_experiment(doc), tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)])}
    proc = subprocess.Popen([*KUBENAS, "run", str(path), "--workdir", str(workdir)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ran.exists() or len(ran.read_text().split()) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "the first two trials did not run"
            time.sleep(0.05)
        # both have exited; the runner waits for the (slow) third suggestion meanwhile
        while sorted(_conditions(workdir / "kubenas.db").values()) != ["Succeeded", "Succeeded"]:
            assert time.monotonic() < deadline, _conditions(workdir / "kubenas.db")
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    resumed = subprocess.run([*KUBENAS, "run", str(path), "--workdir", str(workdir), "--resume"], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 finished trials kept, 0 to run again" in resumed.stdout
    assert sorted(ran.read_text().split()) == ["0.1", "0.2", "2"]  # each ran exactly once
    trials = json.loads((workdir / "results.json").read_text())["trials"]
    assert [t["condition"] for t in trials] == ["Succeeded"] * 3


@pytest.mark.parametrize("through_parameter", [False, True])
def test_a_metrics_path_that_climbs_out_is_refused_and_nothing_is_deleted(
        tmp_path: Path, run_experiment, make_experiment, write_experiment, cli, through_parameter: bool) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "m").mkdir()
    path = f"{tmp_path}/m/${{trialParameters.where}}" if through_parameter else f"{tmp_path}/m/../victim.txt"
    doc = make_experiment(
        "climb", algorithm="grid", max_trials=1,
        parameters=[{"name": "where", "parameterType": "categorical", "feasibleSpace": {"list": ["../victim.txt"]}}],
        command=["python", "-c", "print('loss=1')", "${trialParameters.where}"], extra_spec=_file_collector(path))
    run = run_experiment(doc)
    assert run.code == 2, run.stderr
    assert "spec.metricsCollectorSpec.source.fileSystemPath.path" in run.stderr
    assert "must not contain a '..' component" in run.stderr
    assert victim.read_text() == "keep me\n"


def test_an_existing_metrics_file_the_run_did_not_write_is_never_deleted(
        tmp_path: Path, run_experiment, make_experiment) -> None:
    mine = tmp_path / "m" / "shared.log"
    mine.parent.mkdir()
    mine.write_text("the user's own file\n")
    doc = make_experiment(
        "shared", max_trials=2, parameters=[{"name": "x", "parameterType": "double",
                                             "feasibleSpace": {"min": "0", "max": "1"}}],
        command=["python", "-c", f"import sys; open({str(mine)!r}, 'w').write('loss=' + sys.argv[1] + '\\n')",
                 "${trialParameters.x}"], extra_spec=_file_collector(str(mine)))
    run = run_experiment(doc)
    assert run.code == 2 and "was not written by a trial of this experiment; kubenas never removes it" in run.stderr
    assert mine.read_text() == "the user's own file\n"
    # the same path, free at the start: the second trial may remove what the first one wrote
    mine.unlink()
    again = run_experiment(doc, workdir=tmp_path / "again")
    assert again.code == 0, again.stderr
    assert [t["condition"] for t in again.results["trials"]] == ["Succeeded"] * 2
