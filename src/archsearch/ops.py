"""The operation library: the small building blocks every space is made of.

Conventions follow the papers' reference implementations so that published cells build with their published
parameter counts: DARTS (Liu et al., ICLR 2019) for the cell ops, NAS-Bench-201 (Dong & Yang, ICLR 2020) for
its cell, Zoph & Le (ICLR 2017) for macro layers.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Zero(nn.Module):
    """The 'none' op: outputs zeros (strided like the edge it replaces)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Identity):
    """skip_connect."""


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0, dilation: int = 1, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU - depthwise (dilated) conv - pointwise conv - BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked DilConv(dilation=1), as in DARTS/NASNet separable convolutions."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class Conv7x1_1x7(nn.Sequential):
    def __init__(self, c: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset strided 1x1 convs (DARTS/NASNet)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError("FactorizedReduce needs an even number of output channels")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        a = self.conv_1(x)
        b = self.conv_2(x[:, :, 1:, 1:] if x.shape[-1] > 1 and x.shape[-2] > 1 else x)
        if b.shape[-2:] != a.shape[-2:]:
            b = F.pad(b, (0, a.shape[-1] - b.shape[-1], 0, a.shape[-2] - b.shape[-2]))
        return self.bn(torch.cat([a, b], dim=1))


def _skip(c: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(c, c, affine)


#: DARTS-style cell ops: name -> factory(C, stride, affine). Superset of the DARTS, NASNet and AmoebaNet sets.
CELL_OPS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "none": lambda c, s, a: Zero(s),
    "avg_pool_3x3": lambda c, s, a: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, s, a: nn.MaxPool2d(3, stride=s, padding=1),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, s, a: SepConv(c, c, 3, s, 1, a),
    "sep_conv_5x5": lambda c, s, a: SepConv(c, c, 5, s, 2, a),
    "sep_conv_7x7": lambda c, s, a: SepConv(c, c, 7, s, 3, a),
    "dil_conv_3x3": lambda c, s, a: DilConv(c, c, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda c, s, a: DilConv(c, c, 5, s, 4, 2, a),
    "conv_7x1_1x7": lambda c, s, a: Conv7x1_1x7(c, s, a),
}

#: The eight DARTS primitives (Liu et al. 2019), in the paper's order.
DARTS_PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


#: NAS-Bench-201 ops: name -> factory(C_in, C_out, stride, affine).
NB201_OPS: dict[str, Callable[[int, int, int, bool], nn.Module]] = {
    "none": lambda ci, co, s, a: Zero(s),
    "skip_connect": lambda ci, co, s, a: Identity() if s == 1 and ci == co else FactorizedReduce(ci, co, a),
    "nor_conv_1x1": lambda ci, co, s, a: ReLUConvBN(ci, co, 1, s, 0, 1, a),
    "nor_conv_3x3": lambda ci, co, s, a: ReLUConvBN(ci, co, 3, s, 1, 1, a),
    "avg_pool_3x3": lambda ci, co, s, a: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
}
NB201_PRIMITIVES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class ResNetBasicBlock(nn.Module):
    """The residual reduction block between NAS-Bench-201 stages."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2, affine: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1, 1, affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, 1, affine)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False)) \
            if stride == 2 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_b(self.conv_a(x))
        return y + (self.downsample(x) if self.downsample is not None else x)


class ConvBNReLU(nn.Sequential):
    """Plain conv layer of a macro network (Zoph & Le)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class SepConvBNReLU(nn.Sequential):
    """Depthwise k x k then pointwise 1 x 1, BN, ReLU (MobileNet-style separable conv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_in, kernel, stride, kernel // 2, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Zero whole samples of a branch with probability ``drop_prob`` (scaled), as in NASNet/DARTS training."""
    if not training or drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class ClassifierHead(nn.Module):
    """Global average pooling then a linear layer."""

    def __init__(self, c_in: int, num_classes: int, pre_bn_relu: bool = False):
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(inplace=True)) if pre_bn_relu else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.pre(x)), 1))


# --------------------------------------------------------------------------------------------------------------
# Mobile blocks: MobileNetV2/V3 inverted residuals (MBConv), squeeze-and-excite, h-swish
# --------------------------------------------------------------------------------------------------------------
def make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% below ``v`` (the MobileNet rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


#: Activations of the mobile blocks: ReLU and h-swish (x * ReLU6(x + 3) / 6, Howard et al., ICCV 2019).
MOBILE_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "hswish": nn.Hardswish}


class ConvBNAct(nn.Sequential):
    """k x k conv (bias-free), BN, then an activation from MOBILE_ACTIVATIONS (or none)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = "relu"):
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(c_out)]
        if act is not None:
            layers.append(MOBILE_ACTIVATIONS[act]())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite (Hu et al., CVPR 2018) as in MobileNetV3: pool, 1x1 conv to ``squeeze`` channels, ReLU,
    1x1 conv back, hard-sigmoid gate."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class MBConv(nn.Module):
    """Mobile inverted bottleneck (Sandler et al., CVPR 2018), the block of MnasNet, ProxylessNAS, FBNet and
    MobileNetV3: 1x1 expansion to ``make_divisible(c_in * expand)`` channels (skipped when that equals c_in),
    k x k depthwise conv, optional squeeze-and-excite (to a quarter of the expanded channels, MobileNetV3's rule),
    linear 1x1 projection; a residual connection when stride 1 keeps the channels."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, expand: float = 6, stride: int = 1,
                 se: bool = False, act: str = "relu"):
        super().__init__()
        hidden = self.hidden_channels(c_in, expand)
        self.spec = self.describe(c_in, c_out, kernel, expand, stride, se, act)
        self.expand = ConvBNAct(c_in, hidden, 1, act=act) if hidden != c_in else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, act=act)
        self.se = SqueezeExcite(hidden, make_divisible(hidden // 4)) if se else nn.Identity()
        self.project = ConvBNAct(hidden, c_out, 1, act=None)
        self.residual = stride == 1 and c_in == c_out

    @staticmethod
    def hidden_channels(c_in: int, expand: float) -> int:
        return c_in if expand == 1 else make_divisible(c_in * expand)

    @classmethod
    def describe(cls, c_in: int, c_out: int, kernel: int, expand: float, stride: int, se: bool, act: str) -> str:
        """The block's configuration as a short string (its ``spec``; latency tables key on it)."""
        hidden = cls.hidden_channels(c_in, expand)
        return f"mbconv(c_in={c_in},c_out={c_out},k={kernel},hidden={hidden},s={stride},se={int(se)},act={act})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class AuxiliaryHead(nn.Module):
    """DARTS's AuxiliaryHeadCIFAR: ReLU, 5x5/3 average pool, 1x1 conv to 128, 2x2 conv to 768, linear. DARTS
    assumes an 8x8 map (-> 2x2); here maps under 5x5 skip the pool and the result is pooled to 2x2 adaptively.
    ``bias=False``: ENAS's head, the same but a bias-free linear layer (``micro_child.py``, ``aux_head/fc``)."""

    def __init__(self, c_in: int, num_classes: int, bias: bool = True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.features = nn.Sequential(
            nn.Conv2d(c_in, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, stride=3)
        x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(torch.flatten(self.features(x), 1))
