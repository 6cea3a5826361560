"""Trainer benchmarks: child-network training throughput, and time to a target accuracy.

  python bench/trainer_bench.py throughput [--device cpu|cuda] [--batch-size 64] [--threads N]
  python bench/trainer_bench.py time-to-accuracy --results runs/<exp>/results.json [--target 0.90]

`throughput` trains an 8-layer architecture over Katib's enas-gpu space at 32x32x3 on the
`synthetic` dataset in four variants — fp32/bf16 x eager/compiled — each in a fresh
process (so peak memory is per variant), and reports median images/s over timed windows
and the ratio to fp32 eager measured in the same run. Peak memory is the process's peak
RSS on CPU and torch.cuda.max_memory_allocated on CUDA. The memory layout follows the
trainers' default (channels_last on CUDA, NCHW on CPU) unless a variant names it:
`fp32-nchw`, `fp32-channels-last`, `bf16-channels-last` (`--variants` picks the rows).
`--genotype FILE` trains the network `kubenas-train retrain` builds from a DARTS genotype
(`--layers`, `--init-channels`, `--input-shape H,W,C`) instead of Katib's architecture.

`time-to-accuracy` retrains the best architecture of a `kubenas run` results file on the
full Fashion-MNIST training split and reports the wall time until validation accuracy
first reaches the target.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubenas.genotype import Genotype
from kubenas.space import GraphConfig, MacroArchitecture, nn_config
from tests.trainer.spaces import KATIB_EXAMPLE_ARCHITECTURE, katib_ops
from trainer.data import batches, load_dataset
from trainer.enas.model import ChildSpec, build_child, parse_child
from trainer.train import (
    TrainConfig,
    count_macs,
    count_params,
    fit,
    on_cuda_unless_set,
    seed_everything,
)

# variant: (bf16 autocast, torch.compile, channels_last; None = the trainers' default for the device)
VARIANTS = {"fp32-eager": (False, False, None), "bf16-eager": (True, False, None),
            "fp32-compiled": (False, True, None), "bf16-compiled": (True, True, None),
            "fp32-nchw": (False, False, False), "fp32-channels-last": (False, False, True),
            "bf16-channels-last": (True, False, True)}
DEFAULT_VARIANTS = "fp32-eager,bf16-eager,fp32-compiled,bf16-compiled"


def _katib_model() -> tuple[torch.nn.Module, tuple[int, int, int]]:
    arch = MacroArchitecture(tuple(tuple(r) for r in KATIB_EXAMPLE_ARCHITECTURE))
    config = nn_config(GraphConfig(8, (32, 32, 3), (10,)), katib_ops(), arch.op_ids)
    spec = parse_child(arch.to_json(), json.dumps(config))
    return build_child(spec), spec.input_shape


def _genotype_model(path: str, layers: int, init_channels: int,
                    input_shape: tuple[int, int, int]) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    genotype = Genotype.from_json(Path(path).read_text())
    h, w, c = input_shape
    spec = ChildSpec((c, h, w), 10, layers, genotype=genotype, init_channels=init_channels)
    return build_child(spec), spec.input_shape


def one_variant(variant: str, device_name: str, batch_size: int, windows: int, steps: int,
                genotype: tuple[str, int, int, tuple[int, int, int]] | None = None) -> dict:
    """Time `windows` windows of `steps` training steps after warm-up; run in its own process."""
    amp, compiled, layout = VARIANTS[variant]
    device = torch.device(device_name)
    generator = seed_everything(0, device)
    model, shape = _genotype_model(*genotype) if genotype else _katib_model()
    model = model.to(device)
    channels_last = on_cuda_unless_set(layout, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    splits = load_dataset("synthetic", device=device, input_shape=shape, num_classes=10, size=4096)
    step_model = torch.compile(model) if compiled else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def data():
        while True:
            yield from batches(splits.train, batch_size, shuffle=True, generator=generator, drop_last=True)

    stream = data()

    def step() -> None:
        x, y = next(stream)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(step_model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    started = time.perf_counter()
    for _ in range(3):  # warm-up (includes compilation)
        step()
    sync()
    warmup = time.perf_counter() - started
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(steps * batch_size / (time.perf_counter() - t0))
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"variant": variant, "median_images_per_s": statistics.median(rates), "rates": rates,
            "peak_memory_mib": peak / 2**20, "warmup_s": warmup, "channels_last": channels_last,
            "params": count_params(model), "macs": count_macs(model, shape)}


def throughput(args: argparse.Namespace) -> None:
    rows = []
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        sys.exit(f"--variants: invalid value {args.variants!r}: allowed variants are {', '.join(VARIANTS)}")
    model_flags = ([] if args.genotype is None else
                   ["--genotype", args.genotype, "--layers", str(args.layers), "--init-channels",
                    str(args.init_channels), "--input-shape", ",".join(map(str, args.input_shape))])
    for variant in variants:
        cmd = [sys.executable, __file__, "one", variant, "--device", args.device, "--batch-size", str(args.batch_size),
               "--windows", str(args.windows), "--steps", str(args.steps), "--threads", str(args.threads),
               *model_flags]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            rows.append({"variant": variant, "error": out.stderr.strip().splitlines()[-1][:200]})
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    base_variant = variants[0]
    base = next((r["median_images_per_s"] for r in rows if r["variant"] == base_variant and "error" not in r), None)
    model = f"genotype {args.genotype} ({args.layers} layers, {args.init_channels} channels, " \
            f"input {args.input_shape})" if args.genotype else "Katib's 8-layer enas-gpu architecture, 32x32x3"
    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"\ndevice: {device}; torch {torch.__version__}; threads {args.threads}; batch {args.batch_size}; "
          f"{args.windows} windows x {args.steps} steps after 3 warm-up steps; model: {model}")
    print(f"| variant | channels_last | median images/s | vs {base_variant} | peak memory (MiB) | warm-up s |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['variant']} | | failed: {r['error']} | | | |")
            continue
        ratio = r["median_images_per_s"] / base if base else float("nan")
        print(f"| {r['variant']} | {'yes' if r['channels_last'] else 'no'} | {r['median_images_per_s']:.1f} | {ratio:.2f}x | {r['peak_memory_mib']:.0f} | "
              f"{r['warmup_s']:.1f} |")
    ok = [r for r in rows if "error" not in r]
    if ok:
        print(f"\nmodel: {ok[0]['params']} parameters, {2 * ok[0]['macs'] / 1e6:.1f} MFLOPs per image (forward)")


def time_to_accuracy(args: argparse.Namespace) -> None:
    best = json.loads(Path(args.results).read_text())["best_trial"]
    assignments = best["assignments"]
    spec = parse_child(assignments["architecture"], assignments["nn_config"])
    device = torch.device(args.device)
    started = time.perf_counter()
    splits = load_dataset("fashion-mnist", args.data_dir, device)
    load_s = time.perf_counter() - started
    torch.manual_seed(0)
    model = build_child(spec, dropout=args.dropout).to(device)
    reached: dict[str, float] = {}
    t0 = time.perf_counter()

    def report(epoch: int, metrics: dict) -> None:
        elapsed = time.perf_counter() - t0
        print(f"epoch={epoch} seconds={elapsed:.1f} " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
              flush=True)
        if "epoch" not in reached and metrics["Validation-Accuracy"] >= args.target:
            reached.update({"epoch": epoch, "seconds": elapsed, "accuracy": metrics["Validation-Accuracy"]})

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size)
    result = fit(model, splits, config, report)
    print(json.dumps({"architecture": assignments["architecture"], "trial_objective": best["objective"],
                      "params": count_params(model), "dataset_load_s": round(load_s, 1),
                      "target": args.target, "reached": reached or None,
                      "best_validation_accuracy": max(h["Validation-Accuracy"] for h in result.history),
                      "images_per_s": round(result.images_per_second, 1), "epochs": args.epochs,
                      "dropout": args.dropout, "threads": args.threads}))


def _shape(text: str) -> tuple[int, int, int]:
    try:
        h, w, c = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected H,W,C, e.g. 28,28,1") from None
    return h, w, c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("throughput")
    o = sub.add_parser("one")
    o.add_argument("variant", choices=list(VARIANTS))
    for p in (t, o):
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--windows", type=int, default=5)
        p.add_argument("--steps", type=int, default=4)
        p.add_argument("--threads", type=int, default=torch.get_num_threads())
        p.add_argument("--genotype", default=None, help="DARTS genotype JSON file: train its retrain network")
        p.add_argument("--layers", type=int, default=5)
        p.add_argument("--init-channels", type=int, default=16)
        p.add_argument("--input-shape", type=_shape, default=(32, 32, 3), help="H,W,C (default 32,32,3)")
    t.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help=f"comma-separated; the first is the ratios' baseline (default {DEFAULT_VARIANTS})")
    a = sub.add_parser("time-to-accuracy")
    a.add_argument("--results", required=True, help="results.json of a kubenas run")
    a.add_argument("--target", type=float, default=0.90)
    a.add_argument("--epochs", type=int, default=8)
    a.add_argument("--batch-size", type=int, default=128)
    a.add_argument("--data-dir", default=None)
    a.add_argument("--dropout", type=float, default=0.4)
    a.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.command == "throughput":
        throughput(args)
    elif args.command == "one":
        genotype = (args.genotype, args.layers, args.init_channels, args.input_shape) if args.genotype else None
        print(json.dumps(one_variant(args.variant, args.device, args.batch_size, args.windows, args.steps, genotype)))
    else:
        time_to_accuracy(args)


if __name__ == "__main__":
    main()
