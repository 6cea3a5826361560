"""Collectors on hostile output: endless lines, binary, no trailing newline, metrics files
swapped for what never ends, filters that backtrack."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from controller.collector import (
    MAX_LINE_CHARS,
    POLL_BYTES,
    CollectionError,
    FileCollector,
    StdoutCollector,
)


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


@pytest.mark.parametrize("swap", ["fifo", "zero", "link", "dir"])
def test_a_metrics_file_that_is_not_a_regular_file_is_an_error_at_once(tmp_path: Path, swap: str) -> None:
    # Before: open() of a FIFO waited for a writer forever, /dev/zero was read forever.
    path = tmp_path / "metrics.log"
    path.write_text("loss=1\n")
    collector = FileCollector(path, ["loss"])
    assert _pairs(collector.poll()) == [("loss", 1.0)]
    path.unlink()
    outside = tmp_path / "outside.log"
    outside.write_text("loss=0.001\n")
    if swap == "fifo":
        os.mkfifo(path)
    elif swap == "dir":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero" if swap == "zero" else outside)
    start = time.monotonic()
    expected = {"fifo": "is not a regular file (a FIFO)", "dir": "is not a regular file (a directory)",
                "zero": "was replaced by a symbolic link", "link": "was replaced by a symbolic link"}[swap]
    with pytest.raises(CollectionError, match=re.escape(f"metrics file {path} {expected}")):
        collector.poll()
    assert time.monotonic() - start < 1


def test_a_file_growing_without_end_is_read_a_bounded_amount_per_poll(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    with path.open("wb") as fh:
        fh.write(b"#" * 100 + b"\n")
        fh.write(b"loss=0.5\n" * (POLL_BYTES // 9 + 10))
    collector = FileCollector(path, ["loss"])
    first = collector.poll()
    assert 0 < len(first) <= POLL_BYTES // 9
    rest = collector.close()  # the end of the trial reads what is left
    assert len(first) + len(rest) == POLL_BYTES // 9 + 10


def test_a_filter_that_times_out_stops_collection_with_its_reason() -> None:
    collector = StdoutCollector(["loss"], filters=[r"([\w-]+)=(.*a.*a.*a.*a.*!)"])
    assert _pairs(collector.feed("loss=aaaa!\n")) == [("loss", "aaaa!")]
    start = time.monotonic()
    with pytest.raises(CollectionError, match=r"ran over 1 s on one line .*backtracks catastrophically"):
        collector.feed("loss=" + "a" * 20_000 + "?\n")
    assert time.monotonic() - start < 30  # the limit is 1 s; the regex engine checks it coarsely
