"""Hierarchical space of Liu, Simonyan, Vinyals, Fernando & Kavukcuoglu, "Hierarchical Representations for
Efficient Architecture Search", ICLR 2018.

An architecture is a hierarchy of motifs, each a small DAG whose edges carry motifs of the level below:

* level 1, the primitives: 1x1 conv, 3x3 depthwise conv, 3x3 separable conv (each conv followed by BN and ReLU,
  C channels in and out), 3x3 max pool, 3x3 average pool, identity, and ``none`` (no edge);
* level 2: ``motifs`` motifs (the paper's M2 = 6), each a DAG of ``motif_nodes`` nodes (|G2| = 4): the edge
  i -> j (i < j) carries one primitive (decision ``m{k}:{j}<-{i}``);
* level 3: one motif, a DAG of ``cell_nodes`` nodes (|G3| = 5) whose edge i -> j carries one level-2 motif or
  ``none`` (decision ``top:{j}<-{i}``, a value ``motif0 .. motif{M2-1}`` or ``none``). The level-3 decisions are
  values (the network needs to know which motifs it uses); a one-shot supernet fixes them at their first option,
  motif0 on every edge, and searches motif0's primitives.

A node merges what reaches it as the paper does, by depthwise concatenation (``merge="concat"``), followed by a
1x1 conv + BN back to C channels; ``merge="sum"`` adds instead (cheaper; on digits it trained less stably). A
node nothing reaches is absent, and so are its out-edges. The first node of
a DAG is its input, the last its output. A motif with no path from input to output is the zero map.

The level-3 motif is the cell of the paper's small CIFAR network (section 4.1): a 3x3 conv stem of C channels,
then ``cells`` cells with a 3x3 separable conv of stride 2 doubling the channels between them, global average
pooling and a linear classifier. Level-2 motifs that no level-3 edge uses are inactive decisions (so two
genotypes that differ only there are the same architecture). The text form lists each motif's edges::

    top: 1<-0 motif2, 2<-1 motif0 ... | motif0: 1<-0 sep_conv_3x3, ... | motif1: ...

:func:`motif_groups` exposes the hierarchy (level -> motif -> decision labels) for hierarchical evolution.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ops import ClassifierHead, ConvBNReLU, SepConvBNReLU, Zero
from ..space import Architecture, Chooser, InputShape, SearchSpace
from .registry import register_space

__all__ = ["PRIMITIVES", "hierarchical", "motif_groups", "motif_label", "top_label"]

PRIMITIVES = ("none", "conv_1x1", "dw_conv_3x3", "sep_conv_3x3", "max_pool_3x3", "avg_pool_3x3", "identity")


def _primitive(name: str, c: int) -> nn.Module:
    if name == "conv_1x1":
        return ConvBNReLU(c, c, 1)
    if name == "dw_conv_3x3":
        return ConvBNReLU(c, c, 3, groups=c)
    if name == "sep_conv_3x3":
        return SepConvBNReLU(c, c, 3)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"unknown primitive {name!r}")


def motif_label(k: int, j: int, i: int) -> str:
    return f"m{k}:{j}<-{i}"


def top_label(j: int, i: int) -> str:
    return f"top:{j}<-{i}"


def _edges(nodes: int) -> list[tuple[int, int]]:
    return [(j, i) for j in range(1, nodes) for i in range(j)]


class Merge(nn.Module):
    """Combine the tensors reaching a node: sum, or concatenation + 1x1 conv + BN back to C channels."""

    def __init__(self, n_in: int, c: int, mode: str):
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(n_in * c, c, 1, bias=False), nn.BatchNorm2d(c)) \
            if mode == "concat" and n_in > 1 else None

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.project is not None:
            return self.project(torch.cat(xs, dim=1))
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Graph(nn.Module):
    """A DAG motif: ``ops[(j, i)]`` is the module on edge i -> j (None: no edge). Nodes nothing reaches are
    absent; returns None when the output node is absent (the zero map)."""

    def __init__(self, nodes: int, ops: dict[tuple[int, int], nn.Module | None], c: int, merge: str):
        super().__init__()
        self.nodes = nodes
        reach = {0}
        self.edges: list[tuple[int, int]] = []
        for j, i in _edges(nodes):  # ordered by target: every source is settled before its targets
            if ops.get((j, i)) is not None and i in reach:
                self.edges.append((j, i))
                reach.add(j)
        self.live = reach
        self.ops = nn.ModuleDict({f"{j}<-{i}": ops[(j, i)] for j, i in self.edges})
        fan_in = {j: sum(1 for t, _ in self.edges if t == j) for j in range(1, nodes)}
        self.merges = nn.ModuleDict({str(j): Merge(n, c, merge) for j, n in fan_in.items() if n})

    def forward(self, x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        states: list[torch.Tensor | None] = [x] + [None] * (self.nodes - 1)
        for j in range(1, self.nodes):
            ins = [self.ops[f"{j}<-{i}"](states[i]) for t, i in self.edges if t == j]
            ins = [h for h in ins if h is not None]
            states[j] = self.merges[str(j)](ins) if ins else None
        return states[-1]


class NoEdge(Zero):
    """The 'none' primitive. A fixed model drops the edge; in a supernet it is the zero candidate."""


def _motif_ops(c: Chooser, k: int, channels: int, nodes: int, active: bool) -> dict[tuple[int, int], nn.Module]:
    """Ask the chooser for the primitive on every edge of level-2 motif ``k``."""
    ops = {}
    for j, i in _edges(nodes):
        cands = {p: (lambda p=p: NoEdge() if p == "none" else _primitive(p, channels)) for p in PRIMITIVES}
        ops[(j, i)] = c.layer(motif_label(k, j, i), cands, active=active)
    return ops


def _level2(c: Chooser, k: int, channels: int, nodes: int, merge: str) -> Graph | None:
    """Level-2 motif ``k`` as a module (fresh weights); None when no path joins its input to its output."""
    ops = _motif_ops(c, k, channels, nodes, active=True)
    graph = Graph(nodes, {e: (None if isinstance(op, NoEdge) else op) for e, op in ops.items()}, channels, merge)
    return graph if nodes - 1 in graph.live else None


class Cell(nn.Module):
    """The level-3 motif: a DAG whose edges are level-2 motifs (fresh weights on every edge and in every cell)."""

    def __init__(self, c: Chooser, channels: int, motifs: int, motif_nodes: int, cell_nodes: int, merge: str,
                 top: dict[tuple[int, int], str], used: set[int]):
        super().__init__()
        ops: dict[tuple[int, int], nn.Module | None] = {}
        for j, i in _edges(cell_nodes):
            name = top[(j, i)]
            ops[(j, i)] = _level2(c, int(name[5:]), channels, motif_nodes, merge) \
                if name != "none" and int(name[5:]) in used else None
        for k in range(motifs):  # unused motifs' decisions are still asked (inactive): every cell asks them all
            if k not in used:
                _motif_ops(c, k, channels, motif_nodes, active=False)
        self.graph = Graph(cell_nodes, ops, channels, merge)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.graph(x)
        return out if out is not None else x.mul(0.0)


def _ask_top(c: Chooser, motifs: int, cell_nodes: int) -> tuple[dict[tuple[int, int], str], set[int]]:
    """The level-3 decisions (values, so the network knows which motifs it uses). An edge leaving a node that
    nothing reaches is inactive; the used motifs are those on the other edges."""
    names = tuple(f"motif{k}" for k in range(motifs)) + ("none",)  # a supernet fixes values at the first
    top, reach, used = {}, {0}, set()
    for j, i in _edges(cell_nodes):
        live = i in reach
        v = c.value(top_label(j, i), names, active=live)
        top[(j, i)] = v if live else "none"
        if live and v != "none":
            reach.add(j)
            used.add(int(v[5:]))
    return top, used


class HierarchicalNetwork(nn.Module):
    """Liu et al.'s small CIFAR network: stem, cell, (sep conv stride 2, cell) x (cells - 1), pool, linear."""

    def __init__(self, c: Chooser, shape: InputShape, channels: int, cells: int, motifs: int, motif_nodes: int,
                 cell_nodes: int, merge: str):
        super().__init__()
        top, used = _ask_top(c, motifs, cell_nodes)
        self.stem = ConvBNReLU(shape.channels, channels, 3)
        body: list[nn.Module] = []
        ch = channels
        for n in range(cells):
            if n > 0:
                body.append(SepConvBNReLU(ch, 2 * ch, 3, stride=2))
                ch *= 2
            body.append(Cell(c, ch, motifs, motif_nodes, cell_nodes, merge, top, used))
        self.body = nn.Sequential(*body)
        self.head = ClassifierHead(ch, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


def motif_groups(space: SearchSpace) -> dict[int, dict[str, list[str]]] | None:
    """The hierarchy of a space's decisions: ``{level: {motif: [labels of its edges]}}`` (level 2: ``m{k}``,
    level 3: ``top``), or None for a space whose labels are not this space's."""
    groups: dict[int, dict[str, list[str]]] = {}
    for label in space.labels:
        motif, sep, edge = label.partition(":")
        if not sep or "<-" not in edge:
            return None
        level = 3 if motif == "top" else 2 if motif[:1] == "m" and motif[1:].isdigit() else None
        if level is None:
            return None
        groups.setdefault(level, {}).setdefault(motif, []).append(label)
    return groups if 3 in groups else None


def to_string(space: SearchSpace, arch: Architecture) -> str:
    """Each used motif's live edges, e.g. ``top: 1<-0 motif2, 2<-1 motif0 | motif0: 1<-0 sep_conv_3x3``."""
    groups = motif_groups(space) or {}
    parts = []
    for level in (3, 2):
        for motif, labels in groups.get(level, {}).items():
            if level == 2 and not any(arch[t] == f"motif{motif[1:]}" for t in groups[3]["top"]):
                continue
            edges = [f"{lbl.partition(':')[2]} {arch[lbl]}" for lbl in labels if arch[lbl] != "none"]
            name = "top" if level == 3 else f"motif{motif[1:]}"
            parts.append(f"{name}: {', '.join(edges) or '-'}")
    return " | ".join(parts)


@register_space("hierarchical", formatter=to_string)
def hierarchical(c: Chooser, shape: InputShape, channels: int = 16, cells: int = 3, motifs: int = 6,
                 motif_nodes: int = 4, cell_nodes: int = 5, merge: str = "concat") -> nn.Module:
    """Liu et al. (ICLR 2018) 3-level hierarchical space; defaults are the paper's M2 = 6, |G2| = 4, |G3| = 5."""
    if getattr(c, "dry", False):  # a dry replay only asks which decisions matter: skip the 1x1 projections
        merge = "sum" if merge == "concat" else merge
    if merge not in ("sum", "concat"):
        raise ValueError(f"unknown merge {merge!r}; choose from: sum, concat")
    if channels < 1 or cells < 1 or motifs < 1 or motif_nodes < 2 or cell_nodes < 2:
        raise ValueError("the hierarchical space needs channels, cells, motifs >= 1 and motif_nodes, "
                         f"cell_nodes >= 2; got channels={channels}, cells={cells}, motifs={motifs}, "
                         f"motif_nodes={motif_nodes}, cell_nodes={cell_nodes}")
    return HierarchicalNetwork(c, shape, channels, cells, motifs, motif_nodes, cell_nodes, merge)
