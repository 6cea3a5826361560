"""Draw a macro architecture as a PNG (matplotlib): layers left to right, skips as arcs.

The input sits on the left; each layer is a box labelled with its op (type and
parameters); the chain from one layer to the next is a straight arrow and every skip bit
an arc above it from the earlier output it reads (Katib's indexing: 0 is the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kubenas.space import ExpandedOp

__all__ = ["op_label", "plot_macro"]

_SHORT = {"convolution": "conv", "separable_convolution": "sep conv", "depthwise_convolution": "dw conv",
          "dilated_convolution": "dil conv", "reduction": "pool", "skip_connection": "skip"}


def op_label(op: ExpandedOp) -> str:
    """A short two-line label: `conv 3x3` over `32 filters`, `pool max 2x2`, ..."""
    p = op.opt_params
    if op.opt_type == "reduction":
        kind = str(p.get("reduction_type", "max_pooling")).replace("_pooling", "")
        size = p.get("pool_size", 2)
        return f"pool {kind}\n{size}x{size}"
    head = _SHORT.get(op.opt_type, op.opt_type)
    if "filter_size" in p:
        head += f" {p['filter_size']}x{p['filter_size']}"
    details = [f"{p['num_filter']} filters"] if "num_filter" in p else []
    if int(p.get("depth_multiplier", 1)) != 1:
        details.append(f"x{p['depth_multiplier']}")
    if int(p.get("stride", 1)) != 1:
        details.append(f"stride {p['stride']}")
    return head + ("\n" + ", ".join(details) if details else "")


def plot_macro(rows: Sequence[Sequence[int]], ops: Sequence[ExpandedOp], path: Path) -> Path:
    """Write the architecture `rows` ([op_id, skip bits...] per layer) over `ops` to `path`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    by_id = {op.opt_id: op for op in ops}
    n = len(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * (n + 1)), 3.6))
    xs = [1.6 * i for i in range(n + 1)]  # x of the input (0) and of each layer's output
    cmap = plt.get_cmap("tab10")
    types = sorted({by_id[int(r[0])].opt_type for r in rows})
    for i, row in enumerate(rows):
        ax.annotate("", xy=(xs[i + 1], 0), xytext=(xs[i], 0),
                    arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2, "shrinkA": 26, "shrinkB": 26})
        for j, bit in enumerate(row[1:]):
            if bit:
                ax.annotate("", xy=(xs[i + 1], 0.25), xytext=(xs[j], 0.25),
                            arrowprops={"arrowstyle": "-|>", "color": "#1f78b4", "lw": 1.0,
                                        "shrinkA": 8, "shrinkB": 8, "connectionstyle": "arc3,rad=-0.35"})
    ax.text(xs[0], 0, "input", ha="center", va="center", fontsize=9,
            bbox={"boxstyle": "round,pad=0.4", "fc": "#a6cee3", "ec": "black"})
    for i, row in enumerate(rows):
        op = by_id[int(row[0])]
        ax.text(xs[i + 1], 0, f"{i}: {op_label(op)}", ha="center", va="center", fontsize=7,
                bbox={"boxstyle": "round,pad=0.4", "fc": cmap(types.index(op.opt_type) % 10), "ec": "black",
                      "alpha": 0.8})
    ax.set_xlim(-0.9, xs[-1] + 0.9)
    ax.set_ylim(-0.8, 0.6 + 0.45 * n)
    ax.axis("off")
    ax.set_title("macro architecture (arcs: skip connections)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
