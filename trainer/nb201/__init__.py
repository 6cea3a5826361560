"""The NAS-Bench-201 network from an NB201 cell string, and its trial entry point."""

from __future__ import annotations

from trainer.nb201.main import main, run
from trainer.nb201.model import Nb201Network, Nb201Spec, build_nb201, parse_nb201

__all__ = ["Nb201Network", "Nb201Spec", "build_nb201", "main", "parse_nb201", "run"]
