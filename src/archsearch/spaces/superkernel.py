"""NASIB's superkernel space (Singh et al., "Neural Architecture Search withIn Budget", NeurIPS 2019 Meta-Learning
workshop, Sec. 2.4): a macro network whose every layer is a convolution with any rectangular kernel i x j,
i, j <= m: m² candidates per layer (81 for m = 9, the paper's setting), m^(2L) networks.

The network: a 3x3 stem, ``layers`` conv-BN-ReLU layers (kernel searched, "same" padding, asymmetric for even
sizes), 2x2 max-pool reductions before layers L/3 and 2L/3 with the channels doubled, global pooling and a linear
classifier. A fixed model holds only its i x j convolutions.

Weight sharing in the supernet: a layer is *one* m x m superkernel and candidate i x j is its centred i x j crop
(as once-for-all networks share kernel sizes), each candidate with its own BatchNorm (crops of different sizes give
differently scaled outputs). The paper describes a superkernel of size m as "a square which encompasses all
possible rectangles" and uses a single superkernel per layer; sharing also keeps the supernet at one m x m kernel
per layer (81 weights per channel pair for m = 9, instead of Σ i·j = 2025 for 81 separate kernels) and lets the
rarely sampled rectangles start from weights that their overlapping neighbours trained. The
candidates' factories build standalone convolutions; ``build_shared()`` builds the shared superkernel, which the
supernet chooser uses (see :class:`archsearch.strategies.oneshot.supernet.SupernetChooser`).
"""
from __future__ import annotations

import math
import re
from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import ClassifierHead, ConvBNReLU
from ..space import Architecture, ArchitectureError, Chooser, InputShape, SearchSpace
from .registry import register_space


def kernel_names(m: int) -> list[str]:
    """The m² candidates, named ``{height}x{width}``, row-major: 1x1, 1x2, ..., m x m."""
    return [f"{i}x{j}" for i in range(1, m + 1) for j in range(1, m + 1)]


def _same_padding(i: int, j: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding keeping the resolution for an i x j kernel (more after for even sizes)."""
    return ((j - 1) // 2, j - 1 - (j - 1) // 2, (i - 1) // 2, i - 1 - (i - 1) // 2)


class RectConvBNReLU(nn.Module):
    """An i x j convolution with "same" padding, BN, ReLU: the op of a fixed superkernel-space model."""

    def __init__(self, c_in: int, c_out: int, i: int, j: int):
        super().__init__()
        self.pad = _same_padding(i, j)
        self.conv = nn.Conv2d(c_in, c_out, (i, j), bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(F.pad(x, self.pad))))


class SuperKernel(nn.Module):
    """One m x m kernel whose centred i x j crops are the m² candidates (each with its own BN).
    ``forward_candidate(k, x)`` runs candidate k (row-major, as :func:`kernel_names`)."""

    def __init__(self, c_in: int, c_out: int, m: int):
        super().__init__()
        self.m, self.n_candidates = m, m * m
        self.weight = nn.Parameter(torch.empty(c_out, c_in, m, m))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialisation
        self.bns = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(m * m))

    def forward_candidate(self, k: int, x: torch.Tensor) -> torch.Tensor:
        i, j = k // self.m + 1, k % self.m + 1
        top, left = (self.m - i) // 2, (self.m - j) // 2
        w = self.weight[:, :, top:top + i, left:left + j]
        return F.relu(self.bns[k](F.conv2d(F.pad(x, _same_padding(i, j)), w)))

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, superkernel {self.m}x{self.m}"


class SuperKernelCandidates(dict):
    """The candidates of one superkernel layer: name -> factory of a standalone i x j conv, plus
    ``build_shared()`` -> the weight-shared :class:`SuperKernel` (used by supernets)."""

    def __init__(self, c_in: int, c_out: int, m: int):
        super().__init__({f"{i}x{j}": partial(RectConvBNReLU, c_in, c_out, i, j)
                          for i in range(1, m + 1) for j in range(1, m + 1)})
        self.c_in, self.c_out, self.m = c_in, c_out, m

    def build_shared(self) -> SuperKernel:
        return SuperKernel(self.c_in, self.c_out, self.m)


class SuperKernelNetwork(nn.Module):
    def __init__(self, c: Chooser, shape: InputShape, layers: int, channels: int, max_kernel: int,
                 reduce_at: Sequence[int]):
        super().__init__()
        self.stem = ConvBNReLU(shape.channels, channels, 3)
        body: list[nn.Module] = []
        c_in = channels
        for i in range(layers):
            c_out = c_in
            if i in reduce_at:
                body.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                c_out = 2 * c_in
            body.append(c.layer(f"l{i}_kernel", SuperKernelCandidates(c_in, c_out, max_kernel)))
            c_in = c_out
        self.body = nn.Sequential(*body)
        self.head = ClassifierHead(c_in, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


def to_string(space: SearchSpace, arch: Architecture) -> str:
    """The kernels layer by layer, e.g. ``3x3 1x7 7x1 5x5``."""
    return " ".join(str(arch[f"l{i}_kernel"]) for i in range(space.config.get("layers", 6)))


def from_string(space: SearchSpace, text: str) -> Architecture:
    kernels = text.split()
    layers = space.config.get("layers", 6)
    if len(kernels) != layers or not all(re.fullmatch(r"\d+x\d+", k) for k in kernels):
        raise ArchitectureError(f"expected {layers} kernels such as '3x5', got {text!r}")
    return Architecture({f"l{i}_kernel": k for i, k in enumerate(kernels)})


@register_space("superkernel", formatter=to_string, parser=from_string)
def superkernel(c: Chooser, shape: InputShape, layers: int = 6, channels: int = 16, max_kernel: int = 9,
                reduce_at: Sequence[int] | None = None) -> nn.Module:
    """NASIB (2019) superkernel space: every layer a conv with any i x j kernel, i, j <= max_kernel (81 at 9).
    ``reduce_at`` defaults to layers L/3 and 2L/3."""
    if layers < 1 or channels < 1 or max_kernel < 1:
        raise ValueError(f"the superkernel space needs layers, channels and max_kernel >= 1; got {layers}, "
                         f"{channels}, {max_kernel}")
    if reduce_at is None:
        reduce_at = sorted({layers // 3, 2 * layers // 3} - {0})
    return SuperKernelNetwork(c, shape, layers, channels, max_kernel, tuple(reduce_at))
