"""DARTS's all-edges supernet of the ``cell`` space.

The ``cell`` space decides, per node, two (input, op) slots; a reduction cell's op stride depends on the chosen
input, so the generic chooser cannot relax it. DARTS (Liu et al., ICLR 2019, Sec. 2.1-2.4) instead puts a mixed op
on *every* edge j -> i of the cell and, after the search, keeps for each node the two incoming edges whose
strongest non-'none' op is strongest, with that op. Here: the search network of the DARTS code (stem, cells with
preprocessing, BN without affine parameters, a BN after pooling ops, every intermediate node concatenated), the
ops being the space's configured ops plus 'none'; :meth:`CellSupernet.derive` writes the top-2 edges into the
space's slot decisions, and :meth:`CellSupernet.path_of` runs any architecture of the space on the shared edges
(both slots of a node may read the same edge).
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...genotypes import CELL_TYPES, input_label, op_label
from ...ops import CELL_OPS, FactorizedReduce, ReLUConvBN
from ...space import Architecture, InputShape, SearchSpace
from ...spaces.cell import cell as cell_space_fn
from .supernet import SUPERNETS, MixedOp, PathState, Supernet, SupernetEntry, _sum




def edge_label(cell_type: str, node: int, j: int) -> str:
    """α label of the edge from state ``j`` to intermediate node ``node`` (0-based) of a cell type."""
    return f"{cell_type}_n{node}_e{j}"


def _op(name: str, channels: int, stride: int) -> nn.Module:
    op = CELL_OPS[name](channels, stride, False)
    return nn.Sequential(op, nn.BatchNorm2d(channels, affine=False)) if "pool" in name else op


class SearchCell(nn.Module):
    def __init__(self, state: PathState, cell_type: str, nodes: int, ops: tuple[str, ...], c_pp: int, c_p: int,
                 c: int, reduction_prev: bool):
        super().__init__()
        self.reduction, self.nodes = cell_type == "reduce", nodes
        self.preprocess0 = FactorizedReduce(c_pp, c, False) if reduction_prev else ReLUConvBN(c_pp, c, 1, affine=False)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, affine=False)
        self.edges = nn.ModuleList()
        for i in range(nodes):
            for j in range(i + 2):
                stride = 2 if self.reduction and j < 2 else 1
                label = edge_label(cell_type, i, j)
                state.alphas.add(label, len(ops))
                self.edges.append(MixedOp(label, ops, nn.ModuleList(_op(n, c, stride) for n in ops), state))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        e = 0
        for i in range(self.nodes):
            outs = []
            for j in range(i + 2):
                h = self.edges[e](states[j])
                e += 1
                if h is not None:
                    outs.append(h)
            if not outs:  # no edge on the path (never for an architecture of the space)
                s = states[1]
                outs = [s[:, :, ::2, ::2] * 0.0 if self.reduction else s * 0.0]
            states.append(_sum(outs))
        return torch.cat(states[2:], dim=1)


class SearchNetwork(nn.Module):
    """The DARTS search network (its ``model_search.Network``) on the cell space's settings."""

    def __init__(self, state: PathState, shape: InputShape, channels: int, layers: int, nodes: int,
                 ops: tuple[str, ...], stem_multiplier: int):
        super().__init__()
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_p, c = c_stem, c_stem, channels
        reduction_prev = False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            self.cells.append(SearchCell(state, "reduce" if reduction else "normal", nodes, ops, c_pp, c_p, c,
                                         reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, nodes * c
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))


class CellSupernet(Supernet):
    """The all-edges supernet of the ``cell`` space: α per edge, top-2 derivation into the slot decisions."""

    def __init__(self, space: SearchSpace, model: nn.Module, state: PathState, ops: tuple[str, ...], nodes: int):
        super().__init__(space, model, state, {})
        self.ops, self.nodes = ops, nodes

    def options(self, label: str) -> tuple:
        return self.ops

    def n_chosen(self, label: str) -> int | None:
        return 1

    def derive(self, scores: dict[str, torch.Tensor] | None = None) -> Architecture:
        """DARTS's genotype rule: per node, the two incoming edges with the strongest non-'none' op."""
        scores = scores or {k: F.softmax(t.detach().cpu(), 0) for k, t in self.alphas.tensors.items()}
        keep = [k for k, name in enumerate(self.ops) if name != "none"] or list(range(len(self.ops)))
        choices: dict[str, Any] = {}
        for t in CELL_TYPES:
            for i in range(self.nodes):
                best = {}
                for j in range(i + 2):
                    w = scores[edge_label(t, i, j)]
                    k = max(keep, key=lambda k: (float(w[k]), -k))
                    best[j] = (float(w[k]), k)
                top2 = sorted(best, key=lambda j: -best[j][0])[:2]
                for s, j in enumerate(top2):
                    choices[input_label(t, i, s)] = (j,)
                    choices[op_label(t, i, s)] = self.ops[best[j][1]]
        return self.space.validate(Architecture(choices))

    def path_of(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        path: dict[str, list[int]] = {label: [] for label in self.alphas.labels}
        for t in CELL_TYPES:
            for i in range(self.nodes):
                for s in (0, 1):
                    j = arch[input_label(t, i, s)][0]
                    path[edge_label(t, i, j)].append(self.ops.index(arch[op_label(t, i, s)]))
        return {k: tuple(v) for k, v in path.items()}


def build_cell_supernet(space: SearchSpace, search_space: SearchSpace, shape: InputShape,
                        state: PathState) -> CellSupernet:
    bound = inspect.signature(cell_space_fn).bind(None, shape, **search_space.config)
    bound.apply_defaults()
    cfg = bound.arguments
    ops = ("none",) + tuple(o for o in cfg["ops"] if o != "none")
    model = SearchNetwork(state, shape, cfg["channels"], cfg["layers"], cfg["nodes"], ops, cfg["stem_multiplier"])
    return CellSupernet(space, model, state, ops, cfg["nodes"])


SUPERNETS.register("cell")(SupernetEntry(cell_space_fn, build_cell_supernet))
