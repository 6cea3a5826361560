"""`kubenas-train retrain` on found architectures, and the `kubenas-train` dispatcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubenas.genotype import Genotype
from kubenas.metrics import parse_lines
from tests.trainer.test_enas_main import ARCH, NN_CONFIG
from trainer import cli, retrain

REPO = Path(__file__).resolve().parents[2]

GENOTYPE = Genotype.build(
    [("separable_convolution_3x3", 0), ("skip_connection", 1), ("dilated_convolution_3x3", 2), ("max_pooling_3x3", 0)],
    [("max_pooling_3x3", 0), ("avg_pooling_3x3", 1), ("skip_connection", 2), ("separable_convolution_3x3", 1)],
)


def test_retrain_darts_genotype_in_katib_printed_form_reports_test_accuracy(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = "Best-Genotype=" + GENOTYPE.to_katib()
    genotype_file = tmp_path / "genotype.txt"
    genotype_file.write_text(GENOTYPE.to_katib())
    code = retrain.main([f"--architecture=@{genotype_file}", "--dataset=digits", "--layers=2", "--init-channels=8",
                         "--epochs=2", "--drop-path=0.1", f"--output-dir={tmp_path / 'out'}"])
    assert code == 0, text
    out = capsys.readouterr().out.splitlines()
    test_acc = [p.value for p in parse_lines(out, ["Test-Accuracy"])]
    assert len(test_acc) == 1 and test_acc[0] > 0.3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["test_accuracy"] == pytest.approx(test_acc[0])
    assert Genotype.from_dict(summary["genotype"]) == GENOTYPE
    assert summary["config"]["drop_path"] == 0.1


def test_retrain_channels_last_on_cpu_matches_the_nchw_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    results = {}
    for flag in ("--channels-last", "--no-channels-last"):
        out_dir = tmp_path / flag
        assert retrain.main([f"--architecture={GENOTYPE.to_json()}", "--dataset=digits", "--layers=2",
                             "--init-channels=8", "--epochs=1", "--train-limit=256", flag,
                             f"--output-dir={out_dir}"]) == 0
        summary = json.loads((out_dir / "summary.json").read_text())
        results[flag] = summary
    capsys.readouterr()
    assert results["--channels-last"]["config"]["channels_last"] is True
    assert results["--no-channels-last"]["config"]["channels_last"] is False
    # the same seeded training in another memory layout: equal up to float summation order
    assert results["--channels-last"]["final"]["Training-Loss"] == pytest.approx(
        results["--no-channels-last"]["final"]["Training-Loss"], rel=1e-3)
    assert results["--channels-last"]["test_loss"] == pytest.approx(results["--no-channels-last"]["test_loss"], rel=1e-2)


def test_retrain_macro_architecture_needs_and_uses_nn_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert retrain.main([f"--architecture={ARCH}", "--dataset=digits"]) == 2
    assert "--nn_config: invalid value None: is required" in capsys.readouterr().err
    assert retrain.main([f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--dataset=digits", "--epochs=2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(parse_lines(out, ["Validation-Accuracy"])) == 2 and parse_lines(out, ["Test-Accuracy"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--architecture=Genotype(normal=[('skip_connection',5)])"], "architecture.normal"),
        (["--architecture=@/nonexistent/genotype.json"], "cannot read the file"),
        ([f"--architecture={GENOTYPE.to_json()}", "--layers=0"], "--layers"),
        ([f"--architecture={GENOTYPE.to_json()}", "--drop-path=2"], "--drop-path"),
    ],
)
def test_retrain_bad_input_exits_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert retrain.main([*args, "--dataset=digits"]) == 2
    assert message in capsys.readouterr().err


def test_cli_registry_names_the_trainers() -> None:
    assert list(cli.TRAINERS) == ["enas", "darts", "enas-search", "retrain", "nb201"]


def test_cli_dispatch_and_unknown_trainer(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["nope"]) == 2
    assert "must be one of ['enas', 'darts', 'enas-search', 'retrain', 'nb201']" in capsys.readouterr().err
    assert cli.run([]) == 2
    assert cli.run(["enas", f"--architecture={ARCH}", f"--nn_config={NN_CONFIG}", "--dataset=digits",
                    "--num_epochs=1", "--train-limit=128"]) == 0
    assert "Validation-Accuracy=" in capsys.readouterr().out
    assert cli.run(["enas", "--help"]) == 0


def test_console_script_runs_as_a_process() -> None:
    script = Path(sys.executable).with_name("kubenas-train")
    assert script.exists(), "the kubenas-train console script is part of the package (pip install -e .)"
    result = subprocess.run([str(script), "retrain", "--architecture={bad", "--dataset=digits"],
                            check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "kubenas-train retrain: error: architecture" in result.stderr
