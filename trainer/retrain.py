"""`kubenas-train retrain`: train a found architecture from scratch and report test accuracy.

The architecture is an ENAS macro row list (needs `--nn_config`), an ENAS micro or DARTS
genotype as JSON, or Katib's printed `Genotype(normal=[...], ...)` line; `@path` reads
any of them from a file. Genotypes without `--nn_config` take the input shape and class
count from the dataset and the depth from `--layers`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from kubenas.genotype import Genotype, GenotypeError
from trainer.data import load_dataset
from trainer.enas.main import (
    ArgParser,
    add_training_flags,
    configure_logging,
    describe,
    guarded,
    load_splits,
    split_args,
    train_and_report,
)
from trainer.enas.model import ArchitectureError, ChildSpec, build_child, parse_child, strip_quotes
from trainer.train import resolve_device

__all__ = ["build_parser", "main", "read_architecture"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgParser(prog="kubenas-train retrain",
                     description="Train a found architecture from scratch; report test accuracy.")
    parser.add_argument("--architecture", "--genotype", dest="architecture", required=True,
                        help="macro rows JSON, genotype JSON, Genotype(...) text, or @file")
    parser.add_argument("--nn_config", "--nn-config", dest="nn_config", default=None,
                        help="nn_config JSON (required for macro architectures)")
    parser.add_argument("--layers", type=int, default=8, help="cells of a genotype network without --nn_config")
    parser.add_argument("--init-channels", "--init_channels", dest="init_channels", type=int, default=16)
    parser.add_argument("--drop-path", "--drop_path", dest="drop_path", type=float, default=0.0,
                        help="drop-path probability for cell networks, ramped over the epochs")
    add_training_flags(parser, epochs=30)
    return parser


def read_architecture(text: str) -> str:
    """The architecture text, read from a file when given as `@path`."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ArchitectureError("--architecture", text, f"cannot read the file: {exc.strerror}") from None
    return text


def _genotype(text: str) -> Genotype | None:
    """A Genotype when `text` is Katib's printed form or a JSON object, else None (macro)."""
    body = strip_quotes(text)
    try:
        if body.lstrip().startswith("Genotype("):
            return Genotype.parse_katib(body)
        if body.lstrip().startswith("{"):
            return Genotype.from_json(body)
    except GenotypeError as exc:
        raise ArchitectureError(f"architecture.{exc.field}", exc.value, exc.allowed) from None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    configure_logging()
    parser = build_parser()

    def body() -> None:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        config, options = split_args(args)

        config = replace(config, drop_path=args.drop_path)
        config.check()
        if args.layers < 1:
            raise ArchitectureError("--layers", args.layers, "must be >= 1")
        if args.init_channels < 1:
            raise ArchitectureError("--init-channels", args.init_channels, "must be >= 1")
        architecture = read_architecture(args.architecture)
        device = resolve_device(options.device, options.num_gpus)
        genotype = _genotype(architecture)
        torch.manual_seed(config.seed)
        if args.nn_config is not None:
            spec = parse_child(architecture if genotype is None else genotype.to_json(), args.nn_config)
            model = build_child(spec, options.dropout)
            splits = load_splits(options, spec.input_shape, spec.num_classes, device)
        elif genotype is not None:
            splits = load_dataset(options.dataset, options.data_dir, device, train_limit=options.train_limit)
            spec = ChildSpec(splits.input_shape, splits.num_classes, args.layers, genotype=genotype,
                             init_channels=args.init_channels)
            model = build_child(spec)
        else:
            raise ArchitectureError("--nn_config", None, "is required for an ENAS macro architecture")
        model = model.to(device)
        summary: dict[str, Any] = {"mode": spec.mode, **describe(model, spec.input_shape)}
        if genotype is not None:
            summary["genotype"] = genotype.to_dict()
        summary = train_and_report(model, splits, config, options, summary, test=True)
        log.info("summary: %s", json.dumps({k: v for k, v in summary.items() if k not in ("final", "genotype")}))

    return guarded(parser.prog, body)


if __name__ == "__main__":
    sys.exit(main())
