"""DARTS search trainer: mixed op, supernet, architect (1st/2nd order), genotype decoding, search loop.

`main(argv)` is the `kubenas-train darts` entry point; `search.run(config)` the library call.
"""

from __future__ import annotations

from trainer.darts.main import main

__all__ = ["main"]
