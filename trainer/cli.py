"""`kubenas-train`: one subcommand per trainer, looked up in `TRAINERS`.

Each trainer module exposes `main(argv) -> int` and is imported only when chosen, so
`kubenas-train darts` never imports the ENAS code and vice versa.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from kubenas.registry import Registry

__all__ = ["TRAINERS", "main", "run"]

TRAINERS: Registry[str] = Registry("trainer", [
    ("enas", "trainer.enas"),
    ("darts", "trainer.darts"),
    ("enas-search", "trainer.enas_search"),
    ("retrain", "trainer.retrain"),
    ("nb201", "trainer.nb201"),
])

_USAGE = "usage: kubenas-train {" + ",".join(TRAINERS) + "} [flags...]  (kubenas-train <trainer> --help)"


def run(argv: Sequence[str]) -> int:
    """Dispatch `argv[0]` to its trainer's `main(argv[1:])`; returns the exit status."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    name, rest = argv[0], list(argv[1:])
    if name not in TRAINERS:
        print(f"kubenas-train: error: trainer: invalid value {name!r}: must be one of {list(TRAINERS)}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(TRAINERS[name])
    except ModuleNotFoundError as exc:
        print(f"kubenas-train: error: trainer {name!r} is not installed ({exc.name} missing)", file=sys.stderr)
        return 2
    return int(module.main(rest))


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
