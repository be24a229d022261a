"""The NASNet/DARTS micro (cell) search space.

Zoph et al., "Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018 (NASNet) search one
normal and one reduction cell and stack them; Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019
use the same space with B=4 nodes. A cell has two inputs (the outputs of the two previous cells) and ``nodes``
intermediate nodes; node i adds two ops, each applied to one of the i+2 states before it. The cell's output
concatenates every intermediate node (``concat="all"``, DARTS) or those no other node reads (``"loose"``,
NASNet/AmoebaNet). Every normal cell of the network shares one genotype, every reduction cell another.

The network is DARTS's NetworkCIFAR: a 3x3 stem to ``stem_multiplier*C`` channels, ``layers`` cells with
reduction cells (channels doubled, stride 2 on the edges from the cell inputs) at layers//3 and 2*layers//3,
an optional auxiliary head after cell 2*layers//3, global pooling and a linear classifier. The text form is the
DARTS genotype string (:mod:`archsearch.genotypes`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..genotypes import (DEFAULT_CELL_OPS, PUBLISHED, arch_to_genotype, concat_for, evaluation_config, format_genotype,
                         genotype_to_arch, genotype_to_choices, input_label, op_label, parse_genotype)
from ..ops import CELL_OPS, AuxiliaryHead, FactorizedReduce, ReLUConvBN
from ..space import Architecture, ArchitectureError, Chooser, InputShape, SearchSpace
from .registry import get_space, register_space
from .cell_networks import NETWORKS, PaperNetwork, cell_nodes

DEFAULT_NODES = 4


class Cell(nn.Module):
    """One normal or reduction cell; asks the chooser for its inputs and ops (labels shared across cells)."""

    def __init__(self, c: Chooser, cell_type: str, nodes: int, ops: Sequence[str], concat: str,
                 c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool):
        super().__init__()
        self.reduction = cell_type == "reduce"
        self.preprocess0 = FactorizedReduce(c_prev_prev, channels) if reduction_prev \
            else ReLUConvBN(c_prev_prev, channels, 1)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1)
        self.selects = nn.ModuleList()
        self.ops = nn.ModuleList()
        for i in range(nodes):
            for s in (0, 1):
                select = c.inputs(input_label(cell_type, i, s), i + 2, 1)
                # stride 2 on edges from the cell inputs of a reduction cell: the op depends on the chosen input
                stride = 2 if self.reduction and select.active_indices[0] < 2 else 1
                candidates = {name: (lambda n=name: CELL_OPS[n](channels, stride, True)) for name in ops}
                self.selects.append(select)
                self.ops.append(c.layer(op_label(cell_type, i, s), candidates))
        # 'loose': the nodes no chosen input reads (decided by the architecture, so known only now)
        read = {j for select in self.selects for j in select.active_indices}
        self.concat = [k for k in range(2, nodes + 2) if concat == "all" or k not in read]
        self.out_channels = len(self.concat) * channels

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = cell_nodes(self.ops, self.selects, [self.preprocess0(s0), self.preprocess1(s1)], self.training,
                            drop_prob)
        return torch.cat([states[k] for k in self.concat], dim=1)

    def extra_repr(self) -> str:
        return f"{'reduce' if self.reduction else 'normal'}, concat={self.concat}"


class CellNetwork(nn.Module):
    """DARTS's NetworkCIFAR. Set ``drop_path_prob`` to drop non-identity branches while training. In training
    mode with the auxiliary head on, ``forward`` returns ``(logits, aux_logits)``; otherwise the logits."""

    def __init__(self, c: Chooser, shape: InputShape, channels: int, layers: int, nodes: int, ops: Sequence[str],
                 concat: str, auxiliary: bool, stem_multiplier: int):
        super().__init__()
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        self.reduce_at = (layers // 3, 2 * layers // 3)
        self.aux_at = 2 * layers // 3
        self.drop_path_prob = 0.0
        c_prev_prev, c_prev, c_cell = c_stem, c_stem, channels
        reduction_prev, c_aux = False, c_stem
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in self.reduce_at
            if reduction:
                c_cell *= 2
            cell = Cell(c, "reduce" if reduction else "normal", nodes, ops, concat,
                        c_prev_prev, c_prev, c_cell, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.out_channels
            if i == self.aux_at:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHead(c_aux, shape.num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_at and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return (logits, aux) if aux is not None else logits


def _format(space: SearchSpace, arch: Architecture) -> str:
    return format_genotype(arch_to_genotype(space, arch))


def _parse(space: SearchSpace, text: str) -> Architecture:
    genotype = parse_genotype(text)
    nodes = space.config.get("nodes", DEFAULT_NODES)
    if len(genotype.normal) != 2 * nodes:
        raise ArchitectureError(f"the genotype has {len(genotype.normal) // 2} nodes per cell; this space has {nodes}")
    mode = space.config.get("concat", "all")
    for cell_type, edges, concat in (("normal", genotype.normal, genotype.normal_concat),
                                     ("reduce", genotype.reduce, genotype.reduce_concat)):
        expected = sorted(int(k) for k in space.config[f"{cell_type}_concat"]) \
            if space.config.get(f"{cell_type}_concat") else concat_for(edges, mode)
        if concat != expected:
            raise ArchitectureError(f"the genotype's {cell_type}_concat={concat} is not what this space "
                                    f"(concat={mode!r}) concatenates: {expected}")
    return genotype_to_choices(genotype)


@register_space("cell", formatter=_format, parser=_parse)
def cell(c: Chooser, shape: InputShape, channels: int = 16, layers: int = 5, nodes: int = DEFAULT_NODES,
         ops: Sequence[str] = DEFAULT_CELL_OPS, concat: str = "all", auxiliary: bool = False,
         stem_multiplier: int = 3, network: str = "darts", normal_concat: Sequence[int] | None = None,
         reduce_concat: Sequence[int] | None = None) -> nn.Module:
    """NASNet (CVPR 2018) / DARTS (ICLR 2019) cell space on DARTS's CIFAR network. Defaults are small (C=16,
    5 cells); DARTS evaluates at C=36, 20 cells. ``network="nasnet"`` / ``"enas"`` build the cells in those
    papers' CIFAR networks instead (:mod:`.cell_networks`), where ``normal_concat`` / ``reduce_concat`` may list
    the states a cell concatenates (0, 1: its inputs; NASNet-A's code fixes them by hand)."""
    ops = tuple(ops)
    unknown = [op for op in ops if op not in CELL_OPS]
    if unknown:
        raise ValueError(f"unknown cell op {unknown[0]!r}; choose from: {', '.join(CELL_OPS)}")
    if not ops or len(set(ops)) != len(ops):
        raise ValueError(f"the cell space needs a non-empty list of distinct ops, got {list(ops)}")
    if concat not in ("all", "loose"):
        raise ValueError(f"unknown concat mode {concat!r}; choose from: all, loose")
    if nodes < 1 or layers < 3 or channels < 1 or stem_multiplier < 1:
        raise ValueError(f"the cell space needs nodes >= 1, layers >= 3 (so both cell types occur), channels >= 1 "
                         f"and stem_multiplier >= 1; got nodes={nodes}, layers={layers}, channels={channels}")
    if network not in NETWORKS:
        raise ValueError(f"unknown cell network {network!r}; choose from: {', '.join(NETWORKS)}")
    explicit = {"normal": normal_concat, "reduce": reduce_concat}
    for cell_type, states in explicit.items():
        if states is not None:
            if network == "darts":
                raise ValueError("explicit normal_concat/reduce_concat need network='nasnet' or 'enas' (DARTS's "
                                 "network concatenates intermediate nodes by the 'concat' mode)")
            if not states or any(not 0 <= int(k) < nodes + 2 for k in states):
                raise ValueError(f"{cell_type}_concat={list(states)}: states are 0..{nodes + 1}")
    if network == "darts":
        return CellNetwork(c, shape, channels, layers, nodes, ops, concat, auxiliary, stem_multiplier)
    # 'loose': ENAS concatenates every state no node reads, inputs included; NASNet-style the unread nodes
    rule = ("unread" if network == "enas" else "loose") if concat == "loose" else "all"
    return PaperNetwork(c, network, shape, channels, layers, nodes, ops,
                        {t: explicit[t] if explicit[t] is not None else rule for t in explicit},
                        auxiliary, stem_multiplier)


def published_space_and_arch(name: str, channels: int | None = None, layers: int | None = None,
                             auxiliary: bool = False, network: str = "darts"
                             ) -> tuple[SearchSpace, Architecture]:
    """The ``cell`` space configured to build a published cell (see :data:`PUBLISHED`) at the given size, and the
    cell as an architecture of it. The defaults are the DARTS CIFAR-10 evaluation network (C=36, 20 cells), where
    DARTS compares every cell; ``network=None`` gives the paper's own network where it had one
    (:func:`evaluation_config`)."""
    key = name.lower().replace("-", "_")
    if key not in PUBLISHED:
        raise ValueError(f"unknown published cell {name!r}; choose from: {', '.join(PUBLISHED)}")
    config, arch = genotype_to_arch(PUBLISHED[key])
    size = {k: v for k, v in (("channels", channels), ("layers", layers)) if v is not None}
    space = get_space("cell", **{**evaluation_config(key, network), **size, "auxiliary": auxiliary, **config})
    return space, space.validate(arch)
