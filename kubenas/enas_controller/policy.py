"""The ENAS controller: an LSTM policy that samples architectures and re-scores given ones.

One implementation for the `enas` suggestion service (a reward per trial) and the one-shot
`kubenas-train enas-search` (rewards from shared-weight children). Runs on the CPU: its
tensors are a few kilobytes, and its samples drive the supernet on any device.

`forward(batch, forced=...)` with `forced=None` samples decisions from `generator`; with
a decisions tensor it replays those decisions (teacher forcing) and returns their
log-probabilities under the current policy. That is what lets every evaluated
architecture be paired with its own reward. Loops only compute raw scores;
log-probabilities, entropies and penalties are taken once over the stacked scores, which
keeps the op count per training step (and so the latency of 50 steps) low.

Decision tensors:
- macro: (B, L, L+1) int64; [b, i, 0] is layer i's op id, [b, i, 1 + j] (j < i) the skip bit
  from layer j; the rest is zero.
- micro: (B, 2, N, 4) int64; cell 0 normal, 1 reduce; per node [input_a, input_b, op_a, op_b]
  with inputs in [0, node + 1] (0, 1 = the two previous cells).
- nb201: (B, E) int64; [b, e] is the primitive on edge e of the NAS-Bench-201 cell, edges
  in the benchmark's string order.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LstmPolicy", "MacroController", "MicroController", "Nb201Controller", "Rollout"]


@dataclass(frozen=True)
class Rollout:
    """Decisions of a batch and, per architecture, their log-prob, entropy and skip penalty."""

    decisions: torch.Tensor
    log_prob: torch.Tensor
    entropy: torch.Tensor
    skip_penalty: torch.Tensor


def _categorical_stats(logits: torch.Tensor, choice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-prob of `choice` and summed entropy over the decision axis 1 of (B, D, K) logits."""
    log_p = torch.log_softmax(logits, dim=-1)
    chosen = log_p.gather(2, choice.unsqueeze(2)).squeeze(2).sum(1)
    return chosen, -(log_p.exp() * log_p).sum(dim=(1, 2))


# Logit of an impossible choice: its probability underflows to exactly 0 and, unlike -inf,
# neither p * log p nor its gradient becomes NaN.
_IMPOSSIBLE = -1e9


class LstmPolicy(nn.Module, ABC):
    """Shared parts: LSTM cell, start embedding, op embedding/softmax, attention, logit shaping."""

    def __init__(
        self,
        num_ops: int,
        hidden: int,
        temperature: float | None,
        tanh_const: float | None,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_const = tanh_const
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.g_emb = nn.Parameter(torch.empty(1, hidden))
        self.w_emb = nn.Embedding(num_ops, hidden)
        self.w_soft = nn.Linear(hidden, num_ops, bias=False)
        self.attn_w1 = nn.Linear(hidden, hidden, bias=False)
        self.attn_w2 = nn.Linear(hidden, hidden, bias=False)
        self.attn_v = nn.Linear(hidden, 1, bias=False)
        # ENAS initialises every controller weight uniformly in [-0.1, 0.1]; drawing from the
        # experiment's generator makes the initial policy a function of the seed alone.
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1, generator=generator)

    def shape(self, logits: torch.Tensor) -> torch.Tensor:
        """Katib's temperature then tanh squashing (each skipped when its setting is None)."""
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_const is not None:
            logits = self.tanh_const * torch.tanh(logits)
        return logits

    def skip_logit(self, raw: torch.Tensor) -> torch.Tensor:
        """Katib's two skip logits are [-q, q] for shaped q: P(skip) = sigmoid(2 * shape(raw)).

        The factor 2 is folded into the tanh constant (multiplying by 2 is exact, so this is
        bit-for-bit `2 * shape(raw)` with one tensor op less per training step).
        """
        if self.temperature is not None:
            raw = raw / self.temperature
        if self.tanh_const is not None:
            return (2 * self.tanh_const) * torch.tanh(raw)
        return 2 * raw

    def attend(self, h: torch.Tensor, keys_w: torch.Tensor) -> torch.Tensor:
        """Raw attention scores of the current state against earlier states: (B, K)."""
        return self.attn_v(torch.tanh(self.attn_w2(h).unsqueeze(1) + keys_w)).squeeze(-1)

    def forward(
        self, batch: int, forced: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> Rollout:
        """Sample `batch` architectures (`forced` None) or re-score the `forced` decisions."""
        if forced is None:
            return self._sample(batch, generator)
        return self.scorer(forced)()

    @abstractmethod
    def _sample(self, batch: int, generator: torch.Generator | None) -> Rollout:
        """Draw `batch` architectures step by step, each decision feeding the next."""

    @abstractmethod
    def scorer(self, decisions: torch.Tensor) -> Callable[[], Rollout]:
        """A function re-scoring `decisions` under the current weights (call once per step)."""

    def pick(self, raw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Sample one category per row from raw scores (shaped here, as in scoring)."""
        probs = torch.softmax(self.shape(raw), dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)


class MacroController(LstmPolicy):
    """Per layer: an op id, then (for layer i > 0) i skip bits by attention over layers < i.

    Sampling runs the recurrence step by step (each decision feeds the next). Scoring knows
    every decision up front, so it runs only the LSTM recurrence in the loop and computes
    all op logits and all attention scores afterwards in a few batched ops; both paths give
    the same distribution (tested), scoring just costs fewer ops per training step.
    """

    def __init__(
        self,
        num_layers: int,
        num_ops: int,
        hidden: int,
        temperature: float | None,
        tanh_const: float | None,
        skip_target: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__(num_ops, hidden, temperature, tanh_const, generator)
        self.num_layers = num_layers
        self.skip_target = skip_target
        rows, cols = torch.tril_indices(num_layers, num_layers, offset=-1)
        # Skip decision k is layer rows[k] looking at layer cols[k], in sampling order.
        self.skip_rows: torch.Tensor = rows
        self.skip_cols: torch.Tensor = cols

    def scorer(self, decisions: torch.Tensor) -> Callable[[], Rollout]:
        """A function re-scoring `decisions` under the current weights (call once per step).

        What does not depend on the weights (skip-input mixing, the chosen bits) is
        computed here once instead of at every training step.
        """
        bits = decisions[:, :, 1:].to(torch.float32)  # row i: layer i's skip bits to layers < i
        mix = bits / (1.0 + bits.sum(-1, keepdim=True))
        skips_off = 1.0 - decisions[:, self.skip_rows, self.skip_cols + 1].to(torch.float32)
        return lambda: self._score(decisions, mix, skips_off)

    def _sample(self, batch: int, generator: torch.Generator | None) -> Rollout:
        L = self.num_layers
        h = torch.zeros(batch, self.hidden)
        c = torch.zeros(batch, self.hidden)
        start = self.g_emb.expand(batch, -1)
        inputs = start
        decisions = torch.zeros(batch, L, L + 1, dtype=torch.long)
        op_raw: list[torch.Tensor] = []
        skip_raw: list[torch.Tensor] = []
        layers_h: list[torch.Tensor] = []
        layers_hw: list[torch.Tensor] = []
        for i in range(L):
            h, c = self.lstm(inputs, (h, c))
            raw = self.w_soft(h)
            op_raw.append(raw)
            decisions[:, i, 0] = self.pick(raw, generator)
            h, c = self.lstm(self.w_emb(decisions[:, i, 0]), (h, c))
            if i > 0:
                q = self.attend(h, torch.stack(layers_hw, dim=1))
                skip_raw.append(q)
                p_skip = torch.sigmoid(self.skip_logit(q))
                bits = (torch.rand(p_skip.shape, generator=generator) < p_skip).long()
                decisions[:, i, 1 : i + 1] = bits
                weights = bits.to(h.dtype)
                inputs = torch.bmm(weights.unsqueeze(1), torch.stack(layers_h, dim=1)).squeeze(1)
                inputs = inputs / (1.0 + weights.sum(1, keepdim=True))
            else:
                inputs = start
            layers_h.append(h)
            layers_hw.append(self.attn_w1(h))
        skips = torch.cat(skip_raw, dim=1) if skip_raw else torch.zeros(batch, 0)
        skips_off = 1.0 - decisions[:, self.skip_rows, self.skip_cols + 1].to(torch.float32)
        return self._rollout(decisions, torch.stack(op_raw, dim=1), skips, skips_off)

    def _score(self, decisions: torch.Tensor, mix: torch.Tensor, skips_off: torch.Tensor) -> Rollout:
        batch, L = decisions.shape[0], self.num_layers
        h = torch.zeros(batch, self.hidden)
        c = torch.zeros(batch, self.hidden)
        start = self.g_emb.expand(batch, -1)
        # One unbind instead of a select per layer: its backward is a single stack rather
        # than L zero-filled (B, L, H) gradients summed into the embedding's.
        op_inputs = self.w_emb(decisions[:, :, 0]).unbind(1)
        before_op: list[torch.Tensor] = []
        after_op: list[torch.Tensor] = []
        inputs = start
        for i in range(L):
            h, c = self.lstm(inputs, (h, c))
            before_op.append(h)
            h, c = self.lstm(op_inputs[i], (h, c))
            after_op.append(h)
            if i > 0:
                inputs = torch.bmm(mix[:, i : i + 1, :i], torch.stack(after_op[:i], dim=1)).squeeze(1)
            else:
                inputs = start
        op_raw = self.w_soft(torch.stack(before_op, dim=1))
        if L == 1:
            return self._rollout(decisions, op_raw, torch.zeros(batch, 0), skips_off)
        after = torch.stack(after_op, dim=1)
        queries = self.attn_w2(after)[:, self.skip_rows]
        keys = self.attn_w1(after)[:, self.skip_cols]
        skips = self.attn_v(torch.tanh(queries + keys)).squeeze(-1)
        return self._rollout(decisions, op_raw, skips, skips_off)

    def _rollout(
        self, decisions: torch.Tensor, op_raw: torch.Tensor, skip_raw: torch.Tensor, skips_off: torch.Tensor
    ) -> Rollout:
        """Log-prob, entropy and skip penalty from raw op scores (B, L, K), skip scores (B, S)
        and 1 - the chosen skip bits (B, S).

        Per skip with logit z, log P(off) = log P(on) - z, which turns the Bernoulli
        log-prob, entropy and KL to the target into a few ops on log P(on) and P(on);
        logsigmoid keeps them finite at any z, so P needs no clamping.
        """
        batch = decisions.shape[0]
        log_prob, entropy = _categorical_stats(self.shape(op_raw), decisions[:, :, 0])
        if skip_raw.shape[1] == 0:
            # A one-layer network has no skip decisions and no penalty (Katib averages an
            # empty list there and gets NaN).
            return Rollout(decisions, log_prob, entropy, torch.zeros(batch))
        z = self.skip_logit(skip_raw)
        log_on, p_on = F.logsigmoid(z), torch.sigmoid(z)
        log_prob = log_prob + (log_on - skips_off * z).sum(1)
        skip_entropy = (1 - p_on) * z - log_on
        entropy = entropy + skip_entropy.sum(1)
        # KL(p || t) = -H(p) - p log t - (1 - p) log(1 - t) = -H(p) - p logit(t) - log(1 - t).
        t = self.skip_target
        penalty = (skip_entropy + p_on * math.log(t / (1 - t))).mean(1).neg() - math.log(1 - t)
        return Rollout(decisions, log_prob, entropy, penalty)


class MicroController(LstmPolicy):
    """Per cell (normal, then reduce) and node: two inputs by attention, then two ops.

    As for macro, scoring runs only the LSTM recurrence in its loop and computes every
    op logit and attention score afterwards in batched ops.
    """

    def __init__(
        self,
        num_nodes: int,
        num_ops: int,
        hidden: int,
        temperature: float | None,
        tanh_const: float | None,
        generator: torch.Generator,
    ) -> None:
        super().__init__(num_ops, hidden, temperature, tanh_const, generator)
        self.num_nodes = num_nodes
        # Index decision 2 * node + slot may pick anchors 0 .. node + 1 of the N + 1 candidates.
        node_of_row = torch.arange(2 * num_nodes) // 2
        self.index_allowed: torch.Tensor = torch.arange(num_nodes + 1)[None, :] <= (node_of_row[:, None] + 1)

    def scorer(self, decisions: torch.Tensor) -> Callable[[], Rollout]:
        """A function re-scoring `decisions` under the current weights (call once per step)."""
        return lambda: self._score(decisions)

    def _sample(self, batch: int, generator: torch.Generator | None) -> Rollout:
        N = self.num_nodes
        h = torch.zeros(batch, self.hidden)
        c = torch.zeros(batch, self.hidden)
        start = self.g_emb.expand(batch, -1)
        rows = torch.arange(batch)
        decisions = torch.zeros(batch, 2, N, 4, dtype=torch.long)
        index_raw: list[torch.Tensor] = []  # padded to N + 1 candidates (masked in _rollout)
        op_raw: list[torch.Tensor] = []
        for cell in range(2):
            anchors: list[torch.Tensor] = []
            anchors_w: list[torch.Tensor] = []
            inputs = start
            for _ in range(2):  # the two previous cells' outputs
                h, c = self.lstm(inputs, (h, c))
                anchors.append(h)
                anchors_w.append(self.attn_w1(h))
            for node in range(N):
                keys = torch.stack(anchors, dim=1)
                keys_w = torch.stack(anchors_w, dim=1)
                for slot in range(2):
                    h, c = self.lstm(inputs, (h, c))
                    raw = self.attend(h, keys_w)
                    index_raw.append(F.pad(raw, (0, N - 1 - node)))
                    decisions[:, cell, node, slot] = self.pick(raw, generator)
                    inputs = keys[rows, decisions[:, cell, node, slot]]
                for slot in (2, 3):
                    h, c = self.lstm(inputs, (h, c))
                    raw = self.w_soft(h)
                    op_raw.append(raw)
                    decisions[:, cell, node, slot] = self.pick(raw, generator)
                    inputs = self.w_emb(decisions[:, cell, node, slot])
                h, c = self.lstm(inputs, (h, c))
                anchors.append(h)
                anchors_w.append(self.attn_w1(h))
                inputs = start
        return self._rollout(decisions, torch.stack(index_raw, dim=1), torch.stack(op_raw, dim=1))

    def _score(self, decisions: torch.Tensor) -> Rollout:
        batch, N = decisions.shape[0], self.num_nodes
        h = torch.zeros(batch, self.hidden)
        c = torch.zeros(batch, self.hidden)
        start = self.g_emb.expand(batch, -1)
        rows = torch.arange(batch)
        op_inputs = self.w_emb(decisions[:, :, :, 2:])  # (B, 2, N, 2, H)
        index_raw: list[torch.Tensor] = []
        before_op: list[torch.Tensor] = []
        for cell in range(2):
            anchors: list[torch.Tensor] = []
            before_index: list[torch.Tensor] = []
            inputs = start
            for _ in range(2):
                h, c = self.lstm(inputs, (h, c))
                anchors.append(h)
            for node in range(N):
                keys = torch.stack(anchors, dim=1)
                for slot in range(2):
                    h, c = self.lstm(inputs, (h, c))
                    before_index.append(h)
                    inputs = keys[rows, decisions[:, cell, node, slot]]
                for slot in range(2):
                    h, c = self.lstm(inputs, (h, c))
                    before_op.append(h)
                    inputs = op_inputs[:, cell, node, slot]
                h, c = self.lstm(inputs, (h, c))
                anchors.append(h)
                inputs = start
            # Every index decision of this cell against every candidate anchor (0 .. N).
            queries = self.attn_w2(torch.stack(before_index, dim=1))  # (B, 2N, H)
            keys_w = self.attn_w1(torch.stack(anchors[: N + 1], dim=1))  # (B, N+1, H)
            scores = self.attn_v(torch.tanh(queries.unsqueeze(2) + keys_w.unsqueeze(1))).squeeze(-1)
            index_raw.append(scores)
        op_raw = self.w_soft(torch.stack(before_op, dim=1))
        return self._rollout(decisions, torch.cat(index_raw, dim=1), op_raw)

    def _rollout(self, decisions: torch.Tensor, index_raw: torch.Tensor, op_raw: torch.Tensor) -> Rollout:
        """Log-prob and entropy from raw index scores (B, 4N, N+1; entries beyond a node's
        candidates are ignored) and op scores (B, 4N, K), both in (cell, node, slot) order."""
        batch, N = decisions.shape[0], self.num_nodes
        flat = decisions.reshape(batch, 2 * N, 4)
        # Mask after shaping: tanh would turn any "impossible" score into an ordinary logit.
        allowed = self.index_allowed.repeat(2, 1)
        index_logits = self.shape(index_raw).masked_fill(~allowed, _IMPOSSIBLE)
        lp_idx, ent_idx = _categorical_stats(index_logits, flat[:, :, :2].reshape(batch, -1))
        lp_op, ent_op = _categorical_stats(self.shape(op_raw), flat[:, :, 2:].reshape(batch, -1))
        return Rollout(decisions, lp_idx + lp_op, ent_idx + ent_op, torch.zeros(batch))


class Nb201Controller(LstmPolicy):
    """Per edge of the fixed NAS-Bench-201 cell, in string order: one primitive.

    Each step's input is the embedding of the previous edge's primitive (the start
    embedding for the first), so the LSTM state carries which edge comes next and what the
    cell holds so far. No attention and no skips: the wiring is fixed by the benchmark.
    """

    def __init__(
        self,
        num_edges: int,
        num_ops: int,
        hidden: int,
        temperature: float | None,
        tanh_const: float | None,
        generator: torch.Generator,
    ) -> None:
        super().__init__(num_ops, hidden, temperature, tanh_const, generator)
        self.num_edges = num_edges

    def scorer(self, decisions: torch.Tensor) -> Callable[[], Rollout]:
        """A function re-scoring `decisions` under the current weights (call once per step)."""
        return lambda: self._score(decisions)

    def _sample(self, batch: int, generator: torch.Generator | None) -> Rollout:
        h = torch.zeros(batch, self.hidden)
        c = torch.zeros(batch, self.hidden)
        inputs = self.g_emb.expand(batch, -1)
        decisions = torch.zeros(batch, self.num_edges, dtype=torch.long)
        op_raw: list[torch.Tensor] = []
        for edge in range(self.num_edges):
            h, c = self.lstm(inputs, (h, c))
            raw = self.w_soft(h)
            op_raw.append(raw)
            decisions[:, edge] = self.pick(raw, generator)
            inputs = self.w_emb(decisions[:, edge])
        return self._rollout(decisions, torch.stack(op_raw, dim=1))

    def _score(self, decisions: torch.Tensor) -> Rollout:
        batch = decisions.shape[0]
        h = torch.zeros(batch, self.hidden)
        c = torch.zeros(batch, self.hidden)
        op_inputs = self.w_emb(decisions[:, :-1]).unbind(1)
        inputs = self.g_emb.expand(batch, -1)
        states: list[torch.Tensor] = []
        for edge in range(self.num_edges):
            h, c = self.lstm(inputs, (h, c))
            states.append(h)
            if edge + 1 < self.num_edges:
                inputs = op_inputs[edge]
        return self._rollout(decisions, self.w_soft(torch.stack(states, dim=1)))

    def _rollout(self, decisions: torch.Tensor, op_raw: torch.Tensor) -> Rollout:
        log_prob, entropy = _categorical_stats(self.shape(op_raw), decisions)
        return Rollout(decisions, log_prob, entropy, torch.zeros(decisions.shape[0]))
