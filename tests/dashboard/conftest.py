"""Fixtures of the dashboard tests: finished runs made once per session by the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from dashboard.app import create_app
from dashboard.local_source import LocalSource
from tests.dashboard.runs import HOSTILE_DIR, curve_experiment, nas_experiment, oneshot_experiment, run


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/ with a finished early-stopping HPO run (in a directory named with markup) and a
    finished ENAS macro run, and a finished one-shot search (its result only in its output)."""
    root = tmp_path_factory.mktemp("dashboard") / "runs"
    root.mkdir()
    for doc, name in ((curve_experiment(), HOSTILE_DIR), (nas_experiment(), "nas-macro"),
                      (oneshot_experiment(), "oneshot-macro")):
        done = run(doc, root / name)
        assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture(scope="session")
def results(runs_dir: Path) -> dict[str, dict[str, Any]]:
    """results.json of each run, by experiment name."""
    out = {}
    for path in runs_dir.glob("*/results.json"):
        data = json.loads(path.read_text())
        out[data["experiment"]] = data
    return out


@pytest.fixture
def client(runs_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(LocalSource([runs_dir])), raise_server_exceptions=True) as c:
        yield c
