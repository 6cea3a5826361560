"""bench/suggest_latency.py still runs end to end (real servers, tiny call count)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "suggest_latency.py"


def test_benchmark_writes_a_full_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("suggest_latency", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "suggest_latency", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    out = tmp_path / "RESULTS.md"
    bench.main(["--calls", "3", "--out", str(out)])
    text = out.read_text()
    assert "2-core Intel Xeon VM, no GPU" in text
    rows = [line for line in text.splitlines() if line.startswith("| GetSuggestions |")]
    assert len(rows) == 2 * 2 * 3  # algorithms x spaces x history sizes
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(re.fullmatch(r"\d+\.\d\d", c) for c in (cells[5], cells[6], cells[7], cells[10], cells[11])), row
