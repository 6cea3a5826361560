"""The JSON API and the pages over real `kubenas run` work directories (finished runs)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from starlette.testclient import TestClient

from dashboard.app import create_app
from dashboard.local_source import LocalSource
from kubenas.architecture import describe_op
from kubenas.space import ExpandedOp
from tests.dashboard.runs import HOSTILE, HOSTILE_DIR

pytestmark = pytest.mark.e2e


def _q(text: str) -> str:
    return quote(text, safe="")


def _by_name(client: TestClient) -> dict[str, dict[str, Any]]:
    data = client.get("/api/experiments").json()
    return {e["name"]: e for e in data["experiments"]}


def test_list_summarises_each_run_as_its_results_say(client: TestClient, results: dict[str, Any]) -> None:
    listed = _by_name(client)
    assert set(listed) == {"curve-median", "nas-macro", "oneshot-macro"}
    for name, res in results.items():
        entry = listed[name]
        assert entry["status"] == res["status"] == "Succeeded"
        assert entry["reason"] == res["reason"]
        assert entry["algorithm"] == res["algorithm"]
        assert entry["best_trial"] == res["best_trial"]["name"]
        assert entry["best_value"] == res["best_trial"]["objective"]
        assert entry["counts"]["total"] == res["counts"]["total"]
        assert entry["counts"]["Succeeded"] == res["counts"]["succeeded"]
        assert entry["counts"]["EarlyStopped"] == res["counts"]["early_stopped"]
        assert entry["created"] and entry["created"].endswith("Z")
    assert listed["curve-median"]["id"] == HOSTILE_DIR
    assert listed["curve-median"]["counts"]["EarlyStopped"] == 2


def test_experiment_has_trials_spec_reproducibility_and_curves(client: TestClient, results: dict[str, Any],
                                                              runs_dir: Path) -> None:
    res = results["curve-median"]
    detail = client.get(f"/api/experiments/{_q(HOSTILE_DIR)}").json()
    assert [(t["name"], t["condition"]) for t in detail["trials"]] == \
        [(t["name"], t["condition"]) for t in res["trials"]]
    assert {t["assignments"]["note"] for t in detail["trials"]} == {HOSTILE}
    assert detail["spec"] == yaml.safe_load((runs_dir / "curve-median.yaml").read_text())
    assert detail["reproducibility"] == res["reproducibility"]
    assert detail["early_stopping"] is True
    assert detail["best_architecture"] is None  # a hyperparameter search
    curves = client.get(f"/api/experiments/{_q(HOSTILE_DIR)}/curves").json()["curves"]
    with sqlite3.connect(runs_dir / HOSTILE_DIR / "kubenas.db") as conn:
        stored = dict(conn.execute("SELECT trial_name, count(*) FROM observation_logs GROUP BY trial_name").fetchall())
    for trial in res["trials"]:
        values = curves[trial["name"]]["acc"]
        assert len(values) == stored[trial["name"]]
        level = float(trial["assignments"]["level"])
        assert values == pytest.approx([level * (i + 1) / 10 for i in range(len(values))])
        if trial["condition"] == "EarlyStopped":
            assert 2 <= len(values) < 10
        else:
            assert len(values) == 10


def test_trial_has_logs_history_and_output_tail(client: TestClient, results: dict[str, Any]) -> None:
    res = results["curve-median"]
    stopped = next(t for t in res["trials"] if t["condition"] == "EarlyStopped")
    base = f"/api/experiments/{_q(HOSTILE_DIR)}/trials/{_q(stopped['name'])}"
    detail = client.get(base).json()
    assert detail["trial"]["observation"] == stopped["observation"]
    assert [h["condition"] for h in detail["status_history"]] == ["Running", "EarlyStopped"]
    assert detail["status_history"][-1]["time"] == stopped["completion_time"]
    assert "stopped early" in detail["status_history"][-1]["message"]
    assert all(m["metric"] == "acc" for m in detail["metric_logs"]) and len(detail["metric_logs"]) >= 2
    tail = client.get(base + "/log").json()
    assert tail["available"] and "step=1 " in tail["text"] and not tail["truncated"]
    short = client.get(base + "/log?max_bytes=10").json()
    assert short["truncated"] and len(short["text"].encode()) <= 10 and tail["text"].endswith(short["text"])


def test_best_nas_trial_is_drawn_as_a_macro_network(client: TestClient, results: dict[str, Any]) -> None:
    res = results["nas-macro"]
    detail = client.get("/api/experiments/nas-macro").json()
    arch = detail["best_architecture"]
    assert arch["trial"] == res["best_trial"]["name"] and arch["kind"] == "macro"
    layers = [n for n in arch["graphs"][0]["nodes"] if n["id"].startswith("layer")]
    assert len(layers) == 3
    config = yaml.safe_load(res["best_trial"]["assignments"]["nn_config"])
    rows = yaml.safe_load(res["best_trial"]["assignments"]["architecture"])
    assert len(arch["lines"]) == len(rows)
    for i, (line, row) in enumerate(zip(arch["lines"], rows)):
        op = ExpandedOp.from_json(config["embedding"][str(row[0])])
        assert line.startswith(f"layer {i}: {describe_op(op)}"), (line, op)
    skips = sum(sum(row[1:]) for row in rows)
    assert sum(1 for e in arch["graphs"][0]["edges"] if e["kind"] == "skip") == skips


def test_one_shot_search_result_is_drawn_from_the_trials_output(client: TestClient,
                                                                results: dict[str, Any]) -> None:
    """enas-oneshot's trial is given the whole space; what it found is only in its output."""
    res = results["oneshot-macro"]
    assert "architecture" not in res["best_trial"]["assignments"]
    arch = client.get("/api/experiments/oneshot-macro").json()["best_architecture"]
    assert arch["trial"] == res["best_trial"]["name"] and arch["kind"] == "macro"
    assert "Best-Architecture" in arch["source"]
    # oneshot_result.py: layer i takes op i mod 3 and, after the first, skips from the input.
    assert arch["lines"] == ["layer 0: conv 3x3, 8 filters", "layer 1: conv 5x5, 8 filters; skip from input",
                                 "layer 2: max pooling 2x2; skip from input"]
    skips = [(e["source"], e["target"]) for e in arch["graphs"][0]["edges"] if e["kind"] == "skip"]
    assert skips == [("input", "layer1"), ("input", "layer2")]
    # The terminal's results.json names the same architecture in the same words.
    assert res["best_trial"]["architecture"]["text"][1:] == [" " * 2 + line for line in arch["lines"]]


def test_unknown_things_get_clear_errors_not_tracebacks(client: TestClient) -> None:
    missing = client.get("/api/experiments/no-such-run")
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("no experiment 'no-such-run'; known: ")
    assert "nas-macro" in missing.json()["error"]
    trial = client.get("/api/experiments/nas-macro/trials/%2E%2E")
    assert trial.status_code == 404 and "no trial '..'" in trial.json()["error"]
    assert client.get("/api/experiments/nas-macro/trials/%2E%2E/log").status_code == 404
    bad = client.get("/api/experiments/nas-macro/trials/x/log?max_bytes=-5")
    assert bad.status_code == 400 and bad.json()["error"].startswith("max_bytes: '-5'")
    page = client.get("/experiments/no-such-run")
    assert page.status_code == 404 and "no experiment" in page.text and "Traceback" not in page.text
    assert client.get("/nowhere").status_code == 404
    assert client.get("/static/app.py").status_code == 404


def test_every_page_escapes_user_text(client: TestClient, results: dict[str, Any]) -> None:
    trial = results["curve-median"]["trials"][0]["name"]
    pages = ["/", f"/experiments/{_q(HOSTILE_DIR)}", f"/experiments/{_q(HOSTILE_DIR)}/trials/{_q(trial)}",
             f"/experiments/{_q(HOSTILE_DIR + 'x')}"]
    for path in pages:
        body = client.get(path).text
        assert HOSTILE not in body and HOSTILE_DIR not in body, path
        assert "<script>alert" not in body and "<img src=x" not in body, path
    listing = client.get("/").text
    assert "&lt;img src=x onerror=alert(2)&gt;" in listing
    trial_page = client.get(f"/experiments/{_q(HOSTILE_DIR)}/trials/{_q(trial)}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in trial_page


def test_directories_that_are_not_runs_are_named(tmp_path: Path, runs_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    file = tmp_path / "file.txt"
    file.write_text("x")
    source = LocalSource([runs_dir, empty, file, tmp_path / "missing"])
    problems = source.problems()
    assert problems == [
        f"WORKDIR {str(empty)!r}: not a kubenas run (no kubenas.db or experiment.json in it or in its subdirectories)",
        f"WORKDIR {str(file)!r}: is not a directory (give a kubenas run --workdir, or a directory of them such as runs/)",
        f"WORKDIR {str(tmp_path / 'missing')!r}: does not exist",
    ]
    with TestClient(create_app(source)) as c:
        listed = c.get("/api/experiments").json()
        assert listed["problems"] == problems and len(listed["experiments"]) == 3
        assert "does not exist" in c.get("/").text


def test_a_store_that_is_not_sqlite_is_reported_and_the_rest_still_served(tmp_path: Path, runs_dir: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kubenas.db").write_bytes(b"this is not a database" * 100)
    (broken / "experiment.json").write_text('{"experiment": "broken", "pid": null}')
    with TestClient(create_app(LocalSource([runs_dir, broken]))) as c:
        listed = {e["name"]: e for e in c.get("/api/experiments").json()["experiments"]}
        assert listed["broken"]["status"] == "Unreadable"
        assert "not a SQLite database" in listed["broken"]["reason"]
        assert listed["nas-macro"]["status"] == "Succeeded"
        curves = c.get("/api/experiments/broken/curves")
        assert curves.status_code == 503 and "not a SQLite database" in curves.json()["error"]
        assert c.get("/experiments/broken").status_code == 200


def test_a_run_without_a_store_yet_is_listed(tmp_path: Path) -> None:
    starting = tmp_path / "starting"
    starting.mkdir()
    (starting / "experiment.json").write_text('{"experiment": "s", "file": "/nonexistent.yaml", "pid": 1}')
    with TestClient(create_app(LocalSource([starting]))) as c:
        [entry] = c.get("/api/experiments").json()["experiments"]
        assert entry["name"] == "s" and entry["counts"]["total"] == 0 and entry["status"] == "Stopped"
        detail = c.get("/api/experiments/starting").json()
        assert detail["spec"] is None and detail["spec_source"].startswith("unreadable: /nonexistent.yaml")
        assert c.get("/api/experiments/starting/curves").json() == {"curves": {}}

