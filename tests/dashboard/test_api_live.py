"""The dashboard reading a run while `kubenas run` writes it: every answer is a consistent
snapshot, the run is never blocked or damaged, and what it shows converges on results.json."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dashboard.app import create_app
from dashboard.local_source import LocalSource
from tests.dashboard.runs import curve_experiment, spawn

pytestmark = pytest.mark.e2e


def test_reading_all_the_time_while_a_run_writes(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    doc = curve_experiment("busy", levels=["0.3", "0.5", "0.7", "0.9"], sleep=0.05, steps=10, early_stopping=False,
                           algorithm="random")
    doc["spec"]["parallelTrialCount"] = 2
    proc = spawn(doc, root / "busy")
    seen: list[int] = []
    statuses = set()
    try:
        with TestClient(create_app(LocalSource([root]))) as client:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                listed = client.get("/api/experiments")
                assert listed.status_code == 200
                if not listed.json()["experiments"]:
                    continue
                detail = client.get("/api/experiments/busy")
                assert detail.status_code == 200, detail.text
                data = detail.json()
                statuses.add(data["summary"]["status"])
                seen.append(len(data["trials"]))
                curves = client.get("/api/experiments/busy/curves")
                assert curves.status_code == 200, curves.text
                for trial in data["trials"]:
                    # a snapshot never shows more reports of a finished trial than it made
                    assert len(curves.json()["curves"].get(trial["name"], {}).get("acc", [])) <= 10
                    log = client.get(f"/api/experiments/busy/trials/{trial['name']}/log?max_bytes=4096")
                    assert log.status_code == 200, log.text
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
            final = client.get("/api/experiments/busy").json()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert seen == sorted(seen) and seen[-1] >= 1, seen  # trials only ever appear
    assert "Running" in statuses
    results = json.loads((root / "busy" / "results.json").read_text())
    assert final["summary"]["status"] == "Succeeded" and results["counts"]["succeeded"] == 4
    assert [t["name"] for t in final["trials"]] == [t["name"] for t in results["trials"]]
    assert final["summary"]["best_trial"] == results["best_trial"]["name"]
    with sqlite3.connect(root / "busy" / "kubenas.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
