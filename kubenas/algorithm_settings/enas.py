"""Settings of `enas` (Katib's ten controller settings, plus ours) and `enas-oneshot`.

`enas-oneshot` takes the same controller settings with the ENAS paper's one-shot defaults
where they differ from Katib's multi-trial ones (a reward per validation minibatch, not per
trained child), `search_mode` limited to macro and micro, then the shared-weights ones. The
`enas-oneshot` suggestion and `kubenas-train enas-search` parse it with the same model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from kubenas.algorithm_settings.common import DEFAULT_NUM_NODES, DatasetName, SearchModeName
from kubenas.algorithm_settings.model import (
    KATIB_NONE,
    AlgorithmSettings,
    Int,
    InvalidSettings,
    Number,
    setting,
)

__all__ = ["MAX_HIDDEN_SIZE", "MAX_TRAIN_STEPS", "EnasOneshotSettings", "EnasSettings"]

# Upper bounds far past any published ENAS configuration (Katib: 64 and 50); beyond them a
# call allocates gigabytes or keeps a core busy for minutes.
MAX_HIDDEN_SIZE = 1024
MAX_TRAIN_STEPS = 1000

OneshotMode = Literal["macro", "micro"]
Sampler = Literal["enas", "random"]
Schedule = Literal["cosine", "constant"]

# The settings whose default enas-oneshot changes, declared once each.
_TanhConst = Annotated[Number | None, setting(
    "tanh constant on the controller's logits (None: off)", gt=0, none=KATIB_NONE)]
_EntropyWeight = Annotated[Number | None, setting(
    "weight of the sample entropy in the reward (None: off)", gt=0, none=KATIB_NONE)]
_BaselineDecay = Annotated[Number, setting("decay of the moving reward baseline", gt=0, le=1)]
_LearningRate = Annotated[Number, setting("Adam learning rate of the controller", gt=0, le=1)]
_NumNodes = Annotated[Int, setting("micro only: intermediate nodes per cell", ge=1, le=64)]


class EnasSettings(AlgorithmSettings):
    """`enas`: a controller (LSTM policy) trained by REINFORCE on each trial's reward."""

    controller_hidden_size: Annotated[Int, setting(
        "LSTM width of the controller", ge=1, le=MAX_HIDDEN_SIZE)] = 64
    controller_temperature: Annotated[Number | None, setting(
        "sampling temperature on the controller's logits (None: off)", gt=0, none=KATIB_NONE)] = 5.0
    controller_tanh_const: _TanhConst = 2.25
    controller_entropy_weight: _EntropyWeight = 1e-5
    controller_baseline_decay: _BaselineDecay = 0.999
    controller_learning_rate: _LearningRate = 5e-5
    controller_skip_target: Annotated[Number, setting(
        "target fraction of skip connections (macro)", gt=0, lt=1)] = 0.4
    controller_skip_weight: Annotated[Number | None, setting(
        "weight of the skip-target penalty (None: off)", gt=0, none=KATIB_NONE)] = 0.8
    controller_train_steps: Annotated[Int, setting(
        "policy-gradient steps per call", ge=1, le=MAX_TRAIN_STEPS)] = 50
    controller_log_every_steps: Annotated[Int, setting("log the controller's loss every N steps", ge=1)] = 10
    random_state: Annotated[Int | None, setting(
        "seeds the controller's weights and sampling (unset: random)",
        ge=0, lt=2**63, allowed="an integer in [0, 2^63)")] = None
    search_mode: Annotated[SearchModeName, setting(
        "the architecture encoding: macro (Katib's), micro (cells) or nb201 (NAS-Bench-201 cell)")] = "macro"
    num_nodes: _NumNodes = DEFAULT_NUM_NODES

    def fingerprint(self) -> dict[str, Any]:
        """What must match for saved controller state to be reused (all but logging)."""
        return self.model_dump(exclude={"controller_log_every_steps"})


class EnasOneshotSettings(EnasSettings):
    """`enas-oneshot` (`kubenas-train enas-search`): ENAS with parameter sharing in one trial."""

    controller_tanh_const: _TanhConst = 2.5
    controller_entropy_weight: _EntropyWeight = 1e-4
    controller_baseline_decay: _BaselineDecay = 0.99
    controller_learning_rate: _LearningRate = 3.5e-4
    controller_train_steps: Annotated[Int, setting(
        "Adam steps per controller step, on that step's children", ge=1, le=MAX_TRAIN_STEPS)] = 1
    search_mode: Annotated[OneshotMode, setting("the architecture encoding searched")] = "macro"
    num_epochs: Annotated[Int, setting("shared-weight training epochs", ge=1)] = 10
    batch_size: Annotated[Int, setting("minibatch, for training and rewards", ge=1)] = 64
    child_lr: Annotated[Number, setting("SGD (Nesterov) learning rate of the shared weights", gt=0, le=10)] = 0.05
    child_lr_min: Annotated[Number, setting("the cosine schedule's final learning rate", ge=0)] = 0.0005
    child_lr_schedule: Annotated[Schedule, setting("cosine to child_lr_min, or constant")] = "cosine"
    child_momentum: Annotated[Number, setting("SGD momentum of the shared weights", ge=0, lt=1)] = 0.9
    child_weight_decay: Annotated[Number, setting("weight decay of the shared weights", ge=0)] = 1e-4
    child_grad_clip: Annotated[Number, setting("gradient-norm clip of the shared weights", gt=0)] = 5.0
    init_channels: Annotated[Int, setting(
        "micro cell width; macro width when no op names num_filter", ge=1, le=1024)] = 16
    controller_steps_per_epoch: Annotated[Int, setting("controller steps per epoch", ge=1)] = 20
    controller_children_per_step: Annotated[Int, setting("children rewarded per controller step", ge=1, le=1024)] = 4
    final_children: Annotated[Int, setting(
        "children scored on the whole validation split at the end", ge=1, le=10_000)] = 16
    sampler: Annotated[Sampler, setting(
        "random: uniform children, controller untouched (random search with weight sharing)")] = "enas"
    dataset: DatasetName = "cifar10"

    def check(self) -> None:
        if self.child_lr_min > self.child_lr:
            raise InvalidSettings("child_lr_min", self.child_lr_min, f"must be <= child_lr ({self.child_lr})")
