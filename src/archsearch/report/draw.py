"""Architectures drawn with matplotlib: cells as DAGs in the style of the DARTS paper's figures (Liu et al., ICLR
2019, Fig. 4-5: cell inputs c_{k-2}, c_{k-1}, intermediate nodes, output c_{k}; one labelled arrow per op), the
NAS-Bench-201 cell as its 4-node DAG (Dong & Yang, ICLR 2020), macro and MBConv networks as block diagrams, and any
other space as a table of its decisions."""
from __future__ import annotations

import re
from typing import Any

from ..space import Architecture, SearchSpace

_OP_COLOURS = {"sep": "#4c72b0", "dil": "#8172b2", "conv": "#4c72b0", "max": "#c44e52", "avg": "#dd8452",
               "skip": "#55a868", "identity": "#55a868", "id": "#55a868", "none": "#999999"}


def _colour(op: str) -> str:
    for key, c in _OP_COLOURS.items():
        if str(op).startswith(key):
            return c
    return "#333333"


def draw_architecture(space: SearchSpace, arch: Architecture, path) -> None:
    """Write a PNG of ``arch`` drawn as its space is usually drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if space.name == "cell":
        from ..genotypes import arch_to_genotype

        g = arch_to_genotype(space, arch)
        fig, axes = plt.subplots(1, 2, figsize=(14, 5.2), dpi=110)
        _draw_cell(axes[0], g.normal, g.normal_concat, "normal cell")
        _draw_cell(axes[1], g.reduce, g.reduce_concat, "reduction cell")
    elif space.name == "nb201":
        fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
        _draw_nb201(ax, arch)
    elif space.name == "macro":
        fig, ax = plt.subplots(figsize=(12, 3.4), dpi=110)
        _draw_macro(ax, space, arch)
    elif space.name == "mbconv":
        fig, ax = plt.subplots(figsize=(13, 3.8), dpi=110)
        _draw_mbconv(ax, space.format(arch))
    else:
        fig, ax = plt.subplots(figsize=(9, 0.6 + 0.28 * len(arch)), dpi=110)
        _draw_table(ax, arch)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _node(ax, xy, text, colour) -> None:
    ax.text(*xy, text, ha="center", va="center", fontsize=10, zorder=4,
            bbox=dict(boxstyle="round,pad=0.4", fc=colour, ec="0.25", lw=1))


def _edge(ax, a, b, label: str | None, rad: float = 0.0, colour: str = "0.2", dashed: bool = False,
          at: float = 0.5) -> None:
    """An arrow a -> b bending like matplotlib's arc3 (``rad``), its label at fraction ``at`` along the curve."""
    ax.annotate("", xy=b, xytext=a, zorder=2, arrowprops=dict(
        arrowstyle="-|>", color=colour, lw=1.3, ls="--" if dashed else "-", shrinkA=16, shrinkB=16,
        connectionstyle=f"arc3,rad={rad}"))
    if label:
        dx, dy = b[0] - a[0], b[1] - a[1]
        c = ((a[0] + b[0]) / 2 + rad * dy, (a[1] + b[1]) / 2 - rad * dx)  # arc3's Bezier control point
        u = 1 - at
        x = u * u * a[0] + 2 * u * at * c[0] + at * at * b[0]
        y = u * u * a[1] + 2 * u * at * c[1] + at * at * b[1]
        ax.text(x, y, label, fontsize=7.5, ha="center", va="center", color=colour, zorder=3,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))


def _draw_cell(ax, edges, concat, title: str) -> None:
    """Inputs on the left (c_{k-2} above, c_{k-1} below), intermediate nodes in a row, output on the right; edges
    between intermediate nodes arc above the row, the concatenation (dashed) below it."""
    nodes = len(edges) // 2
    pos = {0: (0.0, 3.0), 1: (0.0, -3.0)}
    for i in range(nodes):
        pos[i + 2] = (2.4 + 2.0 * i, 0.0)
    out = (2.4 + 2.0 * nodes + 0.4, 0.0)
    for e, (op, j) in enumerate(edges):
        target = e // 2 + 2
        a, b = pos[j], pos[target]
        if j < 2:  # from a cell input: a straight line; labels staggered in height so that a fan stays readable
            _edge(ax, a, b, op, 0.0, _colour(op), at=0.78 - 0.38 * (target - 2) / max(1, nodes - 1))
        else:
            _edge(ax, a, b, op, -0.35 - 0.08 * (target - j - 1), _colour(op), at=0.5)
    for k in concat:
        _edge(ax, pos[k], out, None, 0.25 if k - 2 < nodes - 1 else 0.0, "0.6", dashed=True)
    _node(ax, pos[0], "c_{k-2}", "#a1d99b")
    _node(ax, pos[1], "c_{k-1}", "#a1d99b")
    for i in range(nodes):
        _node(ax, pos[i + 2], str(i), "#9ecae1")
    _node(ax, out, "c_{k}", "#fdd49e")
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.8, out[0] + 0.8)
    ax.set_ylim(-3.5, 3.5)
    ax.set_aspect("equal")  # arc3 bends in display space: equal scales keep the labels on the arcs
    ax.axis("off")


def _draw_nb201(ax, arch: Architecture) -> None:
    pos = {i: (2.2 * i, 0.0) for i in range(4)}
    for label, op in sorted(arch.items()):
        m = re.match(r"(\d+)<-(\d+)", label)
        if not m:
            continue
        i, j = int(m.group(1)), int(m.group(2))
        if op == "none":
            continue
        rad = 0.0 if i - j == 1 else (0.35 if (i - j) == 2 else -0.45)
        _edge(ax, pos[j], pos[i], str(op), rad, _colour(op))
    for i in range(4):
        _node(ax, pos[i], "input" if i == 0 else ("output" if i == 3 else f"node {i}"),
              "#a1d99b" if i == 0 else ("#fdd49e" if i == 3 else "#9ecae1"))
    ax.set_title("NAS-Bench-201 cell (edges with 'none' omitted)", fontsize=11)
    ax.set_xlim(-0.9, 7.5)
    ax.set_ylim(-1.9, 1.9)
    ax.set_aspect("equal")
    ax.axis("off")


def _block(ax, x, w, text, colour, y=0.0, h=1.0) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=colour, ec="0.3", lw=1))
    ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=7.5)


def _draw_macro(ax, space: SearchSpace, arch: Architecture) -> None:
    layers = space.config.get("layers", 6)
    xs = [1.4 * (i + 1) for i in range(layers)]
    _block(ax, 0.0, 1.0, "stem", "#a1d99b")
    for i in range(layers):
        op = str(arch[f"l{i}_op"])
        label = f"{op}\n{'' if op == 'identity' else str(arch[f'l{i}_kernel']) + 'x' + str(arch[f'l{i}_kernel'])}" \
                f"\n{arch[f'l{i}_filters']} ch"
        _block(ax, xs[i], 1.0, label, "#9ecae1" if "pool" not in op else "#fdae6b", h=1.1)
        ax.annotate("", xy=(xs[i], 0), xytext=(xs[i] - 0.4, 0), arrowprops=dict(arrowstyle="-|>", color="0.3"))
        for s in arch.get(f"l{i}_skips", ()) or ():
            src = xs[s] + 0.5  # the output of layer s
            ax.annotate("", xy=(xs[i] + 0.5, 0.58), xytext=(src, 0.58), arrowprops=dict(
                arrowstyle="-|>", color="#55a868", lw=1, connectionstyle="arc3,rad=-0.35"))
    end = xs[-1] + 1.4 if xs else 1.4
    _block(ax, end, 1.0, "pool\n+ linear", "#fdd49e")
    ax.annotate("", xy=(end, 0), xytext=(end - 0.4, 0), arrowprops=dict(arrowstyle="-|>", color="0.3"))
    ax.set_title("macro network (green arcs: skip connections; inputs concatenated)", fontsize=11)
    ax.set_xlim(-0.3, end + 1.3)
    ax.set_ylim(-1.0, 2.0)
    ax.axis("off")


def _draw_mbconv(ax, text: str) -> None:
    stages = re.findall(r"(\d+)x(\d+)\(([^)]*)\)", text)
    x = 0.0
    _block(ax, x, 0.8, "stem", "#a1d99b")
    x += 1.0
    for s, (width, _depth, blocks) in enumerate(stages):
        toks = blocks.split()
        x0 = x
        for tok in toks:
            m = re.match(r"k(\d+)e([\d.]+)(\+se)?(/hs)?", tok)
            label = tok if not m else f"MB{m.group(2)}\n{m.group(1)}x{m.group(1)}" + \
                ("\nSE" if m.group(3) else "") + ("\nh-swish" if m.group(4) else "")
            _block(ax, x, 0.8, label, "#fdae6b" if m and m.group(3) else "#9ecae1", h=1.4)
            x += 0.95
        ax.text((x0 + x - 0.15) / 2, -1.05, f"stage {s + 1}: {width} ch", ha="center", fontsize=8)
        ax.plot([x0, x - 0.15], [-0.85, -0.85], color="0.4", lw=1)
        x += 0.3
    _block(ax, x, 0.9, "head", "#fdd49e")
    ax.set_title("MBConv network (MBe: expansion e; orange: squeeze-and-excite)", fontsize=11)
    ax.set_xlim(-0.2, x + 1.1)
    ax.set_ylim(-1.4, 1.2)
    ax.axis("off")


def _draw_table(ax, arch: Architecture) -> None:
    rows = [[k, _short(v)] for k, v in sorted(arch.items())]
    ax.axis("off")
    t = ax.table(cellText=rows, colLabels=["decision", "choice"], loc="center", cellLoc="left")
    t.auto_set_font_size(False)
    t.set_fontsize(8)


def _short(v: Any) -> str:
    s = str(list(v)) if isinstance(v, tuple) else str(v)
    return s if len(s) < 60 else s[:57] + "..."
