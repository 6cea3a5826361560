"""CUDA paths: bf16 autocast, channels_last, torch.compile and on-device data (needs a GPU)."""

from __future__ import annotations

import json

import pytest
import torch

from kubenas.space import GraphConfig, MacroArchitecture, nn_config
from tests.trainer.spaces import KATIB_EXAMPLE_ARCHITECTURE, katib_ops
from trainer.data import load_dataset
from trainer.enas.model import build_child, parse_child
from trainer.train import TrainConfig, fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)"),
]


def _model() -> torch.nn.Module:
    arch = MacroArchitecture(tuple(tuple(r) for r in KATIB_EXAMPLE_ARCHITECTURE))
    config = nn_config(GraphConfig(8, (32, 32, 3), (10,)), katib_ops(), arch.op_ids)
    return build_child(parse_child(arch.to_json(), json.dumps(config)))


@pytest.mark.parametrize("compile_model", [False, True])
def test_bf16_channels_last_training_on_cuda(compile_model: bool) -> None:
    device = torch.device("cuda")
    splits = load_dataset("synthetic", device=device, input_shape=(3, 32, 32), num_classes=10, size=1024)
    assert splits.train.x.is_cuda
    model = _model().to(device)
    result = fit(model, splits, TrainConfig(epochs=2, batch_size=128, compile=compile_model), report=lambda e, m: None)
    assert result.peak_memory_bytes > 0
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in result.history)
    assert result.history[-1]["Training-Loss"] < result.history[0]["Training-Loss"] * 1.05
