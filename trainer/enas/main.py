"""`kubenas-train enas` / `python -m trainer.enas`: train one ENAS child network.

Accepts Katib's ENAS trial flags (`--architecture`, `--nn_config`, `--num_epochs`,
`--num_gpus`) plus ours; prints each epoch's metrics in Katib's StdOut format and, with
`--push-endpoint`, also reports them to a DBManager. Bad flags, JSON or architectures
exit with status 2 and one message naming the field.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from trainer.data import DatasetError, Splits, dataset_names, load_dataset
from trainer.enas.model import ArchitectureError, ChildSpec, build_child, parse_child
from trainer.ops import OpError
from trainer.train import (
    OPTIMIZERS,
    TrainConfig,
    TrainError,
    TrainResult,
    count_macs,
    count_params,
    evaluate,
    fit,
    on_cuda_unless_set,
    print_metrics,
    resolve_device,
    write_outputs,
)

__all__ = [
    "USAGE_ERRORS",
    "ArgParser",
    "RunOptions",
    "UsageError",
    "add_training_flags",
    "build_parser",
    "configure_logging",
    "describe",
    "guarded",
    "load_splits",
    "main",
    "run",
    "set_threads",
    "split_args",
    "train_and_report",
]

log = logging.getLogger(__name__)

# Errors that mean "the input is wrong": one line on stderr, exit status 2.
USAGE_ERRORS = (ArchitectureError, DatasetError, TrainError, OpError)


class UsageError(Exception):
    """A command-line flag could not be parsed."""


class ArgParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class RunOptions:
    """What an entry point needs besides the TrainConfig."""

    dataset: str = "cifar10"
    data_dir: str | None = None
    device: str = "auto"
    num_gpus: int = 1
    train_limit: int | None = None
    push_endpoint: str | None = None
    trial_name: str | None = None
    output_dir: Path | None = None
    dropout: float = 0.4


def add_training_flags(parser: argparse.ArgumentParser, epochs: int) -> None:
    """Flags shared by `enas` and `retrain`; underscores and dashes both accepted."""
    parser.add_argument("--num_epochs", "--num-epochs", "--epochs", dest="epochs", type=int, default=epochs)
    parser.add_argument("--num_gpus", "--num-gpus", dest="num_gpus", type=int, default=1,
                        help="Katib's flag: 0 forces CPU; >= 1 uses one CUDA device when present")
    parser.add_argument("--dataset", default="cifar10", choices=dataset_names())
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", default=None)
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=64)
    parser.add_argument("--optimizer", default="sgd", choices=sorted(OPTIMIZERS))
    parser.add_argument("--lr", type=float, default=None, help="default: 0.1 for sgd, 0.002 for adamw")
    parser.add_argument("--weight-decay", "--weight_decay", dest="weight_decay", type=float, default=None)
    parser.add_argument("--label-smoothing", "--label_smoothing", dest="label_smoothing", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.4, help="dropout before the classifier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: $OMP_NUM_THREADS, else 1)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--amp", dest="amp", action="store_true", default=None,
                        help="bf16 autocast also on CPU (default: on CUDA only)")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="disable bf16 autocast on CUDA")
    parser.add_argument("--channels-last", "--channels_last", dest="channels_last", action="store_true",
                        default=None, help="channels_last memory format also on CPU (default: on CUDA only)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="keep the contiguous (NCHW) format on CUDA too")
    parser.add_argument("--train-limit", "--train_limit", dest="train_limit", type=int, default=None,
                        help="use only the first N training images")
    parser.add_argument("--push-endpoint", "--push_endpoint", dest="push_endpoint", default=None,
                        help="DBManager host:port; also report metrics with ReportObservationLog")
    parser.add_argument("--trial-name", "--trial_name", dest="trial_name", default=None,
                        help="default: $KATIB_TRIAL_NAME")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir", type=Path, default=None,
                        help="write model.pt and summary.json here")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgParser(prog="kubenas-train enas", description="Train one ENAS child network (Katib trial flags).")
    parser.add_argument("--architecture", required=True, help="macro rows JSON, or a micro Genotype object")
    parser.add_argument("--nn_config", "--nn-config", dest="nn_config", required=True, help="nn_config JSON")
    add_training_flags(parser, epochs=10)
    return parser


def split_args(args: argparse.Namespace) -> tuple[TrainConfig, RunOptions]:
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing, seed=args.seed,
        amp=args.amp, channels_last=args.channels_last, compile=args.compile,
    )
    config.check()
    if args.num_gpus < 0:
        raise TrainError("--num_gpus", args.num_gpus, "must be >= 0")
    if not 0.0 <= args.dropout < 1.0:
        raise TrainError("--dropout", args.dropout, "must be in [0, 1)")
    options = RunOptions(args.dataset, args.data_dir, args.device, args.num_gpus, args.train_limit,
                         args.push_endpoint, args.trial_name, args.output_dir, args.dropout)
    set_threads(args.threads)
    return config, options


def set_threads(threads: int | None) -> int:
    """Set torch's CPU thread count and return it.

    The default is 1 unless OMP_NUM_THREADS says otherwise: trials usually run side by side
    (or in a container whose CPU limit torch cannot see), and an oversubscribed OpenMP pool
    made small children 30x slower per step on the 2-core dev machine.
    """
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else 1
    if threads < 1:
        raise TrainError("--threads", threads, "must be >= 1")
    torch.set_num_threads(threads)
    return threads


def load_splits(options: RunOptions, input_shape: tuple[int, int, int], num_classes: int,
                device: torch.device) -> Splits:
    """Load the dataset and check it matches the network's input and output sizes."""
    extra: dict[str, Any] = {}
    if options.dataset == "synthetic":
        extra = {"input_shape": input_shape, "num_classes": num_classes}
    splits = load_dataset(options.dataset, options.data_dir, device, train_limit=options.train_limit, **extra)
    if splits.input_shape != input_shape:
        c, h, w = splits.input_shape
        raise ArchitectureError("nn_config.input_sizes", [input_shape[1], input_shape[2], input_shape[0]],
                                f"must match dataset {options.dataset!r} images [H, W, C] = [{h}, {w}, {c}]")
    if num_classes < splits.num_classes:
        raise ArchitectureError("nn_config.output_sizes", num_classes,
                                f"must be >= the {splits.num_classes} classes of dataset {options.dataset!r}")
    return splits


def _reporter(options: RunOptions) -> tuple[Callable[[int, Mapping[str, float]], None], Callable[[], None]]:
    if not options.push_endpoint:
        return print_metrics, lambda: None
    from trainer.push import TRIAL_NAME_ENV, PushReporter, trial_name_from_env

    name = options.trial_name or trial_name_from_env()
    if not name:
        raise TrainError("--trial-name", None, f"--push-endpoint needs a trial name: set {TRIAL_NAME_ENV} or --trial-name")
    pusher = PushReporter(options.push_endpoint, name)

    def report(epoch: int, metrics: Mapping[str, float]) -> None:
        print_metrics(epoch, metrics)
        pusher(epoch, metrics)

    return report, pusher.close


def train_and_report(model: nn.Module, splits: Splits, config: TrainConfig, options: RunOptions,
                     summary: dict[str, Any], test: bool = False) -> dict[str, Any]:
    """Train, optionally report test accuracy, write outputs; returns the JSON summary."""
    report, close = _reporter(options)
    try:
        result: TrainResult = fit(model, splits, config, report)
    finally:
        close()
    device = splits.train.x.device
    final = result.final
    summary.update({
        "dataset": options.dataset,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "train_seconds": round(result.seconds, 3),
        "images_per_second": round(result.images_per_second, 1),
        "peak_memory_bytes": result.peak_memory_bytes,
        "final": final,
        "best_validation_accuracy": max(h["Validation-Accuracy"] for h in result.history),
    })
    if test:
        loss, acc = evaluate(model, splits.test, config.eval_batch_size, on_cuda_unless_set(config.amp, device),
                             on_cuda_unless_set(config.channels_last, device))
        summary["test_accuracy"] = acc
        summary["test_loss"] = loss
        print(f"Test-Loss={loss!r} Test-Accuracy={acc!r}", flush=True)
    if options.output_dir is not None:
        write_outputs(options.output_dir, model, summary, config)
    return summary


def describe(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    params, macs = count_params(model), count_macs(model, input_shape)
    log.info("model: %d parameters, %.2f MFLOPs per image", params, 2 * macs / 1e6)
    return {"params": params, "macs": macs, "flops": 2 * macs}


def run(architecture: str, nn_config: str, config: TrainConfig, options: RunOptions) -> dict[str, Any]:
    """Parse, build, train and report one child network; returns the summary dict."""
    spec: ChildSpec = parse_child(architecture, nn_config)
    device = resolve_device(options.device, options.num_gpus)
    if options.num_gpus > 1:
        log.warning("--num_gpus=%d: this trainer uses one device (%s)", options.num_gpus, device)
    # Seeding before the build makes the initial weights depend only on --seed; building
    # before loading data rejects an impossible architecture without paying for the dataset.
    torch.manual_seed(config.seed)
    model = build_child(spec, options.dropout)
    splits = load_splits(options, spec.input_shape, spec.num_classes, device)
    model = model.to(device)
    summary = {"mode": spec.mode, **describe(model, spec.input_shape)}
    return train_and_report(model, splits, config, options, summary)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def guarded(prog: str, body: Callable[[], Any]) -> int:
    """Run `body`; map usage errors to one stderr line and status 2, push failures to 1."""
    try:
        body()
    except (UsageError, *USAGE_ERRORS) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        # trainer.push (and grpc) is imported only when --push-endpoint is given.
        push = sys.modules.get("trainer.push")
        if push is None or not isinstance(exc, push.PushError):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    configure_logging()
    parser = build_parser()

    def body() -> None:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        config, options = split_args(args)
        summary = run(args.architecture, args.nn_config, config, options)
        log.info("summary: %s", json.dumps({k: v for k, v in summary.items() if k != "final"}))

    return guarded(parser.prog, body)

