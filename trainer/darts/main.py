"""`kubenas-train darts` / `python -m trainer.darts`: Katib's DARTS trial flags -> `search.run`.

Bad flags, JSON, settings, search spaces or datasets print one `error:` line naming the
flag, the value and what is allowed, and exit with status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from trainer.darts.settings import (
    ConfigError,
    parse_algorithm_settings,
    parse_num_layers,
    parse_search_space,
)

if TYPE_CHECKING:
    from trainer.darts.search import SearchConfig

__all__ = ["USAGE_ERROR", "build_parser", "config_from_args", "main"]

USAGE_ERROR = 2
PROG = "kubenas-train darts"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error of ours, instead of argparse's usage dump.
        self.exit(USAGE_ERROR, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="DARTS supernet search (Katib trial flags).")
    p.add_argument("--algorithm-settings", default="{}",
                   help="JSON object of DARTS settings (\" or '), e.g. from the darts suggestion")
    p.add_argument("--search-space", required=True,
                   help='JSON list of primitives, e.g. ["separable_convolution_3x3", "skip_connection"]')
    p.add_argument("--num-layers", required=True, help="number of cells in the supernet")
    p.add_argument("--dataset", default=None, help="dataset name (overrides the `dataset` setting)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the dataset's files are")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (torchrun: each rank its LOCAL_RANK GPU)")
    p.add_argument("--output-dir", type=Path, default=Path("darts-output"),
                   help="where genotype.json, alphas.json and cells.png go (default ./darts-output)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto = bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile each supernet edge (mixed op), forward")
    p.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                   help="channels_last memory format also on CPU (default: on CUDA only)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="keep the contiguous (NCHW) format on CUDA too")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap the steps of each epoch")
    p.add_argument("--verbose", "-v", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    """Resolve and check every flag before any data is loaded."""

    from trainer.darts.search import SearchConfig
    from trainer.data import dataset_names
    from trainer.ops import OpError, parse_primitive

    settings = parse_algorithm_settings(args.algorithm_settings)
    primitives = parse_search_space(args.search_space)
    for name in primitives:
        try:
            parse_primitive(name)
        except OpError as exc:
            raise ConfigError("--search-space", name, exc.allowed) from None
    num_layers = parse_num_layers(args.num_layers)
    if args.dataset is not None:
        settings = settings.model_copy(update={"dataset": args.dataset})
    if settings.dataset not in dataset_names():
        raise ConfigError("--dataset", settings.dataset, f"must be one of {dataset_names()}")
    if not (args.device in ("auto", "cpu", "cuda") or args.device.startswith("cuda:")):
        raise ConfigError("--device", args.device, "must be auto, cpu, cuda or cuda:N")
    for flag, value in (("--train-limit", args.train_limit), ("--steps-per-epoch", args.steps_per_epoch)):
        if value is not None and value < 1:
            raise ConfigError(flag, value, "must be an integer >= 1")
    return SearchConfig(settings=settings, primitives=primitives, num_layers=num_layers, dataset=settings.dataset,
                        data_dir=args.data_dir, device=args.device, output_dir=args.output_dir,
                        compile=args.compile, precision=args.precision, channels_last=args.channels_last,
                        train_limit=args.train_limit, steps_per_epoch=args.steps_per_epoch)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from trainer.data import DatasetError

    try:
        config = config_from_args(args)
        import torch

        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("--device", config.device, "no CUDA device is available here; use auto or cpu")
        from trainer.darts.search import run

        run(config)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    return 0

