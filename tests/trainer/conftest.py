"""Trainer tests share a 2-core machine with other suites: one torch thread each.

An oversubscribed OpenMP pool made small CPU steps ~30x slower here (see
trainer.enas.main.set_threads), and the trainer entry points default to one thread too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for this test, whatever an earlier in-process entry point set (--threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
