"""Metrics collectors: partial lines, filters, JSON lines, files that appear and rotate."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from controller.collector import (
    CollectorError,
    FileCollector,
    StdoutCollector,
    observation_from_log,
    parse_json_line,
    tee_stream,
)
from controller.store import MetricLog, parse_rfc3339
from controller.store_sqlite import SQLiteStore
from kubenas.metrics import MetricPoint, format_metrics
from kubenas.trials import MetricStrategy, Objective, ObjectiveType


def _pairs(points):
    return [(p.name, p.value) for p in points]


def test_partial_lines_are_held_until_their_newline():
    c = StdoutCollector(["loss", "acc"])
    assert c.feed("epoch 1 lo") == []
    assert c.feed("ss=0.5 ac") == []
    assert _pairs(c.feed("c=0.25\nepoch 2 loss=0.") + c.feed("4\n")) == [
        ("loss", 0.5), ("acc", 0.25), ("loss", 0.4)]
    assert c.feed("acc=0.9") == []
    assert _pairs(c.close()) == [("acc", 0.9)]  # the last line had no newline
    assert c.close() == []


def test_bytes_split_inside_a_utf8_character_and_crlf():
    c = StdoutCollector()
    data = "température=1.5 loss=2\r\n".encode()
    cut = data.index("é".encode()) + 1  # in the middle of the two-byte é
    assert c.feed_bytes(data[:cut]) == []
    assert _pairs(c.feed_bytes(data[cut:])) == [("température", 1.5), ("loss", 2.0)]


def test_names_filter_and_timestamp_prefix_and_non_numbers():
    c = StdoutCollector(["Validation-Accuracy"])
    points = c.feed("2024-05-01T12:00:00Z Train-Accuracy=0.9 Validation-Accuracy=0.8\n"
                    "Validation-Accuracy=nan Validation-Accuracy=1e-3\n")
    assert _pairs(points) == [("Validation-Accuracy", 0.8), ("Validation-Accuracy", 0.001)]
    assert points[0].timestamp == "2024-05-01T12:00:00Z"
    parse_rfc3339(points[1].timestamp)  # stamped when the line completed


def test_writer_format_round_trips_through_the_collector():
    line = format_metrics({"loss": 1 / 3, "acc": 2e-12}, "2024-05-01T12:00:00.5+02:00")
    assert StdoutCollector().feed(line + "\n") == [
        MetricPoint("loss", 1 / 3, "2024-05-01T12:00:00.5+02:00"),
        MetricPoint("acc", 2e-12, "2024-05-01T12:00:00.5+02:00")]


def test_metrics_format_filters():
    c = StdoutCollector(["acc"], filters=[r"\{metricName: ([\w-]+), metricValue: ([\d.]+)\}"])
    assert _pairs(c.feed("{metricName: acc, metricValue: 0.7}\nacc=0.1\n")) == [("acc", 0.7)]
    with pytest.raises(CollectorError, match=r"metricsFormat\[0\].*two groups"):
        StdoutCollector(filters=[r"acc=([\d.]+)"])
    with pytest.raises(CollectorError, match=r"metricsFormat\[1\].*not a valid regex"):
        StdoutCollector(filters=[r"(\w+)=(\d+)", r"(unclosed"])


def test_json_lines():
    assert _pairs(parse_json_line('{"loss": 0.5, "acc": "0.25", "step": 3, "ok": true, '
                                  '"note": "x", "nested": {"a": 1}}')) == [
        ("loss", 0.5), ("acc", 0.25), ("step", 3.0)]
    (p,) = parse_json_line('{"loss": 1, "timestamp": 0}')
    assert p.timestamp == "1970-01-01T00:00:00.000000Z"
    (p,) = parse_json_line('{"loss": 1, "timestamp": "2024-05-01T12:00:00Z"}', ["loss"])
    assert p.timestamp == "2024-05-01T12:00:00Z"
    assert parse_json_line("epoch 3 loss=0.1") == []  # not JSON: ignored, not an error
    assert parse_json_line("[1, 2]") == []
    assert _pairs(parse_json_line('{"loss": 1, "acc": 2}', ["acc"])) == [("acc", 2.0)]


def test_file_collector_text_tails_a_file_that_appears_later(tmp_path):
    path = tmp_path / "metrics.log"
    c = FileCollector(path, ["loss"])
    assert c.poll() == []  # not there yet
    with open(path, "w") as fh:
        fh.write("loss=3\nloss=2")
        fh.flush()
        assert _pairs(c.poll()) == [("loss", 3.0)]
        fh.write("\nloss=1\n")
        fh.flush()
        assert _pairs(c.poll()) == [("loss", 2.0), ("loss", 1.0)]
        assert c.poll() == []
        fh.write("loss=0.5")
    assert _pairs(c.close()) == [("loss", 0.5)]


def test_file_collector_json_and_rotation(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"acc": 0.5}\n{"acc": 0.6}\n')
    c = FileCollector(path, ["acc"], format="json")
    assert _pairs(c.poll()) == [("acc", 0.5), ("acc", 0.6)]
    replacement = tmp_path / "new.json"
    replacement.write_text('{"acc": 0.9}\n')
    os.replace(replacement, path)  # a new file under the same name is read from its start
    assert _pairs(c.poll()) == [("acc", 0.9)]
    path.write_text("")  # truncated
    assert c.poll() == []
    path.write_text('{"acc": 0.1}\n')
    assert _pairs(c.poll()) == [("acc", 0.1)]


def test_file_collector_rejects_an_unknown_format(tmp_path):
    with pytest.raises(CollectorError, match="format: invalid value 'CSV': expected one of TEXT, JSON"):
        FileCollector(tmp_path / "m", format="CSV")


def test_tee_stream_copies_a_real_process_output_and_stores_points_as_they_arrive(tmp_path):
    program = ("import sys, time\n"
               "for i in range(5):\n"
               "    sys.stdout.write(f'step {i} loss={1/(i+1)!r}\\n'); sys.stdout.flush()\n"
               "sys.stdout.write('final acc=0.75')\n")  # no trailing newline
    proc = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE)
    store = SQLiteStore(tmp_path / "k.db")
    log_path = tmp_path / "trial.log"
    with open(log_path, "wb") as log_file:
        points = tee_stream(proc.stdout, StdoutCollector(["loss", "acc"]), log_file,
                            on_points=lambda pts: store.report(
                                "trial", [(p.name, repr(p.value), p.timestamp) for p in pts]))
    assert proc.wait() == 0
    assert log_path.read_text().startswith("step 0 loss=1.0\nstep 1 loss=0.5\n")
    assert log_path.read_text().endswith("final acc=0.75")
    assert _pairs(points) == [("loss", 1 / (i + 1)) for i in range(5)] + [("acc", 0.75)]
    stored = [log.as_point() for log in store.get("trial")]
    assert _pairs(stored) == _pairs(points)
    store.close()


def test_tee_stream_without_a_log_file():
    points = tee_stream(io.BytesIO(b"a=1\nb=2"), StdoutCollector())
    assert _pairs(points) == [("a", 1.0), ("b", 2.0)]


def test_observation_from_log_follows_strategies_and_skips_unavailable():
    objective = Objective(ObjectiveType.MAXIMIZE, "acc", additional_metric_names=("loss",),
                          strategies={"loss": MetricStrategy.LATEST})
    log = [
        MetricLog("acc", "0.5", "2024-01-01T00:00:00Z"),
        MetricPoint("acc", 0.9, "2024-01-01T00:00:01Z"),
        MetricLog("acc", "unavailable", "2024-01-01T00:00:02Z"),
        MetricLog("loss", "0.3", "2024-01-01T00:00:01Z"),
        MetricPoint("loss", 0.4, "2024-01-01T00:00:02Z"),
        MetricPoint("other", 7.0, "2024-01-01T00:00:02Z"),
        MetricPoint("acc", 0.7, "2024-01-01T00:00:03Z"),
    ]
    assert observation_from_log(objective, log) == {"acc": 0.9, "loss": 0.4}
    minimize = Objective(ObjectiveType.MINIMIZE, "loss")
    assert observation_from_log(minimize, log) == {"loss": 0.3}
    assert observation_from_log(minimize, []) == {}
