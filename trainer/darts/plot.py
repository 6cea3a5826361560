"""Draw both cells of a genotype as one PNG a person can read (matplotlib, no graphviz).

Inputs c_{k-2} and c_{k-1} sit on the left, intermediate nodes in the middle, the cell
output c_{k} on the right; each chosen edge is an arrow labelled with its primitive and
coloured by it, concatenated nodes feed the output with grey arrows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubenas.genotype import Genotype

__all__ = ["plot_genotype"]


def _positions(num_nodes: int) -> dict[int, tuple[float, float]]:
    pos: dict[int, tuple[float, float]] = {0: (0.0, 1.5), 1: (0.0, -1.5)}
    for i in range(num_nodes):
        # A zig-zag keeps edges between neighbouring nodes from overlapping the straight ones.
        pos[i + 2] = (2.2 * (i + 1), 0.7 if i % 2 == 0 else -0.7)
    pos[-1] = (2.2 * (num_nodes + 1), 0.0)
    return pos


def _draw_cell(ax: Any, edges: tuple[tuple[str, int], ...], concat: tuple[int, ...], title: str,
               colours: dict[str, Any]) -> None:
    num_nodes = len(edges) // 2
    pos = _positions(num_nodes)
    labels = {0: "c_{k-2}", 1: "c_{k-1}", -1: "c_{k}", **{i + 2: str(i) for i in range(num_nodes)}}
    fills = {0: "#a6cee3", 1: "#a6cee3", -1: "#fdbf6f"}
    for e, (primitive, source) in enumerate(edges):
        target = e // 2 + 2
        (x0, y0), (x1, y1) = pos[source], pos[target]
        # The two inputs of a node bend to opposite sides, longer edges more, so arcs that
        # share a source or a target (and their labels) do not lie on top of each other.
        span = abs(target - source) if source >= 2 else target
        bend = (1 if e % 2 else -1) * (0.12 + 0.06 * span)
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": colours[primitive], "lw": 1.8,
                                "shrinkA": 16, "shrinkB": 16, "connectionstyle": f"arc3,rad={bend}"})
        # The label sits on the arc's midpoint (matplotlib's arc3 Bezier: half-way to its control point).
        mx = (x0 + x1) / 2 + 0.5 * bend * (y1 - y0)
        my = (y0 + y1) / 2 - 0.5 * bend * (x1 - x0)
        ax.text(mx, my, primitive, fontsize=7, ha="center", va="center", color=colours[primitive],
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    for node in concat:
        (x0, y0), (x1, y1) = pos[node], pos[-1]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": "#888888", "lw": 1.0, "ls": "--",
                                "shrinkA": 16, "shrinkB": 16})
    for node, (x, y) in pos.items():
        ax.text(x, y, f"${labels[node]}$" if node in (0, 1, -1) else labels[node], ha="center", va="center",
                fontsize=10, bbox={"boxstyle": "circle,pad=0.4", "fc": fills.get(node, "#d9d9d9"), "ec": "black"})
    ax.set_title(title)
    ax.set_xlim(-0.8, pos[-1][0] + 0.8)
    ax.set_ylim(-2.6, 2.9)
    ax.axis("off")


def plot_genotype(genotype: Genotype, path: Path) -> Path:
    """Write both cells of `genotype` to `path` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    primitives = sorted(genotype.primitives)
    cmap = plt.get_cmap("tab10")
    colours = {p: cmap(i % 10) for i, p in enumerate(primitives)}
    width = max(7.0, 2.4 * (genotype.num_nodes + 2))
    fig, axes = plt.subplots(2, 1, figsize=(width, 7.5))
    _draw_cell(axes[0], genotype.normal, genotype.normal_concat, "normal cell", colours)
    _draw_cell(axes[1], genotype.reduce, genotype.reduce_concat, "reduction cell", colours)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
