"""Settings of `darts`: Katib's names, defaults and rules first, then ours (PC-DARTS, dataset, seed).

The `darts` suggestion resolves them into its `algorithm-settings` assignment and
`kubenas-train darts` parses that (or Katib's service's string-valued version) with the
same model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from kubenas.algorithm_settings.common import DatasetName
from kubenas.algorithm_settings.model import KATIB_NONE, AlgorithmSettings, Int, Number, setting

__all__ = ["DartsSettings"]


def _switch(value: Any) -> Any:
    """A boolean as JSON (true/false) or text in any case ("True", as Katib writes Python's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.strip().lower() if isinstance(value, str) else value


def _non_negative(description: str) -> Any:
    return setting(description, ge=0)


class DartsSettings(AlgorithmSettings):
    """`darts`: one trial trains a supernet; PC-DARTS via partial_channels."""

    num_epochs: Annotated[Int, setting("search epochs", gt=0)] = 50
    w_lr: Annotated[Number, _non_negative("weight SGD learning rate, cosine-annealed to w_lr_min")] = 0.025
    w_lr_min: Annotated[Number, _non_negative("final weight learning rate")] = 0.001
    w_momentum: Annotated[Number, _non_negative("weight SGD momentum")] = 0.9
    w_weight_decay: Annotated[Number, _non_negative("weight SGD weight decay")] = 3e-4
    w_grad_clip: Annotated[Number, _non_negative("gradient-norm clip of the weights")] = 5.0
    alpha_lr: Annotated[Number, _non_negative("Adam (betas 0.5, 0.999) learning rate of the alphas")] = 3e-4
    alpha_weight_decay: Annotated[Number, _non_negative("Adam weight decay of the alphas")] = 1e-3
    # Katib lets batch_size be "None"; the trainer then uses the whole half-split per step.
    batch_size: Annotated[Int | None, setting(
        "images per step, per half (None: the whole half)", ge=1, none=KATIB_NONE)] = 128
    num_workers: Annotated[Int, setting(
        "accepted for Katib; data lives on the device, no loader workers", ge=0)] = 4
    init_channels: Annotated[Int, setting("channels of the first cells (doubled at each reduction)", ge=1)] = 16
    print_step: Annotated[Int, setting("log the training loss every N steps (stderr)", ge=1)] = 50
    num_nodes: Annotated[Int, setting("intermediate nodes per cell", ge=1)] = 4
    stem_multiplier: Annotated[Int, setting("stem width = stem_multiplier * init_channels", ge=1)] = 3
    order: Annotated[Literal["first", "second"], setting(
        "first- or second-order (unrolled) architecture gradient")] = "second"
    partial_channels: Annotated[Int, setting(
        "PC-DARTS: 1/k of the channels go through the candidates; must divide init_channels", ge=1,
        note="1 = off, k > 1 = PC-DARTS 1/k channels")] = 1
    # PC-DARTS' learned edge weights; "auto" turns them on exactly when partial_channels > 1.
    edge_normalization: Annotated[Literal["auto", "true", "false"], BeforeValidator(_switch), setting(
        "PC-DARTS edge weights (betas); true also turns them on for plain DARTS, false off for partial "
        "channels (any case; JSON booleans too)",
        allowed='"auto" (on when partial_channels > 1), "true" or "false"')] = "auto"
    dataset: DatasetName = "cifar10"
    random_state: Annotated[Int | None, setting(
        "seed of the search (None: a fresh seed, logged)", ge=0, none=KATIB_NONE)] = None

    @property
    def uses_edge_normalization(self) -> bool:
        """Whether the supernet learns PC-DARTS edge weights (betas)."""
        if self.edge_normalization == "auto":
            return self.partial_channels > 1
        return self.edge_normalization == "true"
