"""Macro (layer-by-layer) space, after Zoph & Le, "Neural Architecture Search with Reinforcement Learning",
ICLR 2017: a chain of L layers, each choosing its op type (conv, depthwise-separable conv, max/avg pool,
identity), kernel size, number of filters, and skip connections from any earlier layers (the paper's anchor
points). Skip inputs are projected (1x1 conv + BN, resized by average pooling) and added to the layer's input.
Fixed 2x2 max-pool reductions sit before the layers listed in ``reduce_at``. On inputs of 24 pixels or more the
stem convolves with stride 2 (``stem_stride``, automatic by default), as Zoph & Le's and NASNet's ImageNet
networks reduce early, so a trial's cost does not grow with height x width at full resolution.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import ClassifierHead, ConvBNReLU, SepConvBNReLU
from ..space import Chooser, InputShape
from .registry import register_space

OP_TYPES = ("conv", "sep_conv", "max_pool", "avg_pool", "identity")


def _op(name: str, c_in: int, c_out: int, k: int) -> nn.Module:
    if name == "conv":
        return ConvBNReLU(c_in, c_out, k)
    if name == "sep_conv":
        return SepConvBNReLU(c_in, c_out, k)
    body: nn.Module
    if name == "max_pool":
        body = nn.MaxPool2d(k, 1, k // 2)
    elif name == "avg_pool":
        body = nn.AvgPool2d(k, 1, k // 2, count_include_pad=False)
    else:
        body = nn.Identity()
    if c_in == c_out:
        return body
    return nn.Sequential(body, nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class Projection(nn.Module):
    """Bring a skip input to the layer's channels and resolution."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)) \
            if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        if x.shape[-2:] != size:
            x = F.adaptive_avg_pool2d(x, size)
        return self.proj(x)


class MacroLayer(nn.Module):
    def __init__(self, c: Chooser, i: int, c_in: int, earlier: Sequence[int], kernels, filters, reduce: bool):
        super().__init__()
        k = c.value(f"l{i}_kernel", kernels)
        f = c.value(f"l{i}_filters", filters)
        self.reduce = nn.MaxPool2d(2, 2) if reduce else nn.Identity()
        self.skips = c.inputs(f"l{i}_skips", len(earlier), None) if earlier else None
        self.proj = nn.ModuleDict()
        if self.skips is not None:
            for j in self.skips.active_indices:
                self.proj[str(j)] = Projection(earlier[j], c_in)
        self.op = c.layer(f"l{i}_op", {name: (lambda n=name: _op(n, c_in, f, k)) for name in OP_TYPES})
        self.out_channels = f

    def forward(self, h: torch.Tensor, earlier: list[torch.Tensor]) -> torch.Tensor:
        h = self.reduce(h)
        if self.skips is not None:
            size = h.shape[-2:]
            extra = self.skips([self.proj[str(j)](earlier[j], size) for j in self.skips.active_indices])
            if extra is not None:
                h = h + extra
        return self.op(h)


class MacroNetwork(nn.Module):
    def __init__(self, c: Chooser, shape: InputShape, layers: int, stem_channels: int, kernels, filters,
                 reduce_at: Sequence[int], stem_stride: int | None = None):
        super().__init__()
        if stem_stride is None:
            stem_stride = 2 if min(shape.height, shape.width) >= 24 else 1
        self.stem = ConvBNReLU(shape.channels, stem_channels, 3, stride=int(stem_stride))
        channels = [stem_channels]  # outputs available as skip sources: stem, layer 0, layer 1, ...
        self.layers = nn.ModuleList()
        for i in range(layers):
            # the main input is the previous output; skips may come from any output before it
            layer = MacroLayer(c, i, channels[-1], channels[:-1], kernels, filters, i in reduce_at)
            self.layers.append(layer)
            channels.append(layer.out_channels)
        self.head = ClassifierHead(channels[-1], shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.stem(x)]
        for layer in self.layers:
            outs.append(layer(outs[-1], outs[:-1]))
        return self.head(outs[-1])


_SHORT = {"conv": "conv", "sep_conv": "sep", "max_pool": "max", "avg_pool": "avg", "identity": "id"}


def to_string(space, arch) -> str:
    """One token per layer: op, kernel, filters and skip sources, e.g. ``conv3-32 sep5-48<0,2 max3-24``."""
    out = []
    for i in range(space.config.get("layers", 6)):
        op = arch[f"l{i}_op"]
        tok = f"{_SHORT[op]}{'' if op == 'identity' else arch[f'l{i}_kernel']}-{arch[f'l{i}_filters']}"
        skips = arch.get(f"l{i}_skips", ())
        out.append(tok + (f"<{','.join(map(str, skips))}" if skips else ""))
    return " ".join(out)


@register_space("macro", formatter=to_string)
def macro(c: Chooser, shape: InputShape, layers: int = 6, stem_channels: int = 16,
          kernels: Sequence[int] = (1, 3, 5, 7), filters: Sequence[int] = (16, 24, 32, 48),
          reduce_at: Sequence[int] | None = None, stem_stride: int | None = None) -> nn.Module:
    """Zoph & Le (ICLR 2017) layer-wise space. ``reduce_at`` defaults to layers L/3 and 2L/3; ``stem_stride``
    None: 2 on inputs of 24 pixels or more, else 1."""
    if layers < 1:
        raise ValueError("a macro network needs at least one layer")
    if reduce_at is None:
        reduce_at = sorted({layers // 3, 2 * layers // 3} - {0})
    return MacroNetwork(c, shape, layers, stem_channels, tuple(kernels), tuple(filters), tuple(reduce_at),
                        stem_stride)
