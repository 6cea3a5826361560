"""`--compile` for the DARTS search (CPU, tiny sizes): the compiled supernet computes the
same losses and second-order hypergradient as the eager one."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

from tests.trainer.test_darts_architect import optimizers, tiny
from trainer.darts.architect import Architect

pytestmark = [pytest.mark.slow,  # Inductor compiles a few small graphs: about a minute on one core
              pytest.mark.usefixtures("one_thread")]


def test_compiled_edges_give_the_eager_hypergradient() -> None:
    torch._dynamo.reset()
    counters.clear()
    eager, data = tiny(primitives=("separable_convolution_3x3", "max_pooling_3x3", "skip_connection"))
    compiled = copy.deepcopy(eager)
    compiled.compile_edges()
    xt, yt, xv, yv = data
    results = []
    for model in (eager, compiled):
        w_opt, a_opt = optimizers(model, 0.9, 3e-4)
        F.cross_entropy(model(xt), yt).backward()  # one real weight step: a momentum buffer
        w_opt.step()
        w_opt.zero_grad(set_to_none=True)
        loss, hyper = Architect(model, w_opt, a_opt, "second", 0.9, 3e-4).hypergradient(xt, yt, xv, yv, lr=0.1)
        results.append((float(loss.detach()), [h.detach() for h in hyper]))
    (eager_loss, eager_hyper), (compiled_loss, compiled_hyper) = results
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-4)
    for e, c in zip(eager_hyper, compiled_hyper):
        assert e.abs().max() > 1e-4  # a real gradient, not zeros on both sides
        torch.testing.assert_close(c, e, rtol=1e-3, atol=1e-5)
    # the edges really ran compiled (dynamo falls back to eager silently when it cannot)
    assert counters["stats"]["unique_graphs"] >= 2, dict(counters["stats"])
    assert not counters["graph_break"], dict(counters["graph_break"])
