"""Trainer tests share a 2-core machine with other suites: one torch thread each.

An oversubscribed OpenMP pool made small CPU steps ~30x slower here (see
trainer.enas.main.set_threads), and the trainer entry points default to one thread too.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
