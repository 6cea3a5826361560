"""`kubenas-train enas-search` / `python -m trainer.enas_search`: one-shot ENAS in one trial.

Takes the `enas-oneshot` suggestion's assignments (`--algorithm-settings`,
`--search-space`). Bad flags, JSON, settings, search spaces or datasets print one
`error:` line naming the flag or setting, the value and what is allowed, and exit with
status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from trainer.enas_search.settings import ConfigError, parse_algorithm_settings, parse_search_space

__all__ = ["USAGE_ERROR", "build_parser", "main"]

USAGE_ERROR = 2
PROG = "kubenas-train enas-search"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="One-shot ENAS: a shared-weights supernet and the ENAS controller in one trial.")
    p.add_argument("--algorithm-settings", "--algorithm_settings", dest="algorithm_settings", default="{}",
                   help="JSON object of enas-oneshot settings (\" or '), e.g. from the enas-oneshot suggestion")
    p.add_argument("--search-space", "--search_space", dest="search_space", required=True,
                   help="the whole space as an nn_config (macro: every op in `embedding`; micro: `primitives`)")
    p.add_argument("--dataset", default=None, help="dataset name (overrides the `dataset` setting)")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", type=Path, default=None)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", type=Path, default=Path("enas-search-output"),
                   help="where architecture.json, nn_config.json, search.json and architecture.png (micro: cells.png) go")
    p.add_argument("--amp", dest="amp", action="store_true", default=None, help="bf16 autocast also on CPU (default: CUDA only)")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast on CUDA either")
    p.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                   help="channels_last memory format also on CPU (default: on CUDA only)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--train-limit", "--train_limit", dest="train_limit", type=int, default=None,
                   help="use only the first N training images")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap the shared-weight steps of each epoch")
    p.add_argument("--grad-chunks", type=int, default=None,
                   help="cut each minibatch into N chunks (default: one per torchrun rank); one process with "
                        "--grad-chunks=W takes the same steps as W ranks")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: $OMP_NUM_THREADS, else 1)")
    p.add_argument("--verbose", "-v", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from trainer.data import DatasetError, dataset_names
    from trainer.train import TrainError

    try:
        settings = parse_algorithm_settings(args.algorithm_settings)
        if args.dataset is not None:
            settings = settings.model_copy(update={"dataset": args.dataset})
        if settings.dataset not in dataset_names():
            raise ConfigError("--dataset", settings.dataset, f"must be one of {dataset_names()}")
        space = parse_search_space(args.search_space, settings.search_mode)
        if space.mode == "micro" and space.num_nodes != settings.num_nodes:
            raise ConfigError("--search-space.num_nodes", space.num_nodes,
                              f"must equal the num_nodes setting ({settings.num_nodes})")
        for flag, value in (("--train-limit", args.train_limit), ("--steps-per-epoch", args.steps_per_epoch),
                            ("--grad-chunks", args.grad_chunks)):
            if value is not None and value < 1:
                raise ConfigError(flag, value, "must be an integer >= 1")
        from trainer.enas.main import set_threads
        from trainer.enas_search.search import SearchConfig, run

        set_threads(args.threads)
        run(SearchConfig(settings, space, data_dir=args.data_dir, device=args.device, output_dir=args.output_dir,
                         amp=args.amp, channels_last=args.channels_last, train_limit=args.train_limit,
                         steps_per_epoch=args.steps_per_epoch, grad_chunks=args.grad_chunks))
    except (ConfigError, DatasetError, TrainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    return 0
