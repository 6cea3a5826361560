"""Metrics collection for trials: a process's stdout (StdOut) or a file it writes (File).

Both read the line format of `kubenas.metrics` (Katib's default regex or the experiment's
metricsFormat filters). Input arrives in chunks that need not end at a line boundary: a
partial line is held back until its newline arrives, or until `close()` says the stream
ended. Points carry the line's own RFC 3339 timestamp or the time the line completed.

The Push collector needs nothing here: the trainer calls the DBManager's
`ReportObservationLog` itself (see README.md).
"""

from __future__ import annotations

import codecs
import errno
import json
import logging
import math
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from controller.store import InvalidLogError, MetricLog, parse_rfc3339
from kubenas import rfc3339
from kubenas.metrics import (
    MAX_LINE_CHARS,
    FilterTimeoutError,
    MetricFormatError,
    MetricPoint,
    compile_filters,
    now_rfc3339,
    parse_line,
)
from kubenas.trials import Objective, observe

__all__ = [
    "FILE_FORMATS",
    "MAX_LINE_CHARS",
    "POLL_BYTES",
    "CollectionError",
    "CollectorError",
    "FileCollector",
    "StdoutCollector",
    "observation_from_log",
    "parse_json_line",
    "tee_stream",
]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
# Most bytes of a metrics file read by one poll: a file that grows faster than we read (or
# never ends) is read on over later polls instead of holding the caller in one.
POLL_BYTES = 4 * 1024 * 1024


class CollectorError(ValueError):
    """A collector is configured wrongly (format, filters). Names the field and what is allowed."""


class CollectionError(Exception):
    """A trial's metrics cannot be collected any more (its metrics file is not a regular file,
    a filter backtracks catastrophically). The message says why and names the path or filter;
    the collector must not be used afterwards."""


class _LineParser:
    """Turns a stream of text chunks into complete lines and each line into points.

    A line longer than MAX_LINE_CHARS keeps only its last MAX_LINE_CHARS characters: a
    trial printing megabytes without a newline (a progress bar redrawn with \r, a dumped
    blob) must not grow our memory or the regex's work without bound, and the metrics of
    such a line are at its end (after the last \r).
    """

    def __init__(self, parse: Callable[[str], list[MetricPoint]]) -> None:
        self._parse = parse
        self._partial = ""
        self._cut = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, text: str) -> list[MetricPoint]:
        if "\n" not in text:  # only the new text: rescanning the held-back part would be quadratic
            self._hold(self._partial + text)
            return []
        first, *lines, rest = text.split("\n")
        lines.insert(0, self._partial + first)
        self._partial, cut, self._cut = "", self._cut, False
        points: list[MetricPoint] = []
        for line in lines:
            if len(line) > MAX_LINE_CHARS or cut:
                log.debug("an output line of %d+ characters was cut to its last %d", len(line), MAX_LINE_CHARS)
                line, cut = line[-MAX_LINE_CHARS:], False
            points.extend(self._parse_one(line.rstrip("\r")))
        self._hold(rest)
        return points

    def _parse_one(self, line: str) -> list[MetricPoint]:
        try:
            return self._parse(line)
        except FilterTimeoutError as exc:
            raise CollectionError(str(exc)) from None

    def _hold(self, partial: str) -> None:
        if len(partial) > MAX_LINE_CHARS:
            partial, self._cut = partial[-MAX_LINE_CHARS:], True
        self._partial = partial

    def feed_bytes(self, data: bytes) -> list[MetricPoint]:
        # The decoder keeps a multi-byte character split across chunks for the next call.
        return self.feed(self._decoder.decode(data))

    def close(self) -> list[MetricPoint]:
        """The stream ended: parse what is left as a last line without a newline."""
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        return self._parse_one(rest.rstrip("\r")) if rest.strip() else []


def _text_parser(names: Sequence[str] | None, filters: Sequence[str] | None
                 ) -> Callable[[str], list[MetricPoint]]:
    try:
        patterns = compile_filters(filters)
    except MetricFormatError as exc:
        raise CollectorError(str(exc)) from None
    wanted = list(names) if names else None
    # Katib keeps whatever a custom metricsFormat filter captures (its DARTS examples report
    # a genotype); with the default regex only numbers can match, so nothing changes there.
    keep_text = bool(filters)
    return lambda line: parse_line(line, wanted, patterns, keep_text=keep_text)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _json_timestamp(raw: object) -> str:
    if isinstance(raw, str) and raw:
        try:
            parse_rfc3339(raw, "timestamp")
            return raw
        except InvalidLogError:
            pass
    seconds = _number(raw)
    if seconds is not None:
        return rfc3339.format_time(datetime.fromtimestamp(seconds, tz=UTC))
    return now_rfc3339()


def parse_json_line(line: str, names: Sequence[str] | None = None) -> list[MetricPoint]:
    """Points of one JSON-lines record: metric names are keys, values numbers or numeric
    strings; an optional "timestamp" (RFC 3339 string or Unix seconds) dates them all.
    A line that is not a JSON object yields nothing (trainers interleave other output)."""
    if not line.strip():
        return []
    try:
        record = json.loads(line)
    except ValueError:
        log.debug("skipping a line that is not JSON: %.80r", line)
        return []
    if not isinstance(record, dict):
        return []
    stamp = _json_timestamp(record.get("timestamp"))
    wanted = set(names) if names else None
    points = []
    for key, raw in record.items():
        if key == "timestamp" or (wanted is not None and key not in wanted):
            continue
        value = _number(raw)
        if value is not None:
            points.append(MetricPoint(str(key), value, stamp))
    return points


def _json_parser(names: Sequence[str] | None, filters: Sequence[str] | None
                 ) -> Callable[[str], list[MetricPoint]]:
    wanted = list(names) if names else None
    return lambda line: parse_json_line(line, wanted)


# Katib's fileSystemPath.format values; the one place that knows every file format.
FILE_FORMATS: Mapping[str, Callable[[Sequence[str] | None, Sequence[str] | None],
                                    Callable[[str], list[MetricPoint]]]] = {
    "TEXT": _text_parser,
    "JSON": _json_parser,
}


class StdoutCollector:
    """Metrics from a trial's stdout, fed as it arrives (`feed` for text, `feed_bytes` for
    raw pipe reads); `close()` at end of stream returns the points of a last unterminated
    line. `names` limits the metrics kept (None or empty = all); `filters` are the
    experiment's metricsFormat regexes (None = Katib's default)."""

    def __init__(self, names: Iterable[str] | None = None,
                 filters: Sequence[str] | None = None) -> None:
        self.names = tuple(names) if names else ()
        self._lines = _LineParser(_text_parser(self.names, filters))

    def feed(self, text: str) -> list[MetricPoint]:
        return self._lines.feed(text)

    def feed_bytes(self, data: bytes) -> list[MetricPoint]:
        return self._lines.feed_bytes(data)

    def close(self) -> list[MetricPoint]:
        return self._lines.close()


class FileCollector:
    """Metrics from a file a trial writes (Katib's fileSystemPath), read incrementally.

    `poll()` returns the points of lines completed since the last poll (reading at most
    POLL_BYTES); it is fine to poll before the file exists. A file that shrinks or is
    replaced is read again from its start. `close()` reads the rest and parses a last line
    without a newline. The path must stay a regular file: a symbolic link, FIFO, device or
    directory in its place raises CollectionError (never followed, never blocked on)."""

    def __init__(self, path: str | os.PathLike[str], names: Iterable[str] | None = None,
                 filters: Sequence[str] | None = None, format: str = "TEXT") -> None:
        key = format.upper() if isinstance(format, str) else format
        if key not in FILE_FORMATS:
            raise CollectorError(f"format: invalid value {format!r}: expected one of "
                                 f"{', '.join(FILE_FORMATS)}")
        self.path = Path(path)
        self.format = key
        self.names = tuple(names) if names else ()
        self._make_parser = lambda: _LineParser(FILE_FORMATS[key](self.names, filters))
        self._lines = self._make_parser()
        self._offset = 0
        self._identity: tuple[int, int] | None = None

    def poll(self, limit: int | None = POLL_BYTES) -> list[MetricPoint]:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: a symbolic link
        # (to /dev/zero, to a file elsewhere) is refused, not read.
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CollectionError(f"metrics file {self.path} was replaced by a symbolic link; "
                                      f"kubenas reads only a regular file the trial writes") from None
            raise CollectionError(f"cannot read metrics file {self.path}: {exc.strerror or exc}") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise CollectionError(f"metrics file {self.path} is not a regular file ({_file_kind(mode)}); "
                                  f"kubenas reads only a regular file the trial writes")
        with os.fdopen(fd, "rb", buffering=0) as fh:
            return self._read_new(fh, limit)

    def _read_new(self, fh: IO[bytes], limit: int | None) -> list[MetricPoint]:
        info = os.fstat(fh.fileno())
        identity = (info.st_dev, info.st_ino)
        if identity != self._identity or info.st_size < self._offset:
            if self._identity is not None:
                log.info("%s was replaced or truncated; reading it from the start", self.path)
            self._identity, self._offset = identity, 0
            self._lines = self._make_parser()
        fh.seek(self._offset)
        points: list[MetricPoint] = []
        budget = info.st_size - self._offset if limit is None else min(limit, info.st_size - self._offset)
        # Up to the size seen now: a file that keeps growing while we read is not chased.
        while budget > 0 and (chunk := fh.read(min(_CHUNK, budget))):
            budget -= len(chunk)
            self._offset += len(chunk)
            points.extend(self._lines.feed_bytes(chunk))
        return points

    def close(self) -> list[MetricPoint]:
        points = self.poll(limit=None)
        return points + self._lines.close()


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def tee_stream(source: IO[bytes], collector: StdoutCollector, log_file: IO[bytes] | None = None,
               on_points: Callable[[list[MetricPoint]], None] | None = None) -> list[MetricPoint]:
    """Read `source` (a process's stdout pipe) until EOF, copying every byte to `log_file`
    and handing each batch of points to `on_points` as soon as its line completes.
    Returns every point. Run it in a thread per trial."""
    read = getattr(source, "read1", source.read)
    collected: list[MetricPoint] = []

    def emit(points: list[MetricPoint]) -> None:
        if points:
            collected.extend(points)
            if on_points is not None:
                on_points(points)

    while chunk := read(_CHUNK):
        if log_file is not None:
            log_file.write(chunk)
            log_file.flush()
        emit(collector.feed_bytes(chunk))
    emit(collector.close())
    return collected


def observation_from_log(objective: Objective, points: Iterable[MetricPoint | MetricLog],
                         keep_text: bool = False) -> dict[str, float | str]:
    """One value per objective metric from a log in time order, per the metric strategies
    (min/max/latest). Store logs with a non-numeric value ("unavailable") are ignored, unless
    `keep_text` (the experiment has a metricsFormat filter): then a text value is kept and
    the latest one is the observation."""
    pairs: list[tuple[str, float | str]] = []
    for point in points:
        if isinstance(point, MetricLog):
            converted = point.as_point(keep_text)
            if converted is None:
                continue
            point = converted
        pairs.append((point.name, point.value))
    return observe(objective, pairs)
