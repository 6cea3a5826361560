"""Who proposes children (the shared ENAS controller, or uniform sampling) and how one is written.

Decisions use the controller's layout (`kubenas.enas_controller.policy`): macro (L, L+1)
rows `[op_id, skip bits..., 0 padding]`, micro (2, N, 4) `[input_a, input_b, op_a, op_b]`
per cell and node. Both samplers draw from one CPU generator, so a seed fixes every child.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from kubenas.enas_controller.policy import LstmPolicy, MacroController, MicroController
from trainer.enas_search.micro import genotype_of
from trainer.enas_search.settings import EnasOneshotSettings, SpaceSpec

__all__ = ["Child", "architecture_of", "new_controller", "uniform_children"]

Child = list[Any]  # nested lists of ints (controller decisions)


def new_controller(space: SpaceSpec, settings: EnasOneshotSettings, generator: torch.Generator) -> LstmPolicy:
    """The `enas` service's controller for this space, initialised from `generator`."""
    s = settings
    if space.mode == "micro":
        return MicroController(space.num_nodes, len(space.primitives), s.controller_hidden_size,
                               s.controller_temperature, s.controller_tanh_const, generator)
    return MacroController(space.num_layers, len(space.ops), s.controller_hidden_size, s.controller_temperature,
                           s.controller_tanh_const, s.controller_skip_target, generator)


def uniform_children(space: SpaceSpec, n: int, generator: torch.Generator) -> list[Child]:
    """`n` children drawn uniformly: every op, input and skip bit equally likely (Li & Talwalkar)."""
    if space.mode == "micro":
        N, K = space.num_nodes, len(space.primitives)
        node = torch.arange(N)
        inputs = (torch.rand(n, 2, N, 2, generator=generator) * (node + 2)[None, None, :, None]).long()
        ops = torch.randint(0, K, (n, 2, N, 2), generator=generator)
        return torch.cat([inputs, ops], dim=3).tolist()
    L, K = space.num_layers, len(space.ops)
    decisions = torch.zeros(n, L, L + 1, dtype=torch.long)
    decisions[:, :, 0] = torch.randint(0, K, (n, L), generator=generator)
    bits = (torch.rand(n, L, L, generator=generator) < 0.5).long()
    decisions[:, :, 1:] = torch.tril(bits, diagonal=-1)
    return decisions.tolist()


def architecture_of(space: SpaceSpec, child: Child, init_channels: int) -> tuple[str, dict[str, Any]]:
    """The child's `architecture` text (Katib's compact rows, or a Genotype JSON) and `nn_config`."""
    if space.mode == "micro":
        return genotype_of(child, space.primitives).to_json(), space.nn_config(init_channels=init_channels)
    rows = [[int(x) for x in row[: i + 1]] for i, row in enumerate(child)]
    return json.dumps(rows, separators=(",", ":")), space.nn_config(used_ops=[r[0] for r in rows])
