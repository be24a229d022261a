"""The papers' own CIFAR evaluation networks for a cell genotype, beside DARTS's NetworkCIFAR (:mod:`.cell`).

NASNet-A and ENAS were evaluated in networks that differ from DARTS's in their stems, cell counts, the 1x1
convolutions that bring a cell's inputs to its width and which states a cell concatenates, so a cell's parameter
count depends on the network it sits in. These are built from the papers' descriptions and reference code:

* ``network="nasnet"`` (Zoph et al., CVPR 2018, "NASNet-A (N=6, F=32)", 3.3M; TF-slim ``build_nasnet_cifar``):
  a 3x3 stem to ``stem_multiplier*F`` channels; N normal cells, a reduction cell, N normal cells, a reduction
  cell, N normal cells (``layers = 3N + 2``), the width doubling at each reduction. A cell brings its previous
  cell's output to F with ReLU-1x1-BN and the one before it with a factorized reduction (other resolution) or
  ReLU-1x1-BN (other width); the very first cell reads the stem twice, raw. An op reading a state of another
  width adapts it (a separable conv's first pointwise conv, a 1x1 conv after a pool or in place of identity).
  The output concatenates the states listed (NASNet-A: h_{i-1} and the five new states of a normal cell,
  ``6 x F`` channels, 768 at the end for F=32; four states of a reduction cell), each brought to the output's
  resolution and width first. ReLU, global pooling, a linear classifier.
* ``network="enas"`` (Pham et al., ICML 2018, micro search space, 4.6M; ``MicroChild`` with a fixed arc,
  ``--child_num_layers=15 --child_out_filters=36``): a 3x3 stem to ``3*F``; ``layers - 2`` normal cells with two
  reduction cells at ``(layers-2)//3`` and ``2*((layers-2)//3)+1``. A cell calibrates its inputs (factorized
  reduction of the older one at another resolution, ReLU-1x1-BN to F otherwise) and passes the newer one through
  one more ReLU-1x1-BN; identity on a strided edge is a factorized reduction; the output concatenates every state
  no node reads (inputs included), the larger ones factorized-reduced. ReLU, global pooling, a bias-free linear
  classifier.

Both keep DARTS's drop-path (``drop_path_prob``) and the auxiliary head after the cell before the second
reduction (NASNet) / after the cell after it (ENAS, whose head's linear layer has no bias); the papers count
parameters without it. On the arc ENAS's code trains (``genotypes.ENAS_RELEASED_ARC``) the ENAS network has the
3,894,372 parameters (494,848 in the auxiliary head) that code creates.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..genotypes import input_label, op_label
from ..ops import CELL_OPS, AuxiliaryHead, DilConv, FactorizedReduce, ReLUConvBN, drop_path
from ..space import Chooser, InputShape

NETWORKS = ("darts", "nasnet", "enas")



def cell_nodes(ops: Sequence[nn.Module], selects: Sequence[nn.Module], states: list[torch.Tensor], training: bool,
               drop_prob: float) -> list[torch.Tensor]:
    """The nodes of a DARTS-form cell appended to ``states`` (its two inputs): node i sums ops 2i and 2i+1, each
    applied to the states its input selection reads, with drop-path on every op but the identity in training."""
    for i in range(len(ops) // 2):
        node = 0
        for k in (2 * i, 2 * i + 1):
            select, op = selects[k], ops[k]
            h = op(select([states[j] for j in select.active_indices]))
            if training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                h = drop_path(h, drop_prob, True)
            node = node + h
        states.append(node)
    return states

class _ConvBN(nn.Sequential):
    """1x1 conv + BN without a ReLU (TF NASNet's ``factorized_reduction`` at stride 1, the 1x1 after a pool)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


def _sep_conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Module:
    """Two ReLU-depthwise-pointwise-BN blocks, the first one changing the width (as TF's separable_conv2d)."""
    pad = kernel // 2
    return nn.Sequential(DilConv(c_in, c_out, kernel, stride, pad, 1), DilConv(c_out, c_out, kernel, 1, pad, 1))


def _pool(name: str, stride: int) -> nn.Module:
    return nn.AvgPool2d(3, stride, 1, count_include_pad=False) if name.startswith("avg") \
        else nn.MaxPool2d(3, stride, 1)


def _op(style: str, name: str, c_in: int, c: int, stride: int) -> nn.Module:
    """The op ``name`` reading a state of width ``c_in`` and writing width ``c`` (NASNet / ENAS conventions)."""
    if name.startswith("sep_conv_"):
        return _sep_conv(c_in, c, int(name[-1]), stride)
    if name in ("avg_pool_3x3", "max_pool_3x3"):
        pool = _pool(name, stride)
        if c_in == c:
            return pool
        return nn.Sequential(pool, _ConvBN(c_in, c) if style == "nasnet" else ReLUConvBN(c_in, c, 1))
    if name == "skip_connect":
        if style == "nasnet":  # a strided or width-changing identity is ReLU - 1x1 conv (strided) - BN
            return nn.Identity() if stride == 1 and c_in == c else ReLUConvBN(c_in, c, 1, stride)
        if stride == 1:
            return nn.Identity() if c_in == c else ReLUConvBN(c_in, c, 1)
        return FactorizedReduce(c_in, c)
    op = CELL_OPS[name](c, stride, True)  # any other cell op: at width c, after a 1x1 if the input differs
    return op if c_in == c else nn.Sequential(ReLUConvBN(c_in, c, 1), op)


class PaperCell(nn.Module):
    """A NASNet- or ENAS-style cell. ``concat``: the states (0, 1 the inputs; 2.. the nodes) to concatenate, or
    a rule: 'all' nodes, the 'loose' nodes (those no node reads) or every 'unread' state, inputs included (ENAS)."""

    def __init__(self, c: Chooser, style: str, cell_type: str, nodes: int, ops: Sequence[str],
                 concat: Sequence[int] | str, c_prev_prev: int | None, c_prev: int, channels: int,
                 prev_prev_larger: bool):
        super().__init__()
        self.reduction = cell_type == "reduce"
        self.raw_prev_prev = c_prev_prev is None  # NASNet's first cell: no older cell, the stem is read twice
        c0 = c_prev if c_prev_prev is None else c_prev_prev
        if style == "nasnet":
            if c_prev_prev is None:
                self.pre0 = nn.Identity()
            elif prev_prev_larger:
                self.pre0 = FactorizedReduce(c0, channels)
            else:
                self.pre0 = ReLUConvBN(c0, channels, 1) if c0 != channels else nn.Identity()
            self.pre1 = ReLUConvBN(c_prev, channels, 1)
            widths = [c0 if c_prev_prev is None else channels, channels]
        else:  # ENAS: calibrate both inputs to the width (and resolution), then one more 1x1 on the newer one
            self.pre0 = FactorizedReduce(c0, channels) if prev_prev_larger else (
                ReLUConvBN(c0, channels, 1) if c0 != channels else nn.Identity())
            calibrate = ReLUConvBN(c_prev, channels, 1) if c_prev != channels else nn.Identity()
            self.pre1 = nn.Sequential(calibrate, ReLUConvBN(channels, channels, 1))
            widths = [channels, channels]
        self.selects, self.ops = nn.ModuleList(), nn.ModuleList()
        for i in range(nodes):
            for s in (0, 1):
                select = c.inputs(input_label(cell_type, i, s), i + 2, 1)
                if len(select.active_indices) != 1:
                    raise ValueError(f"the {style} network builds one fixed architecture, not a supernet")
                j = select.active_indices[0]
                stride = 2 if self.reduction and j < 2 else 1
                c_in = widths[j] if j < 2 else channels
                candidates = {name: (lambda n=name, ci=c_in, st=stride: _op(style, n, ci, channels, st))
                              for name in ops}
                self.selects.append(select)
                self.ops.append(c.layer(op_label(cell_type, i, s), candidates))
        if isinstance(concat, str):  # 'all' nodes, the 'loose' (unread) nodes, or every 'unread' state (ENAS)
            read = {j for select in self.selects for j in select.active_indices}
            first = 0 if concat == "unread" else 2
            concat = [k for k in range(first, nodes + 2) if concat == "all" or k not in read]
        self.concat = sorted(int(k) for k in concat)
        # a concatenated input at a larger resolution (inputs of a reduction cell) or another width is brought to
        # the output's: factorized reduction (NASNet: 1x1 conv at the same resolution)
        self.fit = nn.ModuleDict()
        for k in self.concat:
            if k < 2 and (self.reduction or widths[k] != channels):
                self.fit[str(k)] = FactorizedReduce(widths[k], channels) if self.reduction \
                    else _ConvBN(widths[k], channels)
        self.out_channels = len(self.concat) * channels

    def forward(self, s0: torch.Tensor | None, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = cell_nodes(self.ops, self.selects, [self.pre0(s1 if s0 is None else s0), self.pre1(s1)],
                            self.training, drop_prob)
        return torch.cat([self.fit[str(k)](states[k]) if str(k) in self.fit else states[k] for k in self.concat],
                         dim=1)

    def extra_repr(self) -> str:
        return f"{'reduce' if self.reduction else 'normal'}, concat={self.concat}"


class PaperNetwork(nn.Module):
    """NASNet's or ENAS's CIFAR network (see the module docstring). ``layers`` counts every cell, the two
    reduction cells included (NASNet-A 6 @ 768: 20; ENAS: 15 + 2 = 17)."""

    def __init__(self, c: Chooser, style: str, shape: InputShape, channels: int, layers: int, nodes: int,
                 ops: Sequence[str], concat: dict[str, Sequence[int] | str], auxiliary: bool,
                 stem_multiplier: int):
        super().__init__()

        if layers < 5:
            raise ValueError(f"the {style} network needs layers >= 5 (two reduction cells and a normal cell "
                             f"around each), got {layers}")
        if channels % 2:
            raise ValueError(f"the {style} network needs an even number of channels (factorized reductions)")
        normal = layers - 2
        if style == "nasnet":  # TF-slim calc_reduction_layers: before normal cells N/3 and 2N/3
            reduce_before = [int(normal / 3), int(2 * normal / 3)]
            self.reduce_at = (reduce_before[0], reduce_before[1] + 1)
            self.aux_at = self.reduce_at[1] - 1  # the normal cell before the second reduction
        else:  # ENAS MicroChild: pool layers at num_layers//3 and 2*(num_layers//3)+1
            self.reduce_at = (normal // 3, 2 * (normal // 3) + 1)
            self.aux_at = self.reduce_at[1] + 1
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(shape.channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        self.style = style
        self.drop_path_prob = 0.0
        # (channels, resolution divisor) of the two newest outputs; NASNet's first cell has no older one
        prev_prev: tuple[int, int] | None = None if style == "nasnet" else (c_stem, 1)
        prev, c_cell, c_aux = (c_stem, 1), channels, c_stem
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in self.reduce_at
            if reduction:
                c_cell *= 2
            cell_type = "reduce" if reduction else "normal"
            cell = PaperCell(c, style, cell_type, nodes, ops, concat[cell_type],
                             None if prev_prev is None else prev_prev[0], prev[0], c_cell,
                             prev_prev is not None and prev_prev[1] != prev[1])
            self.cells.append(cell)
            out = (cell.out_channels, prev[1] * (2 if reduction else 1))
            prev_prev, prev = prev, out
            if i == self.aux_at:
                c_aux = out[0]
        # ENAS's auxiliary head ends in a bias-free linear layer, as its classifier does
        self.auxiliary_head = AuxiliaryHead(c_aux, shape.num_classes, bias=style == "nasnet") \
            if auxiliary else None
        self.relu = nn.ReLU()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev[0], shape.num_classes, bias=style == "nasnet")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s1 = self.stem(x)
        s0 = None if self.style == "nasnet" else s1
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_at and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(self.relu(s1)), 1))
        return (logits, aux) if aux is not None else logits
