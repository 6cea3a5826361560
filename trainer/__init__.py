"""PyTorch programs that run inside trials: datasets, ops, ENAS/DARTS models, training.

Libraries with thin entry points (`kubenas-train`, `python -m trainer.enas`); no grpc
(except `trainer.push`) and no kubernetes imports.
"""

from __future__ import annotations

__all__: list[str] = []
