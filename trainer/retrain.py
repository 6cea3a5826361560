"""`kubenas-train retrain`: train a found architecture from scratch and report test accuracy.

`kubenas-train retrain RUN_DIR [--trial NAME]` takes the architecture of a `kubenas run`
work directory's best (or named) trial, whatever its kind (see kubenas.architecture), with
the run's dataset and, for a DARTS genotype, its number of cells as defaults. Otherwise the
architecture is an ENAS macro row list (needs `--nn_config`), an ENAS micro or DARTS
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

from kubenas.architecture import FoundArchitecture, RunDirError, run_architecture
from kubenas.genotype import Genotype, GenotypeError
from trainer.data import load_dataset
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
from trainer.enas.model import ArchitectureError, ChildSpec, build_child, parse_child, strip_quotes
from trainer.nb201.model import build_nb201, parse_nb201
from trainer.train import TrainConfig, resolve_device

__all__ = ["build_parser", "main", "read_architecture"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgParser(prog="kubenas-train retrain",
                     description="Train a found architecture from scratch; report test accuracy.")
    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?", type=Path, default=None,
                        help="a `kubenas run` work directory: retrain its best trial's architecture")
    parser.add_argument("--trial", default=None, help="with RUN_DIR: this trial instead of the best")
    parser.add_argument("--architecture", "--genotype", dest="architecture", default=None,
                        help="macro rows JSON, genotype JSON, Genotype(...) text, or @file (instead of RUN_DIR)")
    parser.add_argument("--nn_config", "--nn-config", dest="nn_config", default=None,
                        help="nn_config JSON (required for macro architectures)")
    parser.add_argument("--layers", type=int, default=None,
                        help="cells of a genotype network without --nn_config (default: the run's, else 8)")
    parser.add_argument("--init-channels", "--init_channels", dest="init_channels", type=int, default=None,
                        help="first cells' channels (default: nn_config.init_channels, else 16)")
    parser.add_argument("--drop-path", "--drop_path", dest="drop_path", type=float, default=0.0,
                        help="drop-path probability for cell networks, ramped over the epochs")
    add_training_flags(parser, epochs=30)
    parser.set_defaults(dataset=None)  # the run's dataset, else cifar10 (see _from_run)
    return parser


def _from_run(args: argparse.Namespace) -> FoundArchitecture | None:
    """Fill `args` from RUN_DIR (architecture, nn_config and the run's defaults); check that
    exactly one of RUN_DIR and --architecture is given."""
    if args.run_dir is None:
        if args.architecture is None:
            raise ArchitectureError("RUN_DIR", None, "give a `kubenas run` work directory or --architecture")
        if args.trial is not None:
            raise ArchitectureError("--trial", args.trial, "needs RUN_DIR (the run the trial belongs to)")
        return None
    if args.architecture is not None:
        raise ArchitectureError("--architecture", args.architecture[:60], "give either RUN_DIR or --architecture, not both")
    try:
        name, found = run_architecture(args.run_dir, args.trial)
    except RunDirError as exc:
        raise ArchitectureError(exc.field, exc.value, exc.allowed) from None
    log.info("retraining trial %s of %s (architecture from %s):\n%s", name, args.run_dir, found.source, found.text())
    args.architecture = found.architecture
    if args.nn_config is None:
        args.nn_config = found.nn_config
    if args.layers is None:
        args.layers = found.hints.get("num_layers")
    if args.dataset is None:
        args.dataset = found.hints.get("dataset")
    return found


def _train_nb201(args: argparse.Namespace, config: TrainConfig, options: RunOptions, device: Any) -> None:
    """A NAS-Bench-201 cell, on the benchmark's skeleton (trainer.nb201), with a test split."""
    spec = parse_nb201(args.architecture, args.nn_config or "{}", args.init_channels)
    model = build_nb201(spec, options.dropout).to(device)
    splits = load_splits(options, spec.input_shape, spec.num_classes, device)
    summary: dict[str, Any] = {"mode": "nb201", "architecture": spec.cell.to_string(), **describe(model, spec.input_shape)}
    summary = train_and_report(model, splits, config, options, summary, test=True)
    log.info("summary: %s", json.dumps({k: v for k, v in summary.items() if k != "final"}))


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
        found = _from_run(args)
        if args.dataset is None:
            args.dataset = "cifar10"
        if args.layers is None:
            args.layers = 8
        config, options = split_args(args)

        config = replace(config, drop_path=args.drop_path)
        config.check()
        if args.layers < 1:
            raise ArchitectureError("--layers", args.layers, "must be >= 1")
        if args.init_channels is not None and args.init_channels < 1:
            raise ArchitectureError("--init-channels", args.init_channels, "must be >= 1")
        architecture = read_architecture(args.architecture)
        device = resolve_device(options.device, options.num_gpus)
        if (found is not None and found.kind == "nb201") or strip_quotes(architecture).startswith("|"):
            torch.manual_seed(config.seed)
            args.architecture = architecture
            _train_nb201(args, config, options, device)
            return
        genotype = _genotype(architecture)
        torch.manual_seed(config.seed)
        if args.nn_config is not None:
            spec = parse_child(architecture if genotype is None else genotype.to_json(), args.nn_config)
            model = build_child(spec, options.dropout)
            splits = load_splits(options, spec.input_shape, spec.num_classes, device)
        elif genotype is not None:
            splits = load_dataset(options.dataset, options.data_dir, device, train_limit=options.train_limit)
            spec = ChildSpec(splits.input_shape, splits.num_classes, args.layers, genotype=genotype,
                             init_channels=args.init_channels or 16)
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
