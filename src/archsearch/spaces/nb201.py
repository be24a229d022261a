"""NAS-Bench-201 cell space (Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", ICLR 2020).

A cell is a DAG of 4 nodes; each of the 6 edges j -> i (j < i) carries one of 5 ops. The network is the
benchmark's skeleton: a 3x3 stem, three stages of N cells (C, 2C, 4C channels) joined by residual reduction
blocks, then BN-ReLU, global pooling and a linear classifier. The benchmark string form is
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ops import NB201_OPS, NB201_PRIMITIVES, ClassifierHead, ResNetBasicBlock
from ..space import Architecture, ArchitectureError, Chooser, InputShape, SearchSpace
from .registry import register_space

EDGES = [(i, j) for i in range(1, 4) for j in range(i)]  # (to, from) in the benchmark's order


def edge_label(i: int, j: int) -> str:
    return f"{i}<-{j}"


class NB201Cell(nn.Module):
    def __init__(self, c: Chooser, channels: int):
        super().__init__()
        self.edges = nn.ModuleDict()
        for i, j in EDGES:
            cands = {name: (lambda n=name: NB201_OPS[n](channels, channels, 1, True)) for name in NB201_PRIMITIVES}
            self.edges[edge_label(i, j)] = c.layer(edge_label(i, j), cands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in range(1, 4):
            nodes.append(sum(self.edges[edge_label(i, j)](nodes[j]) for j in range(i)))
        return nodes[-1]


class NB201Network(nn.Module):
    def __init__(self, c: Chooser, shape: InputShape, channels: int, cells_per_stage: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c_prev = channels
        for stage in range(3):
            c_stage = channels * 2 ** stage
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c_stage, 2))
            layers.extend(NB201Cell(c, c_stage) for _ in range(cells_per_stage))
            c_prev = c_stage
        self.cells = nn.Sequential(*layers)
        self.head = ClassifierHead(c_prev, shape.num_classes, pre_bn_relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


def _format(space: SearchSpace, arch: Architecture) -> str:
    return to_string(arch)


def _parse(space: SearchSpace, text: str) -> Architecture:
    return from_string(text)


@register_space("nb201", formatter=_format, parser=_parse)
def nb201(c: Chooser, shape: InputShape, channels: int = 16, cells_per_stage: int = 5) -> nn.Module:
    """NAS-Bench-201 (ICLR 2020): 6 edges x 5 ops = 15,625 cells. Defaults are the benchmark's (C=16, N=5)."""
    return NB201Network(c, shape, channels, cells_per_stage)


def equivalent(arch: Architecture) -> Architecture:
    """The cell with every edge into a node that cannot reach the output set to ``none``: such edges compute
    nothing the network uses, so the two cells are the same function (NAS-Bench-201 lists them as separate
    entries, trained separately). Strategies use it not to spend a query on a cell they have in effect seen."""
    used = {3}
    for node in (2, 1):
        if any(arch[edge_label(k, node)] != "none" for k in used):
            used.add(node)
    changes = {edge_label(i, j): "none" for i, j in EDGES if i not in used and arch[edge_label(i, j)] != "none"}
    return arch.replace(**changes) if changes else arch


nb201.equivalent = equivalent  # type: ignore[attr-defined]


def to_string(arch: Architecture) -> str:
    """The benchmark's cell string."""
    nodes = []
    for i in range(1, 4):
        nodes.append("|" + "|".join(f"{arch[edge_label(i, j)]}~{j}" for j in range(i)) + "|")
    return "+".join(nodes)


def from_string(text: str) -> Architecture:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into an Architecture of the nb201 space."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise ArchitectureError(f"not a NAS-Bench-201 cell string (expected 3 nodes joined by '+'): {text!r}")
    choices = {}
    for i, node in enumerate(nodes, start=1):
        edges = [e for e in node.strip().strip("|").split("|") if e]
        if len(edges) != i:
            raise ArchitectureError(f"node {i} of {text!r} should have {i} incoming edges, has {len(edges)}")
        for e in edges:
            op, _, src = e.partition("~")
            if op not in NB201_PRIMITIVES or not src.isdigit() or int(src) >= i:
                raise ArchitectureError(f"bad edge {e!r} in {text!r}")
            choices[edge_label(i, int(src))] = op
    if len(choices) != 6:
        raise ArchitectureError(f"not a complete NAS-Bench-201 cell: {text!r}")
    return Architecture(choices)


def get_nb201_space(**config) -> SearchSpace:
    from .registry import get_space
    return get_space("nb201", **config)
