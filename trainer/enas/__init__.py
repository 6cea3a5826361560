"""ENAS child networks (macro and micro) and their trial entry point."""

from __future__ import annotations

from trainer.enas.main import main, run
from trainer.enas.model import (
    ArchitectureError,
    ChildSpec,
    MacroNetwork,
    build_child,
    parse_child,
    plan_macro,
)

__all__ = ["ArchitectureError", "ChildSpec", "MacroNetwork", "build_child", "main", "parse_child", "plan_macro", "run"]
