"""One-shot ENAS trainer (trainer.enas_search) on CPU at tiny sizes: shared weights, the
controller's learning, determinism, the printed result retraining, and its input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kubenas.genotype import Genotype
from kubenas.metrics import parse_lines
from kubenas.space import ExpandedOp
from trainer.enas.model import build_child, parse_child
from trainer.enas_search.children import uniform_children
from trainer.enas_search.macro import MacroSupernet
from trainer.enas_search.main import main
from trainer.enas_search.micro import MicroSupernet
from trainer.enas_search.search import SearchConfig, Searcher
from trainer.enas_search.settings import EnasOneshotSettings, SpaceSpec, parse_algorithm_settings
from trainer.retrain import main as retrain_main

ROOT = Path(__file__).resolve().parents[2]
OPS = (
    ExpandedOp(0, "convolution", {"filter_size": 3, "num_filter": 8}),
    ExpandedOp(1, "separable_convolution", {"filter_size": 3, "num_filter": 4}),
    ExpandedOp(2, "reduction", {"reduction_type": "max_pooling", "pool_size": 2}),
)
MACRO = SpaceSpec("macro", 3, (1, 8, 8), 10, ops=OPS)
MICRO = SpaceSpec("micro", 3, (1, 8, 8), 10, primitives=("separable_convolution_3x3", "max_pooling_3x3",
                                                         "skip_connection"), num_nodes=2)
SETTINGS = {"num_epochs": 2, "batch_size": 32, "controller_steps_per_epoch": 3, "final_children": 3,
            "random_state": 3, "dataset": "digits", "init_channels": 4}


def _space_arg(space: SpaceSpec) -> str:
    return json.dumps(space.nn_config())


def _argv(space: SpaceSpec, out: Path, **settings: object) -> list[str]:
    merged = {**SETTINGS, **({"search_mode": "micro", "num_nodes": 2} if space.mode == "micro" else {}), **settings}
    return [f"--algorithm-settings={json.dumps(merged)}", f"--search-space={_space_arg(space)}",
            "--train-limit=192", "--device=cpu", f"--output-dir={out}"]


def test_a_weight_one_child_trains_is_the_weight_another_child_reads(one_thread: None) -> None:
    torch.manual_seed(0)
    model = MacroSupernet(MACRO, 4)
    a = [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]  # layer 0 op 0, layer 1 op 1
    b = [[0, 0, 0, 0], [0, 1, 0, 0], [2, 0, 1, 0]]  # layer 0 op 0 as well, then other ops
    shared = model.get_parameter("layers.0.0.op.1.weight")  # layer 0's convolution
    only_a = model.get_parameter("layers.1.1.op.0.op.1.weight")  # layer 1's separable convolution
    before = shared.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    F.cross_entropy(model(x, a), y).backward()
    optimizer.step()
    assert not torch.equal(shared.detach(), before)  # child a's step moved it
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x, b), y).backward()
    assert shared.grad is not None and shared.grad.abs().sum() > 0  # child b reads the very same tensor
    assert only_a.grad is None  # and runs nothing of the ops it did not pick


def test_micro_children_share_an_edge_op_and_run_only_their_own(one_thread: None) -> None:
    torch.manual_seed(0)
    model = MicroSupernet(MICRO, 4)
    normal_a = [[0, 1, 0, 2], [2, 0, 1, 0]]
    normal_b = [[0, 0, 0, 1], [1, 2, 2, 2]]
    reduce_ = [[0, 1, 2, 2], [2, 2, 2, 2]]
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    F.cross_entropy(model(x, [normal_a, reduce_]), y).backward()
    assert not model.get_submodule("cells.0").reduction
    shared = model.get_parameter("cells.0.ops.0.0.0.op.0.op.1.weight")  # node 0, slot 0, separable conv: both pick it
    assert shared.grad is not None
    grad_a = shared.grad.clone()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x, [normal_b, reduce_]), y).backward()
    assert shared.grad is not None and grad_a.abs().sum() > 0 and shared.grad.abs().sum() > 0
    assert model.get_parameter("cells.0.ops.1.0.0.op.0.op.1.weight").grad is None  # node 1, slot 0: picked by neither


@pytest.fixture
def searcher(one_thread: None) -> Searcher:
    settings = parse_algorithm_settings(json.dumps({**SETTINGS, "controller_learning_rate": 0.05,
                                                    "controller_children_per_step": 8,
                                                    "controller_steps_per_epoch": 25}))
    return Searcher(SearchConfig(settings, MACRO, device="cpu", train_limit=64))


def _share_of_op(searcher: Searcher, op: int, n: int = 400) -> float:
    children = searcher.sample(n)
    return sum(row[0] == op for child in children for row in child) / (n * MACRO.num_layers)


def test_controller_moves_toward_the_op_a_synthetic_reward_favours(searcher: Searcher) -> None:
    def reward(child: list[list[int]], x: torch.Tensor, y: torch.Tensor) -> float:
        return sum(row[0] == 1 for row in child) / len(child)

    searcher.reward = reward  # type: ignore[method-assign]
    before = _share_of_op(searcher, 1)
    entropies = [searcher.controller_epoch()[1] for _ in range(3)]
    after = _share_of_op(searcher, 1)
    assert before < 0.45 and after > before + 0.25, (before, after)
    assert all(0 < e < 100 for e in entropies)


def test_random_sampler_never_trains_the_controller(one_thread: None) -> None:
    settings = parse_algorithm_settings(json.dumps({**SETTINGS, "sampler": "random"}))
    searcher = Searcher(SearchConfig(settings, MACRO, device="cpu", train_limit=64))
    weights = [p.detach().clone() for p in searcher.controller.parameters()]
    reward, entropy, best, _ = searcher.controller_epoch()
    assert 0.0 <= reward <= 1.0 and entropy > 0 and searcher.fits(best)
    assert all(torch.equal(a, b) for a, b in zip(weights, searcher.controller.parameters()))
    ops = {row[0] for child in uniform_children(MACRO, 200, torch.Generator().manual_seed(0)) for row in child}
    assert ops == {0, 1, 2}


def _lines(out: str, prefix: str) -> list[str]:
    return [line.partition("=")[2] for line in out.splitlines() if line.startswith(prefix)]


def test_macro_search_prints_katib_lines_and_its_best_architecture_retrains(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], one_thread: None) -> None:
    assert main(_argv(MACRO, tmp_path)) == 0
    out = capsys.readouterr().out
    names = ["epoch", "Training-Loss", "Training-Accuracy", "Reward-Mean", "Controller-Entropy"]
    points = parse_lines(out.splitlines(), names)
    assert [p.value for p in points if p.name == "epoch"] == [1.0, 2.0]
    assert len(_lines(out, "Current-Architecture=")) == 2
    [best] = _lines(out, "Best-Architecture=")
    architecture = (tmp_path / "architecture.json").read_text().strip()
    nn_config = (tmp_path / "nn_config.json").read_text()
    assert best == architecture and json.loads(_lines(out, "Best-NN-Config=")[0]) == json.loads(nn_config)
    [accuracy] = [p.value for p in parse_lines(out.splitlines(), ["Validation-Accuracy"])]
    summary = json.loads((tmp_path / "search.json").read_text())
    assert summary["best"]["validation_accuracy"] == accuracy == max(c["validation_accuracy"] for c in summary["candidates"])
    assert summary["supernet_images_per_second"] > 0 and summary["peak_rss_bytes"] > 0
    assert (tmp_path / "architecture.png").read_bytes().startswith(b"\x89PNG")
    spec = parse_child(best, nn_config)  # the enas trainer's parser accepts it as printed
    assert spec.mode == "macro" and spec.num_layers == 3
    build_child(spec)
    assert retrain_main([f"--architecture=@{tmp_path / 'architecture.json'}", f"--nn_config={nn_config}",
                         "--dataset=digits", "--num_epochs=1", "--train-limit=128", "--device=cpu"]) == 0
    assert "Test-Accuracy=" in capsys.readouterr().out


def test_micro_search_prints_the_genotype_and_it_retrains(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          one_thread: None) -> None:
    assert main(_argv(MICRO, tmp_path, num_epochs=1)) == 0
    out = capsys.readouterr().out
    [best] = _lines(out, "Best-Genotype=")
    genotype = Genotype.from_json((tmp_path / "architecture.json").read_text())
    assert Genotype.parse_katib(best) == genotype and genotype.primitives <= set(MICRO.primitives)
    assert (tmp_path / "cells.png").stat().st_size > 0
    nn_config = (tmp_path / "nn_config.json").read_text()
    assert retrain_main([f"--architecture=@{tmp_path / 'architecture.json'}", f"--nn_config={nn_config}",
                         "--dataset=digits", "--num_epochs=1", "--train-limit=128", "--device=cpu"]) == 0


def test_same_seed_same_search_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str], one_thread: None) -> None:
    outputs = []
    for run in ("a", "b"):
        assert main(_argv(MACRO, tmp_path / run, num_epochs=1)) == 0
        outputs.append(capsys.readouterr().out)
        history = json.loads((tmp_path / run / "search.json").read_text())["history"]
        outputs.append(json.dumps([{k: v for k, v in h.items() if k != "seconds"} for h in history]))
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]


def _one_op_space(layers: int, input_sizes: list[int], op_type: str, params: dict[str, int]) -> str:
    embedding = {"0": {"opt_type": op_type, "opt_params": params}}
    return "--search-space=" + json.dumps({"num_layers": layers, "input_sizes": input_sizes, "output_sizes": [10],
                                           "embedding": embedding})


@pytest.mark.parametrize(("argv", "field"), [
    (["--algorithm-settings={'no_such': 1}"], "--algorithm-settings.no_such"),
    (["--algorithm-settings={'sampler': 'greedy'}"], "--algorithm-settings.sampler"),
    (["--algorithm-settings={'num_epochs': 0}"], "--algorithm-settings.num_epochs"),
    (["--algorithm-settings={'child_lr': 0.01, 'child_lr_min': 0.1}"], "--algorithm-settings.child_lr_min"),
    (["--algorithm-settings=[1]"], "--algorithm-settings"),
    (["--search-space=not json"], "--search-space"),
    (["--algorithm-settings={'search_mode': 'micro'}"], "--search-space.search_mode"),
    ([_one_op_space(2, [8, 8, 1], "conv", {})], "--search-space.embedding['0'].opt_type"),
    ([_one_op_space(5, [8, 8, 1], "reduction", {"pool_size": 2})], "--search-space.num_layers"),
    ([_one_op_space(2, [32, 32, 3], "convolution", {})], "--search-space.input_sizes"),
    (["--dataset=imagenet"], "--dataset"),
    (["--train-limit=0"], "--train-limit"),
])
def test_bad_input_exits_2_naming_the_field(argv: list[str], field: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], one_thread: None) -> None:
    base = _argv(MACRO, tmp_path)
    flags = {a.partition("=")[0] for a in argv}
    merged = [a for a in base if a.partition("=")[0] not in flags] + argv
    assert main(merged) == 2
    err = capsys.readouterr().err
    assert f"error: {field}: invalid value" in err and "Traceback" not in err, err
    assert not (tmp_path / "architecture.json").exists()


def test_torchrun_two_gloo_ranks_search_exactly_like_one_process(tmp_path: Path) -> None:
    """Two CPU ranks (standing in for two GPUs) against one process cutting each minibatch in
    the same two chunks: the same seed gives the same printed search, line for line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    one = subprocess.run([sys.executable, "-m", "trainer.enas_search", *_argv(MACRO, tmp_path / "one"),
                          "--grad-chunks=2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    two = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2",
                          "-m", "trainer.enas_search", *_argv(MACRO, tmp_path / "two")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 ranks agree on the shared weights and the controller: True" in two.stderr
    assert len(_lines(two.stdout, "Best-Architecture=")) == 1  # rank 0 alone prints
    assert two.stdout == one.stdout
    assert (tmp_path / "two" / "architecture.json").read_text() == (tmp_path / "one" / "architecture.json").read_text()


def test_console_script_reports_a_bad_setting_with_status_2() -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "kubenas-train"), "enas-search",
                           "--algorithm-settings={'controller_baseline_decay': 2}", f"--search-space={_space_arg(MACRO)}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "controller_baseline_decay" in proc.stderr and "(0, 1]" in proc.stderr and "Traceback" not in proc.stderr


def test_settings_defaults_are_the_documented_one_shot_ones() -> None:
    s = EnasOneshotSettings()
    assert (s.sampler, s.search_mode, s.child_lr_schedule, s.controller_train_steps) == ("enas", "macro", "cosine", 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("space", [MACRO, MICRO], ids=["macro", "micro"])
def test_cuda_search_with_bf16_and_channels_last(space: SpaceSpec, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The CUDA path: data on the GPU, bf16 autocast and channels_last (both on by default there)."""
    argv = [a for a in _argv(space, tmp_path) if a != "--device=cpu"] + ["--device=cuda"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert len(_lines(out, "Best-Genotype=" if space.mode == "micro" else "Best-Architecture=")) == 1
    assert json.loads((tmp_path / "search.json").read_text())["device"].startswith("cuda")
