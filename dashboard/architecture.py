"""Architectures as drawings: nodes placed on a plane and labelled edges between them.

Every kind of kubenas architecture becomes one `Drawing`: an ENAS macro network (a column
of layers, each naming its op, with skip edges from earlier layers), a cell genotype
(DARTS or ENAS micro; a normal and a reduction cell) and a NAS-Bench-201 cell. The
browser draws a `Drawing` with the chart library; nothing here knows about HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kubenas.genotype import GENOTYPE_LINE, Genotype, GenotypeError
from kubenas.nb201 import NB201_EDGES, NB201_NUM_NODES, Cell201
from kubenas.space import MacroArchitecture, SpaceError, loads_lenient

__all__ = ["Drawing", "Edge", "Node", "describe", "genotype_from_text", "op_words"]


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def op_words(name: str) -> str:
    """`separable_convolution_3x3` -> `separable convolution 3x3`."""
    return name.replace("_", " ").strip() or "?"


def _macro_op(entry: Any, op_id: int) -> str:
    """The words of one nn_config embedding entry: `convolution 3x3, 32 filters`."""
    if not isinstance(entry, Mapping):
        return f"op {op_id}"
    words = [op_words(str(entry.get("opt_type", f"op {op_id}")))]
    raw = entry.get("opt_params")
    params: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    details = []
    for key, value in params.items():
        if key == "filter_size":
            words[0] += f" {value}x{value}"
        elif key == "num_filter":
            details.append(f"{value} filters")
        elif key == "reduction_type":
            words[0] = f"{op_words(str(value))}"
        elif key == "pool_size":
            words[0] += f" {value}x{value}"
        else:
            details.append(f"{op_words(str(key))} {value}")
    return ", ".join(words + details)


def _macro(arch: MacroArchitecture, nn_config: Any) -> Drawing:
    embedding = nn_config.get("embedding") if isinstance(nn_config, Mapping) else None
    embedding = embedding if isinstance(embedding, Mapping) else {}
    n = len(arch.rows)
    nodes = [Node("input", "input", 0.0, 0.0)]
    edges: list[Edge] = []
    lines = []
    for i, row in enumerate(arch.rows):
        label = _macro_op(embedding.get(str(row[0])), row[0])
        nodes.append(Node(f"layer{i}", f"layer {i}: {label}", 0.0, -(i + 1.0)))
        edges.append(Edge("input" if i == 0 else f"layer{i - 1}", f"layer{i}", kind="chain"))
        skips = [j for j, bit in enumerate(row[1:]) if bit]
        for j in skips:
            if j != i - 1:  # the previous layer already feeds it
                edges.append(Edge(f"layer{j}", f"layer{i}", bend=-0.35 * (i - j), kind="skip"))
            else:
                edges.append(Edge(f"layer{j}", f"layer{i}", bend=-0.25, kind="skip"))
        skip_words = f"; skips from layer {', '.join(map(str, skips))}" if skips else ""
        lines.append(f"layer {i}: {label}{skip_words}")
    nodes.append(Node("output", "output", 0.0, -(n + 1.0)))
    edges.append(Edge(f"layer{n - 1}" if n else "input", "output", kind="chain"))
    skip_count = sum(sum(row[1:]) for row in arch.rows)
    return Drawing("macro", f"ENAS macro network: {n} layers, {skip_count} skip connections",
                   [Graph("network", nodes, edges)], lines)


def _cell(title: str, edges_in: Sequence[tuple[str, int]], concat: Sequence[int]) -> tuple[Graph, list[str]]:
    steps = len(edges_in) // 2
    nodes = [Node("c_{k-2}", "c_{k-2}", 0.0, 0.0), Node("c_{k-1}", "c_{k-1}", 1.0, 0.0)]
    names = ["c_{k-2}", "c_{k-1}"]
    for k in range(steps):
        nodes.append(Node(str(k), f"node {k}", k + 2.0, 0.0))
        names.append(str(k))
    nodes.append(Node("c_{k}", "c_{k} (concat)", steps + 2.0, 0.0))
    edges: list[Edge] = []
    lines = []
    for i, (op, source) in enumerate(edges_in):
        target = i // 2
        distance = target + 2 - source
        sign = 1.0 if i % 2 == 0 else -1.0
        edges.append(Edge(names[source], str(target), op_words(op), bend=sign * (0.25 + 0.18 * distance)))
        if i % 2:
            first, second = edges_in[i - 1], edges_in[i]
            lines.append(f"{title} node {target}: {op_words(first[0])} of {names[first[1]]}"
                         f" + {op_words(second[0])} of {names[second[1]]}")
    for j, k in enumerate(concat):
        distance = steps + 2 - k  # node k-2 sits at x = k
        edges.append(Edge(str(k - 2), "c_{k}", "", bend=0.12 * distance * (1 if j % 2 else -1), kind="concat"))
    lines.append(f"{title} output: concatenation of node {', '.join(str(k - 2) for k in concat)}")
    return Graph(f"{title} cell", nodes, edges), lines


def _cells(genotype: Genotype, source: str) -> Drawing:
    normal, normal_lines = _cell("normal", genotype.normal, genotype.normal_concat)
    reduce, reduce_lines = _cell("reduction", genotype.reduce, genotype.reduce_concat)
    return Drawing("cells", f"{source}: normal and reduction cell, {genotype.num_nodes} nodes each",
                   [normal, reduce], normal_lines + reduce_lines)


def _nb201(cell: Cell201) -> Drawing:
    nodes = [Node(str(i), "input" if i == 0 else "output" if i == NB201_NUM_NODES - 1 else f"node {i}",
                  float(i), 0.0) for i in range(NB201_NUM_NODES)]
    edges, lines = [], []
    for n, (op, (to, src)) in enumerate(zip(cell.ops, NB201_EDGES)):
        if op == "none":
            continue
        edges.append(Edge(str(src), str(to), op_words(op), bend=(0.3 + 0.2 * (to - src)) * (1 if n % 2 else -1)))
        lines.append(f"node {to} <- node {src}: {op_words(op)}")
    return Drawing("nb201", f"NAS-Bench-201 cell {cell.to_string()}", [Graph("cell", nodes, edges)], lines)


def genotype_from_text(text: str) -> Genotype | None:
    """The genotype in trial output: the last `Best-Genotype=Genotype(...)` line, else the
    last `<name>=Genotype(...)` one; None when there is none or it does not parse."""
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = GENOTYPE_LINE.search(line)
        if match:
            found.append((match[1], match[2].strip()))
    preferred = [g for name, g in found if name == "Best-Genotype"] or [g for _, g in found]
    for candidate in reversed(preferred):
        try:
            return Genotype.parse_katib(candidate)
        except GenotypeError:
            continue
    return None


def describe(assignments: Mapping[str, str], observation: Mapping[str, float | str],
             hints: Mapping[str, Any]) -> Drawing | None:
    """The drawing of a trial's architecture, or None when it has none (an HPO trial).

    Looked for in order: the `architecture` assignment (macro rows + nn_config, a Genotype,
    an NB201 string), a genotype the trial wrote (`hints["genotype"]`), a genotype the trial
    reported as a metric or printed (`hints["output"]`)."""
    text = assignments.get("architecture")
    if isinstance(text, str) and text.strip():
        try:
            return _nb201(Cell201.from_string(text))
        except SpaceError:
            pass
        try:
            return _cells(Genotype.from_json(text), "ENAS micro")
        except GenotypeError:
            pass
        try:
            arch = MacroArchitecture.from_json(text)
        except SpaceError:
            arch = None
        if arch is not None:
            try:
                config = loads_lenient(assignments.get("nn_config", "{}"), "nn_config")
            except SpaceError:
                config = {}
            return _macro(arch, config)
    if isinstance(hints.get("genotype"), Mapping):
        try:
            return _cells(Genotype.from_dict(hints["genotype"]), "DARTS genotype")
        except GenotypeError:
            pass
    for value in observation.values():
        if isinstance(value, str) and value.startswith("Genotype("):
            try:
                return _cells(Genotype.parse_katib(value), "DARTS genotype")
            except GenotypeError:
                continue
    output = hints.get("output")
    if isinstance(output, str):
        genotype = genotype_from_text(output)
        if genotype is not None:
            return _cells(genotype, "DARTS genotype")
    return None
