"""`kubenas-train retrain RUN_DIR [--trial NAME]`: the architecture of a `kubenas run` work
directory (results.json and trial output as `kubenas run` writes them), retrained per kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.logic import Outcome, OutcomeReason
from controller.report import results_document, write_results
from controller.store import TrialRow
from kubenas.genotype import Genotype
from kubenas.metrics import parse_lines
from kubenas.trials import Objective, ObjectiveType, TrialCondition
from tests.trainer.test_enas_main import ARCH, NN_CONFIG
from trainer import retrain

OBJ = Objective(ObjectiveType.MAXIMIZE, "Validation-Accuracy")
GENOTYPE = Genotype.build([("separable_convolution_3x3", 0), ("skip_connection", 1)],
                          [("max_pooling_3x3", 0), ("skip_connection", 1)])
NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
FAST = ["--epochs=1", "--train-limit=128", "--device=cpu"]


def write_run(run_dir: Path, trials: list[tuple[TrialRow, str]], experiment: str = "exp",
              yaml_text: str | None = None) -> Path:
    """A work directory as `kubenas run` leaves it: results.json, experiment.json, trials/<name>/stdout.log."""
    rows = []
    for row, output in trials:
        trial_dir = run_dir / "trials" / row.name
        trial_dir.mkdir(parents=True)
        (trial_dir / "stdout.log").write_text(output)
        rows.append(TrialRow(row.name, row.assignments, condition=row.condition, observation=row.observation,
                             workdir=str(trial_dir)))
    write_results(run_dir / "results.json", results_document(
        experiment, "enas", OBJ, Outcome(OutcomeReason.MAX_TRIALS_REACHED, True, "done"), rows))
    if yaml_text is not None:
        (run_dir / "exp.yaml").write_text(yaml_text)
    (run_dir / "experiment.json").write_text(json.dumps({"experiment": experiment, "file": str(run_dir / "exp.yaml")}))
    return run_dir


def ok(name: str, assignments: dict[str, str], value: float) -> TrialRow:
    return TrialRow(name, assignments, condition=TrialCondition.SUCCEEDED, observation={"Validation-Accuracy": value})


TEMPLATE = """
spec:
  trialTemplate:
    trialSpec:
      spec:
        template:
          spec:
            containers:
              - name: training-container
                command: [python, -m, trainer.enas, "--architecture=x", --dataset, digits]
"""


def test_best_enas_macro_trial_retrains_on_the_runs_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    worse = "[[1], [2, 1], [0, 0, 1]]"
    run = write_run(tmp_path / "run", [(ok("exp-aaaa", {"architecture": worse, "nn_config": NN_CONFIG}, 0.5), ""),
                                       (ok("exp-bbbb", {"architecture": ARCH, "nn_config": NN_CONFIG}, 0.9), "")],
                    yaml_text=TEMPLATE)
    caplog.set_level("INFO")
    assert retrain.main([str(run), *FAST, f"--output-dir={tmp_path / 'out'}"]) == 0
    assert len(parse_lines(capsys.readouterr().out.splitlines(), ["Test-Accuracy"])) == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mode"] == "macro"
    assert "retraining trial exp-bbbb" in caplog.text and "layer 1: max pooling 2x2" in caplog.text
    # the dataset came from the trial command (--dataset digits): 8x8 inputs, 10 classes
    assert summary["dataset"] == "digits"
    # a named trial instead of the best; the short name a narrow table shows works too
    caplog.clear()
    assert retrain.main([str(run), "--trial", "aaaa", *FAST]) == 0
    assert "retraining trial exp-aaaa" in caplog.text and "layer 0: separable conv 3x3, 32 filters" in caplog.text


def test_darts_search_trial_retrains_its_best_genotype_with_the_runs_cells(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assignments = {"algorithm-settings": json.dumps({"dataset": "digits", "num_epochs": 1}),
                   "search-space": json.dumps(["separable_convolution_3x3", "skip_connection", "max_pooling_3x3"]),
                   "num-layers": "2"}
    output = f"epoch=1 Validation-Accuracy=0.7\nBest-Genotype={GENOTYPE.to_katib()}\nValidation-Accuracy=0.7\n"
    run = write_run(tmp_path / "run", [(ok("exp-dart", assignments, 0.7), output)])
    assert retrain.main([str(run), *FAST, "--init-channels=4", f"--output-dir={tmp_path / 'out'}"]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert Genotype.from_dict(summary["genotype"]) == GENOTYPE
    assert summary["mode"] == "micro" and summary["dataset"] == "digits"  # from its algorithm-settings


def test_nb201_trial_retrains_on_the_benchmark_skeleton(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = json.dumps({"num_layers": 1, "input_sizes": [8, 8, 1], "output_sizes": [10], "search_mode": "nb201",
                         "init_channels": 4})
    run = write_run(tmp_path / "run", [(ok("exp-cell", {"architecture": NB201, "nn_config": config}, 0.8), "")])
    assert retrain.main([str(run), *FAST, "--dataset=digits", f"--output-dir={tmp_path / 'out'}"]) == 0
    assert len(parse_lines(capsys.readouterr().out.splitlines(), ["Test-Accuracy"])) == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mode"] == "nb201" and summary["architecture"] == NB201


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("missing", [], "RUN_DIR: invalid value"),
    ("empty", [], "it has no results.json"),
    ("running", [], "its run has not finished"),
    ("hpo", [], "has no architecture"),
    ("hpo", ["--trial", "nope"], "--trial: invalid value 'nope': must be a trial of"),
    ("hpo", ["--architecture", ARCH], "give either RUN_DIR or --architecture"),
    ("none", [], "give a `kubenas run` work directory or --architecture"),
])
def test_a_dir_that_is_no_run_or_a_trial_without_architecture_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, args: list[str], message: str) -> None:
    run = tmp_path / "run"
    if setup in ("empty", "running"):
        run.mkdir()
    if setup == "running":
        (run / "kubenas.db").write_bytes(b"")
    if setup == "hpo":
        write_run(run, [(ok("exp-lr", {"lr": "0.1"}, 0.5), "Validation-Accuracy=0.5\n")])
    argv = args if setup == "none" else [str(run), *args]
    assert retrain.main([*argv, *FAST]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
