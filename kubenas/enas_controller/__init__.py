"""The ENAS LSTM controller, shared by the `enas` suggestion service and the one-shot trainer.

`policy` (the LSTM policies and their rollouts), `adam` (the dependency-light optimiser)
and `reinforce` (the policy-gradient loss) import torch; this package file does not, so
importing `kubenas.enas_controller` alone never loads it. The core imports nothing of
ours: `suggestion.algorithms.enas` and `trainer.enas_search` both import from here.
"""

from __future__ import annotations

__all__: list[str] = []
