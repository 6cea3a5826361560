"""Multi-process search under `torchrun`: rank/device discovery and gradient averaging.

Gradients are averaged with explicit all-reduces (what DDP does for its parameters)
because the second-order architecture step differentiates through a virtual weight step
and a finite-difference Hessian product that DDP's hooks do not see: every gradient the
search applies — weights, unrolled weights, Hessian product, alphas — goes through
`GradSync.average`, so all ranks step identically from the global batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["GradSync", "Topology", "init_topology", "shutdown"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topology:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_topology(device: str) -> Topology:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); otherwise one process.

    `device` is "auto", "cpu", "cuda" or "cuda:N"; under torchrun each rank takes the GPU
    numbered by LOCAL_RANK and NCCL, or gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if world <= 1:
        if device == "auto":
            return Topology(0, 1, torch.device("cuda" if wants_cuda else "cpu"))
        return Topology(0, 1, torch.device(device))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if wants_cuda:
        torch.cuda.set_device(local)
        target = torch.device("cuda", local)
    else:
        target = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if wants_cuda else "gloo")
    rank = dist.get_rank()
    log.info("rank %d of %d on %s", rank, dist.get_world_size(), target)
    return Topology(rank, dist.get_world_size(), target)


def shutdown(topology: Topology) -> None:
    """Tear down together: rank 0 writes the outputs after the last collective, and a gloo
    group destroyed while a peer is still connected can abort that peer at exit. (If a
    rank failed, torchrun stops the others, so the barrier cannot wait forever.)"""
    if topology.world_size > 1 and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


class GradSync:
    """Averages gradient tensors across ranks in one coalesced all-reduce (no-op alone)."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size

    def average(self, tensors: Sequence[torch.Tensor]) -> None:
        if self.world_size <= 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1).float() for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n

    def replicas_agree(self, tensors: Sequence[torch.Tensor], device: torch.device) -> bool:
        """True when every rank holds the same values (checks the averaging kept replicas in step)."""
        if self.world_size <= 1:
            return True
        flat = torch.cat([t.detach().reshape(-1).double() for t in tensors]).to(device)
        low, high = flat.clone(), flat.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(torch.allclose(low, high, rtol=1e-5, atol=1e-6))

    def mean_scalars(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Average per-rank metrics (losses, accuracies) so rank 0 prints global numbers."""
        if self.world_size <= 1:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return (t / self.world_size).tolist()
