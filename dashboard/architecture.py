"""Architectures as drawings: nodes placed on a plane and labelled edges between them.

The architecture is read once, by the core (`kubenas.architecture.find_architecture`, the
reading the terminal, results.json and `kubenas-train retrain` use); this module only
places it: an ENAS macro network (a column of layers naming their op, with skip edges
from the input or earlier layers, Katib's indexing), a cell genotype (DARTS, ENAS micro,
one-shot ENAS; a normal and a reduction cell) or a NAS-Bench-201 cell, each with the
core's words. The browser draws a `Drawing` with the chart library; nothing here knows
about HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kubenas.architecture import FoundArchitecture, describe_op, find_architecture, primitive_word
from kubenas.genotype import Genotype, GenotypeError
from kubenas.nb201 import NB201_EDGES, NB201_NUM_NODES, Cell201
from kubenas.space import MacroArchitecture

__all__ = ["Drawing", "Edge", "Graph", "Node", "draw", "find"]


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    bend: float = 0.0       # how far the curve bows from the straight line (plot units, signed)
    kind: str = "op"        # op | chain | skip | concat


@dataclass(frozen=True)
class Graph:
    title: str
    nodes: Sequence[Node]
    edges: Sequence[Edge]


@dataclass(frozen=True)
class Drawing:
    kind: str                      # macro | cells | nb201
    summary: str                   # one line a person reads
    graphs: Sequence[Graph]
    lines: Sequence[str] = field(default_factory=list)   # the architecture in words, one line each
    source: str = ""               # where the trial's architecture was found

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def find(assignments: Mapping[str, str], observation: Mapping[str, float | str], output: Iterable[str] = (),
         genotype_file: object = None) -> FoundArchitecture | None:
    """A trial's architecture as the core reads it; else the genotype.json a DARTS trial
    wrote (`genotype_file`, its parsed JSON); None for an HPO trial or nothing readable."""
    found = find_architecture(assignments, observation, output)
    if found is None and isinstance(genotype_file, Mapping):
        try:
            genotype = Genotype.from_dict(genotype_file)
        except GenotypeError:
            return None
        found = FoundArchitecture("cell", genotype.to_json(), None, "the trial's genotype.json", genotype=genotype)
    return found


def _skip_source(index: int) -> str:
    # Katib's indexing: skip bit 0 is the network input, bit j the output of layer j-1.
    return "input" if index == 0 else f"layer{index - 1}"


def _macro(found: FoundArchitecture, arch: MacroArchitecture) -> list[Graph]:
    n = len(arch.rows)
    nodes = [Node("input", "input", 0.0, 0.0)]
    edges: list[Edge] = []
    for i, row in enumerate(arch.rows):
        op = found.ops.get(row[0])
        label = describe_op(op) if op is not None else f"op {row[0]}"
        nodes.append(Node(f"layer{i}", f"layer {i}: {label}", 0.0, -(i + 1.0)))
        edges.append(Edge("input" if i == 0 else f"layer{i - 1}", f"layer{i}", kind="chain"))
        for j, bit in enumerate(row[1:]):
            if bit:  # node j sits at y = -j (the input at 0), layer i at -(i + 1)
                edges.append(Edge(_skip_source(j), f"layer{i}", bend=-0.3 * (i + 1 - j), kind="skip"))
    nodes.append(Node("output", "output", 0.0, -(n + 1.0)))
    edges.append(Edge(f"layer{n - 1}" if n else "input", "output", kind="chain"))
    return [Graph("network", nodes, edges)]


def _cell(title: str, edges_in: Sequence[tuple[str, int]], concat: Sequence[int]) -> Graph:
    steps = len(edges_in) // 2
    nodes = [Node("c_{k-2}", "c_{k-2}", 0.0, 0.0), Node("c_{k-1}", "c_{k-1}", 1.0, 0.0)]
    names = ["c_{k-2}", "c_{k-1}"]
    for k in range(steps):
        nodes.append(Node(str(k), f"node {k}", k + 2.0, 0.0))
        names.append(str(k))
    nodes.append(Node("c_{k}", "c_{k} (concat)", steps + 2.0, 0.0))
    edges: list[Edge] = []
    for i, (op, source) in enumerate(edges_in):
        target = i // 2
        distance = target + 2 - source
        sign = 1.0 if i % 2 == 0 else -1.0
        edges.append(Edge(names[source], str(target), primitive_word(op), bend=sign * (0.25 + 0.18 * distance)))
    for j, k in enumerate(concat):
        distance = steps + 2 - k  # node k-2 sits at x = k
        edges.append(Edge(str(k - 2), "c_{k}", "", bend=0.12 * distance * (1 if j % 2 else -1), kind="concat"))
    return Graph(f"{title} cell", nodes, edges)


def _nb201(cell: Cell201) -> list[Graph]:
    nodes = [Node(str(i), "input" if i == 0 else "output" if i == NB201_NUM_NODES - 1 else f"node {i}",
                  float(i), 0.0) for i in range(NB201_NUM_NODES)]
    edges = [Edge(str(src), str(to), op, bend=(0.3 + 0.2 * (to - src)) * (1 if n % 2 else -1))
             for n, (op, (to, src)) in enumerate(zip(cell.ops, NB201_EDGES)) if op != "none"]
    return [Graph("cell", nodes, edges)]


def draw(found: FoundArchitecture) -> Drawing | None:
    """The drawing of a found architecture, with the core's words (None for a kind not drawn)."""
    lines = [line.strip() for line in found.lines()]
    if found.macro is not None or found.cell is not None:
        lines = lines[1:]  # the header line ("ENAS macro network, 3 layers:") is the summary's
    if found.macro is not None:
        skips = sum(sum(row[1:]) for row in found.macro.rows)
        return Drawing("macro", f"ENAS macro network: {len(found.macro.rows)} layers, {skips} skip connections",
                       _macro(found, found.macro), lines, found.source)
    if found.genotype is not None:
        g = found.genotype
        graphs = [_cell("normal", g.normal, g.normal_concat), _cell("reduction", g.reduce, g.reduce_concat)]
        return Drawing("cells", f"cell genotype: normal and reduction cell, {g.num_nodes} nodes each", graphs, lines,
                       found.source)
    if found.cell is not None:
        return Drawing("nb201", f"NAS-Bench-201 cell {found.cell.to_string()}", _nb201(found.cell), lines,
                       found.source)
    return None
