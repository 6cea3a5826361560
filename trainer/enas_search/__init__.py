"""One-shot ENAS (parameter sharing): a supernet and the shared ENAS controller in one trial."""

from __future__ import annotations

from trainer.enas_search.main import main

__all__ = ["main"]
