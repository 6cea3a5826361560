"""`python -m trainer.darts` end to end on digits (real data, real training, CPU), and its errors."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kubenas.genotype import GENOTYPE_LINE, Genotype
from kubenas.metrics import parse_lines
from trainer.darts.decode import decode_genotype
from trainer.darts.main import main

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SPACE = "\"['separable_convolution_3x3', 'max_pooling_3x3', 'skip_connection']\""  # Katib's quoting
SETTINGS = ("{'num_epochs': '2', 'init_channels': 4, 'num_nodes': 2, 'stem_multiplier': 1, "
            "'batch_size': 32, 'random_state': 5, 'print_step': 2, 'order': 'second', 'partial_channels': 2}")


def _env() -> dict[str, str]:
    # One OpenMP thread: two spin against the other processes of a shared 2-core box.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("darts")
    cmd = [sys.executable, "-m", "trainer.darts", f"--algorithm-settings={SETTINGS}", f"--search-space={SPACE}",
           '--num-layers="3"', "--dataset=digits", "--device=cpu", "--train-limit=256", f"--output-dir={out}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


def test_search_prints_katib_metrics_each_epoch(search: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, _ = search
    lines = proc.stdout.splitlines()
    points = parse_lines(lines, ["epoch", "Training-Loss", "Training-Accuracy", "Validation-Loss", "Validation-Accuracy"])
    by_name: dict[str, list[float]] = {}
    for p in points:
        by_name.setdefault(p.name, []).append(p.value)
    assert by_name["epoch"] == [1.0, 2.0]
    assert all(0.0 <= a <= 1.0 for a in by_name["Validation-Accuracy"])
    assert by_name["Training-Loss"][1] < 2.5  # ln(10) = 2.30 at chance: it learns, not diverges
    assert sum(1 for line in lines if line.startswith("Current-Genotype=Genotype(")) == 2


def test_best_genotype_line_matches_katib_regex_and_the_json(search: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = search
    found = [GENOTYPE_LINE.search(line) for line in proc.stdout.splitlines() if line.startswith("Best-Genotype=")]
    assert len(found) == 1 and found[0] is not None and found[0].group(1) == "Best-Genotype"
    printed = Genotype.parse_katib(found[0].group(2))
    saved = Genotype.from_json((out / "genotype.json").read_text())
    assert printed == saved
    assert saved.num_nodes == 2 and "none" not in saved.primitives
    assert saved.primitives <= {"separable_convolution_3x3", "max_pooling_3x3", "skip_connection"}


def test_outputs_hold_the_final_alphas_and_a_picture(search: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = search
    alphas = json.loads((out / "alphas.json").read_text())
    assert alphas["primitives"] == ["none", "separable_convolution_3x3", "max_pooling_3x3", "skip_connection"]
    assert len(alphas["alpha_normal"]) == 5 and len(alphas["alpha_normal"][0]) == 4
    assert alphas["alpha_normal"] != alphas["alpha_reduce"]
    assert (out / "cells.png").read_bytes()[:4] == b"\x89PNG"


def test_partial_channels_learn_edge_weights_that_the_genotype_uses(
        search: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    # partial_channels 2 and edge_normalization left at "auto": PC-DARTS' betas are on.
    proc, out = search
    alphas = json.loads((out / "alphas.json").read_text())
    assert alphas["edge_normalization"] is True
    assert len(alphas["beta_normal"]) == len(alphas["beta_reduce"]) == 5
    last = [line for line in proc.stdout.splitlines() if line.startswith("Current-Genotype=")][-1]
    tensors = {k: torch.tensor(alphas[k]) for k in ("alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce")}
    decoded = decode_genotype(tensors["alpha_normal"], tensors["alpha_reduce"], alphas["primitives"], 2,
                              tensors["beta_normal"], tensors["beta_reduce"])
    assert decoded == Genotype.parse_katib(last.partition("=")[2])


def test_retrain_builds_and_trains_the_found_genotype(search: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = search
    cmd = [str(BIN / "kubenas-train"), "retrain", f"--architecture=@{out / 'genotype.json'}", "--dataset=digits",
           "--num-epochs=1", "--layers=2", "--init-channels=4", "--train-limit=256", "--device=cpu", "--batch-size=32"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = [p.value for p in parse_lines(proc.stdout.splitlines(), ["Validation-Accuracy"])]
    assert accuracy and 0.0 <= accuracy[-1] <= 1.0


def test_channels_last_on_cpu_searches_like_the_contiguous_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """--channels-last changes the memory layout only: the same seeded search, the same alphas."""
    caplog.set_level(logging.INFO, logger="trainer.darts.search")
    settings = ("{'num_epochs': 1, 'init_channels': 4, 'num_nodes': 2, 'stem_multiplier': 1, 'batch_size': 32, "
                "'random_state': 3, 'order': 'second', 'partial_channels': 2, 'alpha_lr': 0.05}")
    alphas = {}
    for flag in ("--channels-last", "--no-channels-last"):
        out = tmp_path / flag
        assert main([f"--algorithm-settings={settings}", f"--search-space={SPACE}", "--num-layers=3",
                     "--dataset=digits", "--device=cpu", "--train-limit=128", flag, f"--output-dir={out}"]) == 0
        alphas[flag] = json.loads((out / "alphas.json").read_text())
    capsys.readouterr()
    layouts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("DARTS search:")]
    assert [m.split(", ")[-1] for m in layouts] == ["channels_last layout", "NCHW layout"], layouts
    first, second = (torch.tensor(alphas[f]["alpha_normal"]) for f in ("--channels-last", "--no-channels-last"))
    assert first.abs().max() > 1e-2  # the architecture steps moved them far from their 1e-3 * N(0, 1) start
    torch.testing.assert_close(first, second, rtol=1e-3, atol=1e-5)


# The AVX2 kernels a CPU without AVX-512 runs (torch's and oneDNN's), selectable on any x86 CPU.
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
# issue 14's reproduction: channels_last + partial channels + one thread aborted in glibc
# (`corrupted size vs. prev_size`) on AVX2 CPUs; trainer.ops.SampledPointwiseConv says why.
_AVX2_REPRO = """
import sys, torch
torch.set_num_threads(1)
from trainer.darts.main import main
settings = ("{'num_epochs': 1, 'init_channels': 4, 'num_nodes': 2, 'stem_multiplier': 1, 'batch_size': 32, "
            "'random_state': 3, 'order': 'second', 'partial_channels': 2, 'alpha_lr': 0.05}")
sys.exit(main([f"--algorithm-settings={settings}", f"--search-space={sys.argv[1]}", "--num-layers=3",
               "--dataset=digits", "--device=cpu", "--train-limit=128", "--channels-last",
               f"--output-dir={sys.argv[2]}"]))
"""


def test_channels_last_partial_channels_one_thread_survive_the_avx2_kernels(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _AVX2_REPRO, SPACE, str(tmp_path)], cwd=ROOT,
                          env={**_env(), **AVX2}, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert "corrupted" not in proc.stderr and "channels_last layout" in proc.stderr
    assert sum(1 for line in proc.stdout.splitlines() if line.startswith("Best-Genotype=Genotype(")) == 1
    alphas = torch.tensor(json.loads((tmp_path / "alphas.json").read_text())["alpha_normal"])
    assert alphas.shape == (5, 4) and bool(torch.isfinite(alphas).all()) and alphas.abs().max() > 1e-2


GOOD = ["--search-space=['skip_connection']", "--num-layers=1", "--dataset=digits"]


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--search-space=[]", "--num-layers=1"], "--search-space"),
        (["--search-space=['none']", "--num-layers=1"], "--search-space"),
        (["--search-space=['conv_7x7x']", "--num-layers=1"], "--search-space"),
        (["--search-space=['skip_connection'", "--num-layers=1"], "--search-space"),
        (["--search-space=skip_connection", "--num-layers=1"], "--search-space"),
        ([*GOOD[:1], "--num-layers=0"], "--num-layers"),
        ([*GOOD[:1], "--num-layers=two"], "--num-layers"),
        ([*GOOD, "--algorithm-settings={'learning_rate': 1}"], "learning_rate"),
        ([*GOOD, "--algorithm-settings={'num_epochs': 0}"], "num_epochs"),
        ([*GOOD, "--algorithm-settings={'order': 'third'}"], "order"),
        ([*GOOD, "--algorithm-settings=[1, 2]"], "--algorithm-settings"),
        ([*GOOD, "--algorithm-settings={'partial_channels': 3}"], "partial_channels"),
        ([*GOOD, "--algorithm-settings={'edge_normalization': 'maybe'}"], "edge_normalization"),
        ([*GOOD[:2], "--dataset=imagenet"], "--dataset"),
        ([*GOOD, "--device=tpu"], "--device"),
        ([*GOOD, "--bogus-flag"], "--bogus-flag"),
        (["--num-layers=1"], "--search-space"),
    ],
)
def test_bad_flags_exit_2_with_one_clear_line(argv: list[str], field: str, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    device = [] if any(a.startswith("--device") for a in argv) else ["--device=cpu"]
    try:
        code = main([*argv, *device, f"--output-dir={tmp_path}"])
    except SystemExit as exc:  # argparse's own errors (unknown or missing flags)
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and field in err[0], err
    assert not list(tmp_path.iterdir())


def test_console_script_reports_an_unknown_primitive_with_status_2() -> None:
    proc = subprocess.run([str(BIN / "kubenas-train"), "darts", '--search-space=["conv_3x3"]', "--num-layers=2"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 2
    assert "--search-space" in proc.stderr and "conv_3x3" in proc.stderr and "Traceback" not in proc.stderr


def test_torchrun_two_cpu_ranks_search_in_step(tmp_path: Path) -> None:
    """Two gloo ranks (CPU stands in for two GPUs): one printed result, replicas identical.

    Partial channels 2 turn PC-DARTS' edge weights on, so the agreement check covers the
    all-reduced betas as well as the alphas and weights."""
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", "-m", "trainer.darts",
           ("--algorithm-settings={'num_epochs': 1, 'init_channels': 4, 'num_nodes': 2, 'stem_multiplier': 1, "
            "'batch_size': 16, 'random_state': 3, 'partial_channels': 2}"),
           "--search-space=['separable_convolution_3x3', 'skip_connection']", "--num-layers=3",
           "--dataset=digits", "--device=cpu", "--train-limit=256", f"--output-dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 ranks agree on alphas and weights: True" in proc.stderr
    best = [line for line in proc.stdout.splitlines() if line.startswith("Best-Genotype=")]
    assert len(best) == 1
    assert Genotype.parse_katib(best[0].partition("=")[2]) == Genotype.from_json((tmp_path / "genotype.json").read_text())
    assert "beta_normal" in json.loads((tmp_path / "alphas.json").read_text())


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_search_with_bf16_channels_last_and_partial_channels(tmp_path: Path) -> None:
    """The CUDA path: data on the GPU, bf16 autocast, channels_last, second order, PC-DARTS."""
    settings = ("--algorithm-settings={'num_epochs': 1, 'init_channels': 8, 'num_nodes': 2, 'batch_size': 32, "
                "'random_state': 0, 'partial_channels': 2}")
    code = main([settings,
                 "--search-space=['separable_convolution_3x3', 'max_pooling_3x3', 'skip_connection']",
                 "--num-layers=3", "--dataset=digits", "--device=cuda", f"--output-dir={tmp_path}"])
    assert code == 0
    assert "none" not in Genotype.from_json((tmp_path / "genotype.json").read_text()).primitives
