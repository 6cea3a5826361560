"""Several processes under `torchrun`: each rank a replica of the supernet and the controller.

The global minibatch is cut into `grad_chunks` equal chunks (default: one per rank); each
rank backpropagates its own chunks, the gradient sums are all-reduced and divided by the
chunk count. BatchNorm sees one chunk at a time, so one process with `--grad-chunks=W`
takes exactly the steps W ranks take. Every rank samples the same children from the same
generator; rewards and validation counts are computed by one rank each and summed, and
the controller, stepped on identical inputs everywhere, is broadcast from rank 0 so the
replicas cannot drift. With one process every collective is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from trainer.darts.distributed import GradSync, Topology, init_topology, shutdown
from trainer.train import resolve_device

__all__ = ["Ranks", "start_ranks"]


@dataclass(frozen=True)
class Ranks:
    topology: Topology

    @property
    def rank(self) -> int:
        return self.topology.rank

    @property
    def world(self) -> int:
        return self.topology.world_size

    @property
    def device(self) -> torch.device:
        return self.topology.device

    @property
    def is_main(self) -> bool:
        return self.topology.is_main

    def mine(self, index: int) -> bool:
        """Whether this rank computes item `index` of a list every rank walks through."""
        return index % self.world == self.rank

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) in place; returns the tensor."""
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Overwrite every rank's `tensors` with rank 0's."""
        if self.world > 1:
            for t in tensors:
                dist.broadcast(t.data, 0)

    def same_int(self, value: int) -> int:
        """Rank 0's `value` on every rank."""
        if self.world <= 1:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.broadcast(t, 0)
        return int(t.item())

    def agree(self, tensors: Sequence[torch.Tensor]) -> bool:
        return GradSync(self.world).replicas_agree(tensors, self.device)

    def close(self) -> None:
        shutdown(self.topology)


def start_ranks(device: str) -> Ranks:
    """Join torchrun's process group when WORLD_SIZE > 1; otherwise one process on `device`."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return Ranks(init_topology(device))
    return Ranks(Topology(0, 1, resolve_device(device)))
