"""Collectors on hostile output: endless lines, binary, no trailing newline."""

from __future__ import annotations

import time
from pathlib import Path

from controller.collector import MAX_LINE_CHARS, FileCollector, StdoutCollector


def _pairs(points):  # type: ignore[no-untyped-def]
    return [(p.name, p.value) for p in points]


def test_a_100_mb_line_without_newline_costs_neither_time_nor_memory() -> None:
    # Before: each chunk rescanned and re-copied the held-back line (quadratic), and the
    # whole line was then handed to the regex.
    collector = StdoutCollector(["loss"])
    chunk = b"x" * 65536
    start = time.monotonic()
    for _ in range(1600):
        assert collector.feed_bytes(chunk) == []
    assert len(collector._lines._partial) <= MAX_LINE_CHARS
    assert _pairs(collector.feed_bytes(b" loss=0.5\nloss=0.25")) == [("loss", 0.5)]
    assert time.monotonic() - start < 3
    assert _pairs(collector.close()) == [("loss", 0.25)]


def test_a_progress_bar_line_keeps_the_metrics_at_its_end() -> None:
    collector = StdoutCollector(["loss"])
    bar = "".join(f"\r{i:>3}%|{'#' * (i // 5):<20}|" for i in range(101)) * 200
    assert len(bar) > MAX_LINE_CHARS
    assert _pairs(collector.feed(bar + " loss=0.125\n")) == [("loss", 0.125)]


def test_binary_output_is_survived_and_metrics_around_it_are_kept() -> None:
    collector = StdoutCollector(["loss"])
    points = collector.feed_bytes(b"loss=1\n" + bytes(range(256)) * 64 + b"\n\xff\xfeloss=2\n\x00loss=3")
    points += collector.close()
    assert _pairs(points) == [("loss", 1.0), ("loss", 2.0), ("loss", 3.0)]


def test_a_multibyte_character_split_between_chunks(tmp_path: Path) -> None:
    collector = StdoutCollector(["präzision"])
    data = "präzision=0.75\n".encode()
    points = [p for i in range(len(data)) for p in collector.feed_bytes(data[i:i + 1])]
    assert _pairs(points) == [("präzision", 0.75)]


def test_a_file_with_an_endless_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    collector = FileCollector(path, ["loss"])
    with path.open("wb") as fh:
        fh.write(b"loss=0.5\n")
        fh.flush()
        assert _pairs(collector.poll()) == [("loss", 0.5)]
        fh.write(b"y" * (4 * MAX_LINE_CHARS) + b" loss=0.25")
    assert _pairs(collector.close()) == [("loss", 0.25)]
