"""The ENAS example experiments: valid YAML whose trial command our trainer runs as written,
and Katib's own enas-cpu command line (quotes included) against our trainer."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from kubenas.experiment import load_experiment_file
from kubenas.metrics import parse_lines
from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.space import MacroArchitecture, NasConfig, nn_config, primitive_names
from suggestion.algorithms.base import Problem
from suggestion.algorithms.registry import algorithm_class
from tests.trainer.spaces import katib_enas_gpu
from trainer.cli import run as kubenas_train
from trainer.enas.main import build_parser, main, split_args
from trainer.enas.model import ArchitectureError, build_child, parse_child
from trainer.nb201.main import build_parser as nb201_parser
from trainer.nb201.model import build_nb201, parse_nb201

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENAS_EXAMPLES = sorted(p for p in EXAMPLES.glob("enas-*.yaml") if not p.name.startswith("enas-oneshot-"))


def _nas_config(path: Path) -> NasConfig:
    space = load_experiment_file(path).search_space()
    assert space.nas_config is not None
    return space.nas_config


def _command(path: Path) -> list[str]:
    spec = yaml.safe_load(path.read_text())["spec"]["trialTemplate"]
    container = spec["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == spec["primaryContainerName"] == "training-container"
    assert container["image"] == "kubenas/trainer:latest"
    assert container["command"][:3] == ["python", "-m", "trainer.enas"]
    references = {p["name"]: p["reference"] for p in spec["trialParameters"]}
    assert set(references.values()) == {"architecture", "nn_config"}
    return container["command"][3:], references


def _assignment(nas: NasConfig, seed: int) -> dict[str, str]:
    """A random buildable architecture, as the ENAS suggestion would emit it."""
    ops = nas.expanded()
    rng = random.Random(seed)
    while True:
        rows = [[rng.randrange(len(ops))] + [rng.randint(0, 1) for _ in range(i)]
                for i in range(nas.graph_config.num_layers)]
        arch = MacroArchitecture(tuple(tuple(r) for r in rows))
        assignment = {"architecture": arch.to_json(),
                      "nn_config": json.dumps(nn_config(nas.graph_config, ops, arch.op_ids))}
        try:
            build_child(parse_child(assignment["architecture"], assignment["nn_config"]))
        except ArchitectureError:
            continue
        return assignment


def _render(args: list[str], references: dict[str, str], assignment: dict[str, str]) -> list[str]:
    out = []
    for arg in args:
        for name, ref in references.items():
            arg = arg.replace("${trialParameters." + name + "}", assignment[ref])
        out.append(arg)
    return out


def test_there_are_three_enas_examples() -> None:
    assert [p.name for p in ENAS_EXAMPLES] == ["enas-cifar10-gpu.yaml", "enas-digits.yaml", "enas-fashion-mnist.yaml"]


@pytest.mark.parametrize("path", ENAS_EXAMPLES, ids=lambda p: p.name)
def test_example_command_parses_and_its_architectures_build(path: Path) -> None:
    nas = _nas_config(path)
    args, references = _command(path)
    for seed in range(3):
        argv = _render(args, references, _assignment(nas, seed))
        parsed = build_parser().parse_args(argv)
        split_args(parsed)
        spec = parse_child(parsed.architecture, parsed.nn_config)
        build_child(spec)


def test_cifar10_example_uses_katibs_enas_gpu_space() -> None:
    nas = _nas_config(EXAMPLES / "enas-cifar10-gpu.yaml")
    assert nas.expanded() == katib_enas_gpu().expanded()
    assert nas.graph_config == katib_enas_gpu().graph_config


def test_digits_example_trial_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES / "enas-digits.yaml"
    args, references = _command(path)
    assert main(_render(args, references, _assignment(_nas_config(path), 0))) == 0
    accuracy = [p.value for p in parse_lines(capsys.readouterr().out.splitlines(), ["Validation-Accuracy"])]
    assert len(accuracy) == 4 and accuracy[-1] > 0.8


def test_katib_enas_cpu_command_line_runs_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # Katib's enas-cpu.yaml: numLayers 1 over the enas-gpu operations, 32x32x3, CIFAR-10;
    # its command wraps each value in literal double quotes (no shell strips them).
    rng = np.random.default_rng(0)
    data = tmp_path / "cifar10"
    data.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(data / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (40, 3072), dtype=np.uint8),
                         b"labels": [int(v) for v in rng.integers(0, 10, 40)]}, f)
    monkeypatch.setenv("KUBENAS_DATA_DIR", str(tmp_path))
    nas = katib_enas_gpu()
    ops = nas.expanded()
    config = nn_config(nas.graph_config.__class__(1, (32, 32, 3), (10,)), ops, [30])
    katib_style = json.dumps(config).replace('"', "'")
    argv = ["--num_epochs=1", '--architecture="[[30]]"', f'--nn_config="{katib_style}"']
    assert main(argv) == 0
    points = parse_lines(capsys.readouterr().out.splitlines(), ["Validation-Accuracy", "Training-Loss"])
    assert [p.name for p in points] == ["Training-Loss", "Validation-Accuracy"]


NB201_EXAMPLE = EXAMPLES / "nb201-digits.yaml"


def _nb201_command() -> tuple[list[str], dict[str, str]]:
    spec = yaml.safe_load(NB201_EXAMPLE.read_text())["spec"]["trialTemplate"]
    container = spec["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == spec["primaryContainerName"]
    assert container["command"][:2] == ["kubenas-train", "nb201"]
    references = {p["name"]: p["reference"] for p in spec["trialParameters"]}
    assert set(references.values()) == {"architecture", "nn_config"}
    return container["command"][2:], references


def _nb201_suggestions(n: int) -> list[dict[str, str]]:
    """What the example's own algorithm hands out first, through its registry entry."""
    experiment = load_experiment_file(NB201_EXAMPLE)
    problem = Problem(experiment.name, experiment.search_space(), experiment.objective(),
                      experiment.algorithm_settings())
    algorithm = algorithm_class(experiment.algorithm_name)()
    algorithm.validate(problem)
    return [s.assignments for s in algorithm.suggest(problem, [], n)]


def test_nb201_example_uses_the_canonical_cell_space_and_its_suggestions_build() -> None:
    nas = _nas_config(NB201_EXAMPLE)
    assert tuple(primitive_names(nas.operations)) == NB201_PRIMITIVES
    args, references = _nb201_command()
    assignments = _nb201_suggestions(4)
    assert len({a["architecture"] for a in assignments}) > 1
    for assignment in assignments:
        parsed = nb201_parser().parse_args(_render(args, references, assignment))
        spec = parse_nb201(parsed.architecture, parsed.nn_config, parsed.init_channels)
        assert spec.primitives == NB201_PRIMITIVES and spec.num_layers == nas.graph_config.num_layers
        model = build_nb201(spec)
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_nb201_example_trial_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    args, references = _nb201_command()
    assignment = _nb201_suggestions(1)[0]
    assert kubenas_train(["nb201", *_render(args, references, assignment)]) == 0
    accuracy = [p.value for p in parse_lines(capsys.readouterr().out.splitlines(), ["Validation-Accuracy"])]
    assert len(accuracy) == 4
    # A cell whose output node is cut off from its input passes nothing on: chance level.
    if Cell201.from_string(assignment["architecture"]).connected():
        assert accuracy[-1] > 0.5
    else:
        assert accuracy[-1] < 0.3
