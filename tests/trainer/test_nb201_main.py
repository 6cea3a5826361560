"""`kubenas-train nb201`: real training on digits, Katib metric lines, one-line errors with status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubenas.metrics import parse_lines
from kubenas.nb201 import NB201_PRIMITIVES
from trainer.cli import TRAINERS
from trainer.cli import run as dispatch
from trainer.nb201.main import main

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
CONFIG = json.dumps({"num_layers": 1, "input_sizes": [8, 8, 1], "output_sizes": [10], "search_mode": "nb201",
                     "primitives": list(NB201_PRIMITIVES)})


def test_training_on_digits_beats_chance_and_prints_katib_metrics(tmp_path: Path, capsys) -> None:
    code = dispatch(["nb201", f"--architecture={BEST}", "--nn-config", CONFIG.replace('"', "'"),
                     "--dataset", "digits", "--epochs", "2", "--init-channels", "8", "--batch-size", "32",
                     "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if "epoch=" in line]
    assert len(lines) == 2
    metrics = parse_lines(lines)
    accuracy = [float(m.value) for m in metrics if m.name == "Validation-Accuracy"]
    assert len(accuracy) == 2 and accuracy[-1] > 0.5  # chance is 0.1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "nb201" and summary["architecture"] == BEST
    assert summary["init_channels"] == 8 and summary["cells_per_stage"] == 1
    assert summary["best_validation_accuracy"] == max(accuracy)
    assert (tmp_path / "model.pt").stat().st_size > 4 * summary["params"]


def test_nb201_is_a_registered_trainer() -> None:
    assert TRAINERS["nb201"] == "trainer.nb201"


@pytest.mark.parametrize(("argv", "needle"), [
    (["--nn-config", CONFIG], "--architecture"),
    (["--architecture", "|skip_connect~0|", "--nn-config", CONFIG], "architecture: invalid value '|skip_connect~0|'"),
    (["--architecture", BEST, "--nn-config", "{oops"], "nn_config: invalid value '{oops'"),
    (["--architecture", BEST, "--nn-config", CONFIG, "--epochs", "0"], "--num_epochs"),
    (["--architecture", BEST, "--nn-config", CONFIG, "--epochs", "two"], "--epochs"),
    (["--architecture", BEST, "--nn-config", CONFIG, "--init-channels", "0"], "--init-channels"),
    (["--architecture", BEST, "--nn-config", CONFIG, "--dataset", "imagenet"], "--dataset"),
    (["--architecture", BEST, "--nn-config", CONFIG.replace("[8, 8, 1]", "[32, 32, 3]")], "nn_config.input_sizes"),
])
def test_bad_input_is_one_line_and_status_two(argv: list[str], needle: str, capsys) -> None:
    defaults = [flag for name, value in (("--dataset", "digits"), ("--epochs", "1")) if name not in argv
                for flag in (name, value)]
    code = main([*argv, *defaults])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if "error:" in x]
    assert len(line) == 1 and line[0].startswith("kubenas-train nb201: error:") and needle in line[0]
