"""`kubenas-train nb201` / `python -m trainer.nb201`: train one NAS-Bench-201 network.

Takes the trial assignments of `search_mode: nb201` (`--architecture` NB201 cell string,
`--nn-config` JSON) and the ENAS trainer's training flags, plus `--init-channels`. Prints
each epoch's metrics in Katib's StdOut format (Validation-Accuracy is the usual objective)
and, with `--push-endpoint`, reports them to a DBManager. Bad flags, JSON or cells exit
with status 2 and one message naming the field.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import torch

from trainer.enas.main import (
    ArgParser,
    RunOptions,
    add_training_flags,
    configure_logging,
    describe,
    guarded,
    load_splits,
    split_args,
    train_and_report,
)
from trainer.nb201.model import SEARCH_MODE, build_nb201, parse_nb201
from trainer.train import TrainConfig, TrainError, resolve_device

__all__ = ["build_parser", "main", "run"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgParser(prog="kubenas-train nb201",
                       description="Train one NAS-Bench-201 network (search_mode nb201 trial flags).")
    parser.add_argument("--architecture", required=True,
                        help="NB201 cell string, e.g. |nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|...|")
    parser.add_argument("--nn_config", "--nn-config", dest="nn_config", required=True, help="nn_config JSON")
    parser.add_argument("--init-channels", "--init_channels", dest="init_channels", type=int, default=None,
                        help="C, the first stage's channels (default: nn_config.init_channels, else 16)")
    add_training_flags(parser, epochs=10)
    # The benchmark trains without dropout; the shared flag keeps its meaning (before the classifier).
    parser.set_defaults(dropout=0.0)
    return parser


def run(architecture: str, nn_config: str, config: TrainConfig, options: RunOptions,
        init_channels: int | None = None) -> dict[str, Any]:
    """Parse, build, train and report one NB201 network; returns the summary dict."""
    if init_channels is not None and init_channels < 1:
        raise TrainError("--init-channels", init_channels, "must be an integer >= 1")
    spec = parse_nb201(architecture, nn_config, init_channels)
    device = resolve_device(options.device, options.num_gpus)
    # Seed before building so the initial weights depend only on --seed; build before
    # loading data so an unknown primitive is rejected without paying for the dataset.
    torch.manual_seed(config.seed)
    model = build_nb201(spec, options.dropout)
    splits = load_splits(options, spec.input_shape, spec.num_classes, device)
    model = model.to(device)
    summary = {"mode": SEARCH_MODE, "architecture": spec.cell.to_string(), "cells_per_stage": spec.num_layers,
               "init_channels": spec.init_channels, **describe(model, spec.input_shape)}
    return train_and_report(model, splits, config, options, summary)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    configure_logging()
    parser = build_parser()

    def body() -> None:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        config, options = split_args(args)
        summary = run(args.architecture, args.nn_config, config, options, args.init_channels)
        log.info("summary: %s", json.dumps({k: v for k, v in summary.items() if k != "final"}))

    return guarded(parser.prog, body)
