"""The ENAS trial program end to end: Katib flags, training on digits, metrics, push, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.metrics import parse_lines
from trainer.enas.main import main

REPO = Path(__file__).resolve().parents[2]
KATIB_NAMES = ["Training-Loss", "Training-Accuracy", "Validation-Loss", "Validation-Accuracy"]

ARCH = "[[0], [2, 0], [1, 1, 0]]"
# Katib's own style: single quotes and numbers written as strings.
NN_CONFIG = ("{'num_layers': 3, 'input_sizes': [8, 8, 1], 'output_sizes': [10], 'embedding': {"
             "'0': {'opt_id': 0, 'opt_type': 'convolution', 'opt_params': {'filter_size': '3', 'num_filter': '32', 'stride': '1'}}, "
             "'1': {'opt_id': 1, 'opt_type': 'separable_convolution', 'opt_params': {'filter_size': '3', 'num_filter': '32', 'stride': '1', 'depth_multiplier': '1'}}, "
             "'2': {'opt_id': 2, 'opt_type': 'reduction', 'opt_params': {'reduction_type': 'max_pooling', 'pool_size': '2'}}}}")


def _flags(*extra: str) -> list[str]:
    return [f'--architecture="{ARCH}"', f'--nn_config="{NN_CONFIG}"', "--dataset=digits", "--num_gpus=0", *extra]


def test_short_digits_run_learns_and_prints_katib_metrics(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(_flags("--num_epochs=3", "--seed=1", f"--output-dir={tmp_path}")) == 0
    lines = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in lines if "Validation-Accuracy=" in line]
    assert len(epoch_lines) == 3
    points = parse_lines(lines, KATIB_NAMES)
    assert [p.name for p in points[:4]] == KATIB_NAMES
    accuracies = [p.value for p in points if p.name == "Validation-Accuracy"]
    assert accuracies[-1] > 0.6, accuracies  # chance is 0.1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final"]["Validation-Accuracy"] == pytest.approx(accuracies[-1], abs=1e-12)
    assert summary["params"] > 1000 and summary["flops"] == 2 * summary["macs"] > 0
    assert summary["mode"] == "macro" and summary["train_seconds"] > 0
    assert (tmp_path / "model.pt").stat().st_size > 4 * summary["params"]


def test_same_seed_gives_identical_metrics_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    runs = []
    for _ in range(2):
        assert main(_flags("--num_epochs=1", "--seed=7", "--train-limit=300")) == 0
        runs.append([(p.name, p.value) for p in parse_lines(capsys.readouterr().out.splitlines(), KATIB_NAMES)])
    assert runs[0] == runs[1]
    assert main(_flags("--num_epochs=1", "--seed=8", "--train-limit=300")) == 0
    other = [(p.name, p.value) for p in parse_lines(capsys.readouterr().out.splitlines(), KATIB_NAMES)]
    assert other != runs[0]


def test_adamw_and_label_smoothing_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_flags("--num_epochs=1", "--optimizer=adamw", "--label-smoothing=0.1", "--train-limit=256")) == 0
    assert "Validation-Accuracy=" in capsys.readouterr().out


def test_bf16_autocast_on_cpu_trains(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(_flags("--num_epochs=2", "--amp", "--train-limit=512", f"--output-dir={tmp_path}")) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["amp"] is True
    losses = [p.value for p in parse_lines(capsys.readouterr().out.splitlines(), ["Training-Loss"])]
    assert len(losses) == 2 and losses[1] < losses[0]


def test_micro_child_trains_on_digits(capsys: pytest.CaptureFixture[str]) -> None:
    genotype = {"normal": [["separable_convolution_3x3", 0], ["skip_connection", 1],
                           ["max_pooling_3x3", 0], ["dilated_convolution_3x3", 2]],
                "reduce": [["max_pooling_3x3", 0], ["avg_pooling_3x3", 1],
                           ["skip_connection", 2], ["separable_convolution_3x3", 0]]}
    config = {"search_mode": "micro", "num_layers": 3, "num_nodes": 2, "input_sizes": [8, 8, 1],
              "output_sizes": [10], "init_channels": 8}
    code = main([f"--architecture={json.dumps(genotype)}", f"--nn_config={json.dumps(config)}",
                 "--dataset=digits", "--num_epochs=2", "--num_gpus=0"])
    assert code == 0
    accuracy = [p.value for p in parse_lines(capsys.readouterr().out.splitlines(), ["Validation-Accuracy"])]
    assert len(accuracy) == 2 and accuracy[-1] > 0.3


class _RecordingDBManager(api_pb2_grpc.DBManagerServicer):
    """A real DBManager servicer on a real socket that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[api_pb2.ReportObservationLogRequest] = []

    def ReportObservationLog(self, request, context):
        self.requests.append(request)
        return api_pb2.ReportObservationLogReply()


def test_push_endpoint_reports_every_epoch_over_grpc(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    servicer = _RecordingDBManager()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_DBManagerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("KATIB_TRIAL_NAME", "enas-digits-abc123")
        assert main(_flags("--num_epochs=2", "--train-limit=200", f"--push-endpoint=127.0.0.1:{port}")) == 0
    finally:
        server.stop(None)
    printed = parse_lines(capsys.readouterr().out.splitlines(), KATIB_NAMES)
    assert [r.trial_name for r in servicer.requests] == ["enas-digits-abc123"] * 2
    pushed = [(m.metric.name, float(m.metric.value)) for r in servicer.requests for m in r.observation_log.metric_logs]
    assert pushed == [(p.name, p.value) for p in printed]
    assert all(m.time_stamp.endswith("Z") for r in servicer.requests for m in r.observation_log.metric_logs)


def test_push_without_trial_name_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KATIB_TRIAL_NAME", raising=False)
    assert main(_flags("--push-endpoint=127.0.0.1:1")) == 2
    assert "KATIB_TRIAL_NAME" in capsys.readouterr().err


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "trainer.enas", *args], check=False, capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


BAD_INPUTS = [
    (["--architecture=[[0], [0, 1", f"--nn_config={NN_CONFIG}"], "architecture: invalid value"),
    ([f"--architecture={ARCH}", "--nn_config={'num_layers': 3,"], "nn_config: invalid value"),
    (["--architecture=[[0], [2, 0]]", f"--nn_config={NN_CONFIG}"], "must have nn_config.num_layers=3 rows"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG.replace('separable_convolution', 'capsule')}"],
     "nn_config.embedding['1'].opt_type"),
    (["--architecture=[[2], [2, 0], [2, 0, 0]]", f"--nn_config={NN_CONFIG.replace(chr(39) + '2' + chr(39) + '}}}', chr(39) + '3' + chr(39) + '}}}')}"],
     "does not fit a 2x2"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--num_epochs=0"], "--num_epochs"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--dataset=imagenet"], "--dataset"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--dataset=mnist5k"], "nn_config.input_sizes"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--batch-size=many"], "--batch-size"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--lr=-1"], "--lr"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--threads=0"], "--threads"),
    ([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--device=tpu"], "--device"),
    ([f"--nn_config={NN_CONFIG}"], "--architecture"),
    (["--architecture=|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|",
      "--nn_config={'num_layers': 1, 'input_sizes': [8, 8, 1], 'output_sizes': [10], 'search_mode': 'nb201'}"],
     "trained by `kubenas-train nb201`"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_input_returns_2_with_one_clear_message(args: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    dataset = [] if any(a.startswith("--dataset") for a in args) else ["--dataset=digits"]
    assert main([*args, *dataset]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if " INFO " not in line]
    assert len(lines) == 1 and message in lines[0], captured.err
    assert lines[0].startswith("kubenas-train enas: error: ")
    assert captured.out == ""


def test_process_exit_status_is_2_without_traceback() -> None:
    result = _run_module("--architecture=[[0], [0, 0], [0, 0, 0], [0, 0, 0, 0]]",
                         "--nn_config=" + NN_CONFIG.replace("'num_layers': 3", "'num_layers': 4")
                         .replace("'stride': '1'}}, '1'", "'stride': '2'}}, '1'"), "--dataset=digits")
    assert result.returncode == 2
    assert "architecture[3] (convolution" in result.stderr and "cannot downsample a 1x1" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_trial_stdout_round_trips_through_the_controllers_collector(tmp_path: Path) -> None:
    from controller.collector import StdoutCollector

    result = _run_module(*_flags("--num_epochs=2", "--train-limit=256", f"--output-dir={tmp_path}"))
    assert result.returncode == 0, result.stderr
    final = json.loads((tmp_path / "summary.json").read_text())["final"]
    for filters in (None, [r"([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)"]):
        collector = StdoutCollector(KATIB_NAMES, filters)
        points = collector.feed(result.stdout) + collector.close()
        assert len(points) == 8
        last = {p.name: p for p in points[4:]}
        stamps = [line.split(" ", 1)[0] for line in result.stdout.splitlines()]
        assert {p.timestamp for p in points[4:]} == {stamps[1]}
        for name in KATIB_NAMES:
            # Katib's own filter drops the exponent, so compare at its precision.
            assert last[name].value == pytest.approx(final[name], rel=1e-9 if filters is None else 1e-6)


def test_unreachable_push_endpoint_fails_the_trial_with_status_1(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "t1")
    from trainer.push import PushReporter

    # Shorten the RPC deadline (default 10 s) so the failure arrives quickly.
    monkeypatch.setattr(PushReporter.__init__, "__defaults__", (0.5,))
    assert main(_flags("--num_epochs=1", "--train-limit=64", "--push-endpoint=127.0.0.1:1")) == 1
    err = capsys.readouterr().err
    assert "--push-endpoint 127.0.0.1:1: ReportObservationLog failed for trial 't1' at epoch 1" in err
