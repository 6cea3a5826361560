"""Macro encoding (Katib's ENAS): per layer an op id, then skip bits to every earlier layer.

Choices: for layer i in order, `layer_i.op` (one of the expanded operations), then
`layer_i.skip_j` for j < i (0 or 1). The vector is the `architecture` rows flattened.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from kubenas.op_shapes import MapTooSmall, first_misfit, op_output_hw, widest_op_ids
from kubenas.space import ExpandedOp, MacroArchitecture, NasConfig, SpaceError, nn_config
from suggestion.algorithms.encoding.base import (
    ARCHITECTURE,
    NN_CONFIG,
    Choice,
    NasEncoding,
    Vector,
    as_vector,
    compact,
)

__all__ = ["MacroEncoding", "macro_assignments", "rows_key"]

_MAX_REMEMBERED = 1 << 16  # (map, depth) answers kept per encoding


def rows_key(rows: Sequence[Sequence[int]]) -> str:
    """The whitespace-free `architecture` text of rows (the macro point identity)."""
    return json.dumps([list(r) for r in rows], separators=(",", ":"))


def macro_assignments(nas: NasConfig, ops: Sequence[ExpandedOp], rows: Sequence[Sequence[int]]) -> dict[str, str]:
    """The `architecture` and `nn_config` assignments for one macro architecture.

    `ops` is `nas.expanded()`, passed in so a batch expands the operations once.
    """
    arch = MacroArchitecture(tuple(tuple(r) for r in rows))
    config = nn_config(nas.graph_config, ops, arch.op_ids)
    return {ARCHITECTURE: arch.to_json(), NN_CONFIG: json.dumps(config)}


def _flatten(combo: Sequence[tuple[tuple[int, ...], str]]) -> Vector:
    return tuple(x for row, _text in combo for x in row)


class MacroEncoding(NasEncoding):
    """`architecture` rows [op_id, skip_0..skip_{i-1}] over Katib's expanded op list."""

    mode = "macro"

    def __init__(self, nas: NasConfig) -> None:
        super().__init__(nas)
        self.ops = nas.expanded()
        self.num_layers = nas.graph_config.num_layers
        sizes = nas.graph_config.input_sizes
        # Katib's inputSizes are [H, W, C]; without them no shape is known and every child "fits".
        self.input_hw: tuple[int, int] | None = (sizes[0], sizes[1]) if len(sizes) >= 2 else None
        self._outs: dict[tuple[int, tuple[int, int]], tuple[int, int] | None] = {}
        self._finishes: dict[tuple[tuple[int, int], int], bool] = {}
        self._allowed_ops: dict[tuple[tuple[int, int], int], list[int]] = {}
        if self.input_hw is not None and self.ops and widest_op_ids(self.ops, self.input_hw, self.num_layers) is None:
            most = max(k for k in range(self.num_layers) if widest_op_ids(self.ops, self.input_hw, k) is not None)
            raise SpaceError("nasConfig.graphConfig.numLayers", self.num_layers,
                             f"at most {most} layers fit inputSizes {list(sizes)} with these operations (each "
                             "one shrinks the map); use fewer layers or an op that keeps the map size")

    def build_choices(self) -> Iterator[Choice]:
        for i in range(self.num_layers):
            yield Choice(f"layer_{i}.op", len(self.ops), "op")
            for j in range(i):
                yield Choice(f"layer_{i}.skip_{j}", 2, "skip")

    @property
    def size(self) -> int:
        layers = self.num_layers
        return len(self.ops) ** layers * 2 ** (layers * (layers - 1) // 2)

    def rows(self, vector: Sequence[int]) -> list[list[int]]:
        """The architecture rows of a flattened vector."""
        return [list(vector[i * (i + 1) // 2 : (i + 1) * (i + 2) // 2]) for i in range(self.num_layers)]

    def architecture(self, vector: Sequence[int]) -> str:
        return MacroArchitecture(tuple(tuple(r) for r in self.rows(vector))).to_json()

    def nn_config(self, vector: Sequence[int]) -> dict[str, Any]:
        return nn_config(self.nas.graph_config, self.ops, [row[0] for row in self.rows(vector)])

    def check_vector(self, vector: Sequence[int]) -> None:
        # Without building the choices: op ids per row start, bits elsewhere.
        L = self.num_layers
        if len(vector) != L * (L + 1) // 2:
            raise SpaceError("vector", list(vector), f"must hold {L * (L + 1) // 2} choices (macro encoding)")
        for i in range(L):
            start = i * (i + 1) // 2
            if not 0 <= vector[start] < len(self.ops):
                raise SpaceError(f"layer_{i}.op", vector[start], f"must be an integer in [0, {len(self.ops) - 1}]")
            for j, bit in enumerate(vector[start + 1 : start + 1 + i]):
                if bit not in (0, 1):
                    raise SpaceError(f"layer_{i}.skip_{j}", bit, "must be an integer in [0, 1]")

    def _out(self, op_id: int, hw: tuple[int, int]) -> tuple[int, int] | None:
        """The map op `op_id` makes from `hw` (None: it does not fit), remembered: random
        draws ask for every op of every layer and the same (op, map) pairs recur."""
        key = (op_id, hw)
        if key in self._outs:
            return self._outs[key]
        try:
            out: tuple[int, int] | None = op_output_hw(self.ops[op_id], hw)
        except MapTooSmall:
            out = None
        if len(self._outs) < _MAX_REMEMBERED:
            self._outs[key] = out
        return out

    def _can_finish(self, hw: tuple[int, int], layers: int) -> bool:
        """Whether `layers` more layers fit after an `hw` map: the widest chain (each op's
        output grows with its input, so the op keeping the largest map is always the safest
        continuation), walked once and remembered for every (map, depth) on it."""
        path: list[tuple[tuple[int, int], int]] = []
        here, left = hw, layers
        answer: bool | None = None
        while answer is None:
            if (here, left) in self._finishes:
                answer = self._finishes[(here, left)]
                break
            path.append((here, left))
            outs = [o for k in range(len(self.ops)) if (o := self._out(k, here)) is not None]
            if left == 0 or any(o == here for o in outs):  # a map-keeping op fits every remaining layer
                answer = True
            elif not outs:
                answer = False
            else:
                here, left = max(outs, key=min), left - 1
        if len(self._finishes) < _MAX_REMEMBERED:
            self._finishes.update(dict.fromkeys(path, answer))
        return answer

    def _allowed(self, hw: tuple[int, int], left: int) -> list[int]:
        """The ops a layer may take on an `hw` map with `left` layers after it (remembered)."""
        key = (hw, left)
        allowed = self._allowed_ops.get(key)
        if allowed is None:
            allowed = [k for k in range(len(self.ops)) if (o := self._out(k, hw)) is not None and self._can_finish(o, left)]
            if len(self._allowed_ops) < _MAX_REMEMBERED // 16:  # lists of op ids: fewer of them
                self._allowed_ops[key] = allowed
        return allowed

    def fits(self, vector: Sequence[int]) -> bool:
        """Whether each layer's op fits the map it receives (a 2x2 pooling needs a 2x2 map)."""
        if self.input_hw is None:
            return True
        return first_misfit(self.ops, self.input_hw, [row[0] for row in self.rows(vector)]) is None

    def random_vector(self, rng: random.Random) -> Vector:
        """Uniform per decision among the ops that fit the map and leave the remaining
        layers a fitting continuation (every op where all fit, so seeds draw as before)."""
        everything = list(range(len(self.ops)))
        hw = self.input_hw
        out: list[int] = []
        for i in range(self.num_layers):
            allowed = everything if hw is None else self._allowed(hw, self.num_layers - i - 1)
            op_id = allowed[rng.randrange(len(allowed))]
            if hw is not None:
                hw = self._out(op_id, hw)
            out.append(op_id)
            out.extend(rng.randrange(2) for _ in range(i))
        return tuple(out)

    def encode(self, vector: Sequence[int]) -> dict[str, str]:
        vector = as_vector(vector)
        self.check_vector(vector)
        return macro_assignments(self.nas, self.ops, self.rows(vector))

    def decode(self, assignments: Mapping[str, str]) -> Vector:
        if ARCHITECTURE not in assignments:
            raise SpaceError("architecture", None, "the trial has no architecture assignment")
        arch = MacroArchitecture.from_json(assignments[ARCHITECTURE])
        if len(arch.rows) != self.num_layers:
            raise SpaceError("architecture", assignments[ARCHITECTURE], f"must have {self.num_layers} rows (numLayers)")
        for i, row in enumerate(arch.rows):
            if row[0] >= len(self.ops):
                raise SpaceError(f"architecture[{i}][0]", row[0], f"op ids are in [0, {len(self.ops) - 1}]")
        return tuple(x for row in arch.rows for x in row)

    def key(self, vector: Sequence[int]) -> Hashable:
        return rows_key(self.rows(vector))

    def assignments_key(self, assignments: Mapping[str, str]) -> Hashable | None:
        # Katib prints `[[0], [1, 0]]`, we write the same rows: both key as `[[0],[1,0]]`.
        text = assignments.get(ARCHITECTURE)
        return None if text is None else compact(text)

    def lazy_points(self) -> Iterator[tuple[Hashable, Callable[[], Vector]]]:
        # Each layer's rows with their compact text, so a point's key is one join: a call
        # near the end of a large grid walks (and skips) almost every point.
        rows_per_layer = [
            [(row, rows_key([row])[1:-1]) for row in
             ((op, *bits) for op in range(len(self.ops)) for bits in itertools.product((0, 1), repeat=layer))]
            for layer in range(self.num_layers)
        ]
        for combo in itertools.product(*rows_per_layer):
            yield "[" + ",".join(text for _row, text in combo) + "]", partial(_flatten, combo)

    def fingerprint(self) -> dict[str, Any]:
        return {"mode": self.mode, "num_layers": self.num_layers, "ops": [op.to_json() for op in self.ops]}
