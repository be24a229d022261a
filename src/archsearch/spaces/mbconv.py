"""The MBConv macro space of hardware-aware NAS: MnasNet (Tan et al., CVPR 2019), ProxylessNAS (Cai et al.,
ICLR 2019), FBNet (Wu et al., CVPR 2019) and MobileNetV3 (Howard et al., ICCV 2019).

A stem (3x3 conv, stride ``stem_stride``), stages of mobile inverted bottlenecks (:class:`~archsearch.ops.MBConv`), then
MobileNetV3's efficient head (1x1 conv, global pool, 1x1 "conv" to ``feature_channels``, classifier). Decisions:

* per stage ``s``: ``sS_width`` (output channels) and ``sS_depth`` (number of blocks; MnasNet's factorised
  hierarchical space);
* per block ``b``: ``sS_bB_kernel`` (3/5/7), ``sS_bB_expand`` (expansion ratio), ``sS_bB_se`` (squeeze-and-excite
  on/off) and ``sS_bB_act`` (ReLU or h-swish). Blocks beyond the stage's depth are inactive.

The first block of a stage has the stage's stride. The defaults are MobileNetV3-Large's layout (its six stages of
16/24/40/80/112/160 channels, strides 1/2/2/2/1/2, head 960/1280), with widths and depths around it and the
expansion ratios its table uses (1, 2.3, 2.5, 3, 4, 6), so that ``mobilenetv3_large`` (seed table, Howard et al.
Table 1) is an architecture of the default space. ``width_mult`` scales every channel count (MobileNet's
multiplier). On small inputs a stride-2 layer keeps stride 1 once halving would go below ``min_resolution``
(8x8 digits: 8 -> 4 -> 2); ``stem_stride=1`` keeps the stem at full resolution.

``block_choice="op"`` asks instead one ``layer`` decision per block, ``sS_bB``, among every (kernel, expansion,
SE, activation) candidate (named ``k5_e6_se_hs``), plus ``skip`` for the blocks beyond the stage's smallest
depth: FBNet's layer-wise space, which one-shot strategies can relax (a supernet mixes the candidates of each
block; widths are fixed during such a search).

Text form, one group per stage (``+se`` squeeze-and-excite, ``/hs`` h-swish, ReLU otherwise)::

    16x1(k3e1) 24x2(k3e4 k3e3) 40x3(k5e3+se k5e3+se k5e3+se) ...

Models expose ``latency_units()``: the stem, every block and the head with their input shapes, the units a
per-op latency table (FBNet, ProxylessNAS) profiles; ``enumerate_latency_units`` lists every unit the space can
produce, which is what ``archsearch profile`` measures.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from ..ops import MOBILE_ACTIVATIONS, ConvBNAct, MBConv, make_divisible
from ..space import Architecture, ArchitectureError, Chooser, InputShape, SearchSpace
from .registry import register_space

DEFAULT_WIDTHS = ((16,), (16, 24, 32), (32, 40, 48), (64, 80, 96), (96, 112, 128), (144, 160, 176))
DEFAULT_DEPTHS = ((1,), (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4))
DEFAULT_STRIDES = (1, 2, 2, 2, 1, 2)
DEFAULT_EXPANDS = (1, 2.3, 2.5, 3, 4, 6)

#: MobileNetV3-Large (Howard et al., ICCV 2019, Table 1) in this space's text form.
MOBILENETV3_LARGE = ("16x1(k3e1) 24x2(k3e4 k3e3) 40x3(k5e3+se k5e3+se k5e3+se) "
                     "80x4(k3e6/hs k3e2.5/hs k3e2.3/hs k3e2.3/hs) 112x2(k3e6+se/hs k3e6+se/hs) "
                     "160x3(k5e6+se/hs k5e6+se/hs k5e6+se/hs)")
PRESETS = {"mobilenetv3_large": MOBILENETV3_LARGE, "mobilenetv3-large": MOBILENETV3_LARGE}


class Stem(ConvBNAct):
    def __init__(self, c_in: int, c_out: int, stride: int, act: str):
        super().__init__(c_in, c_out, 3, stride, act=act)
        self.spec = f"stem(c_in={c_in},c_out={c_out},k=3,s={stride},act={act})"


class Skip(nn.Identity):
    """A block left out (FBNet's ``skip`` candidate): the identity, a latency unit of (almost) no cost."""

    def __init__(self, channels: int):
        super().__init__()
        self.spec = f"skip(c={channels})"


class Head(nn.Module):
    """MobileNetV3's efficient last stage: 1x1 conv + BN + act, global pool, linear to ``feature_channels``
    (the paper's "conv2d 1x1, NBN"), act, dropout, linear classifier."""

    def __init__(self, c_in: int, head: int, features: int, num_classes: int, act: str, dropout: float):
        super().__init__()
        self.spec = f"head(c_in={c_in},head={head},features={features},classes={num_classes},act={act})"
        self.conv = ConvBNAct(c_in, head, 1, act=act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(head, features), MOBILE_ACTIVATIONS[act](), nn.Dropout(dropout),
                                        nn.Linear(features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.conv(x)), 1))


class MBConvNetwork(nn.Module):
    """stem -> blocks -> head. ``unit_inputs`` holds the input shape (C, H, W) of each latency unit."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module,
                 unit_inputs: list[tuple[int, int, int]]):
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head
        self.unit_inputs = unit_inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def latency_units(self) -> list[tuple[str, nn.Module]]:
        """(key, module) for the stem, every block and the head, in order: a latency table's entries."""
        mods = [self.stem, *self.blocks, self.head]
        return [(unit_key(m.spec, s), m) for m, s in zip(mods, self.unit_inputs)]


def unit_key(spec: str, input_shape: Sequence[int]) -> str:
    """A latency table key: the op's configuration and the shape (C x H x W) it is applied to."""
    return f"{spec}@{'x'.join(str(int(d)) for d in input_shape)}"


# --------------------------------------------------------------------------------------------------------------
# the space
# --------------------------------------------------------------------------------------------------------------
def _stage_widths(widths: Sequence[Sequence[int]], mult: float) -> list[tuple[int, ...]]:
    out = []
    for ws in widths:
        scaled = [int(w) if mult == 1 else make_divisible(w * mult) for w in ws]
        out.append(tuple(dict.fromkeys(scaled)))  # rounding may merge options
    return out


def _downsample(stride: int, res: tuple[int, int], min_resolution: int) -> tuple[int, tuple[int, int]]:
    if stride == 1 or min(res) // 2 < min_resolution:
        return 1, res
    return 2, ((res[0] + 1) // 2, (res[1] + 1) // 2)


def _check(widths, depths, strides) -> None:
    if not (len(widths) == len(depths) == len(strides)) or not widths:
        raise ValueError(f"mbconv: widths, depths and strides need one entry per stage "
                         f"(got {len(widths)}, {len(depths)}, {len(strides)})")
    for ds in depths:
        if not ds or min(ds) < 1:
            raise ValueError(f"mbconv: every stage needs depth options >= 1, got {list(ds)}")


class _Plan:
    """The configuration, resolved for an input shape: widths after the multiplier, strides after clamping."""

    def __init__(self, shape: InputShape, widths, depths, strides, stem_channels, stem_act, head_channels,
                 feature_channels, width_mult, min_resolution, stem_stride=2):
        _check(widths, depths, strides)
        self.widths = _stage_widths(widths, width_mult)
        self.depths = [tuple(int(d) for d in ds) for ds in depths]
        self.stem_c = make_divisible(stem_channels * width_mult) if width_mult != 1 else int(stem_channels)
        self.head_c = make_divisible(head_channels * width_mult) if width_mult != 1 else int(head_channels)
        self.feat_c = make_divisible(feature_channels * width_mult) if width_mult != 1 else int(feature_channels)
        self.stem_act = stem_act
        res = (shape.height, shape.width)
        self.stem_stride, res = _downsample(int(stem_stride), res, min_resolution)
        self.stem_in = (shape.channels, shape.height, shape.width)
        self.stage_in_res, self.strides = [], []
        for s in strides:
            self.stage_in_res.append(res)
            st, res = _downsample(int(s), res, min_resolution)
            self.strides.append(st)
        self.out_res = res


@register_space("mbconv", formatter=lambda sp, a: to_string(sp, a), parser=lambda sp, t: parse(sp, t))
def mbconv(c: Chooser, shape: InputShape, widths: Sequence[Sequence[int]] = DEFAULT_WIDTHS,
           depths: Sequence[Sequence[int]] = DEFAULT_DEPTHS, strides: Sequence[int] = DEFAULT_STRIDES,
           kernels: Sequence[int] = (3, 5, 7), expand_ratios: Sequence[float] = DEFAULT_EXPANDS,
           se: Sequence[bool] = (False, True), activations: Sequence[str] = ("relu", "hswish"),
           stem_channels: int = 16, stem_act: str = "hswish", head_channels: int = 960,
           feature_channels: int = 1280, width_mult: float = 1.0, dropout: float = 0.2,
           min_resolution: int = 2, block_choice: str = "values", stem_stride: int = 2) -> nn.Module:
    """MnasNet/ProxylessNAS/MobileNetV3 MBConv space: per-block kernel, expansion, SE and activation,
    per-stage depth and width (defaults: MobileNetV3-Large's layout)."""
    for a in activations:
        if a not in MOBILE_ACTIVATIONS:
            raise ValueError(f"mbconv: unknown activation {a!r}; choose from {sorted(MOBILE_ACTIVATIONS)}")
    if block_choice not in ("values", "op"):
        raise ValueError(f"mbconv: block_choice must be 'values' or 'op', got {block_choice!r}")
    p = _Plan(shape, widths, depths, strides, stem_channels, stem_act, head_channels, feature_channels,
              width_mult, min_resolution, stem_stride)
    stem = Stem(shape.channels, p.stem_c, p.stem_stride, stem_act)
    inputs = [p.stem_in]
    blocks: list[nn.Module] = []
    c_prev = p.stem_c
    for s in range(len(p.widths)):
        width = c.value(f"s{s + 1}_width", p.widths[s])
        depth = c.value(f"s{s + 1}_depth", p.depths[s]) if block_choice == "values" else max(p.depths[s])
        res = p.stage_in_res[s]
        for b in range(max(p.depths[s])):
            stride = p.strides[s] if b == 0 else 1
            if block_choice == "op":
                cands = {name: _block_factory(c_prev, width, *cfg, stride=stride)
                         for name, cfg in op_candidates(kernels, expand_ratios, se, activations).items()}
                if b >= min(p.depths[s]):
                    cands["skip"] = lambda ch=c_prev: Skip(ch)
                blocks.append(c.layer(f"s{s + 1}_b{b + 1}", cands))
                inputs.append((c_prev, *res))
                if b == 0 and stride == 2:
                    res = ((res[0] + 1) // 2, (res[1] + 1) // 2)
                c_prev = width
                continue
            active = None if b < min(p.depths[s]) else b < depth
            pre = f"s{s + 1}_b{b + 1}_"
            k = c.value(pre + "kernel", kernels, active=active)
            e = c.value(pre + "expand", expand_ratios, active=active)
            use_se = c.value(pre + "se", se, active=active)
            act = c.value(pre + "act", activations, active=active)
            if active is False:
                continue
            blocks.append(MBConv(c_prev, width, k, e, stride, bool(use_se), act))
            inputs.append((c_prev, *res))
            if b == 0 and stride == 2:
                res = ((res[0] + 1) // 2, (res[1] + 1) // 2)
            c_prev = width
    inputs.append((c_prev, *p.out_res))
    head = Head(c_prev, p.head_c, p.feat_c, shape.num_classes, stem_act, dropout)
    return MBConvNetwork(stem, blocks, head, inputs)


# --------------------------------------------------------------------------------------------------------------
# every latency unit of the space (what `archsearch profile` measures)
# --------------------------------------------------------------------------------------------------------------
Unit = tuple[str, Callable[[], nn.Module], tuple[int, int, int]]


def enumerate_latency_units(shape: InputShape, **config: Any) -> Iterator[Unit]:
    """Every (key, factory, input shape) a model of the space can contain, each once: every candidate op at
    every input shape it meets (a block's input channels are any width of the previous stage for the first
    block of a stage, the stage's own width after it)."""
    o = _settings(config)
    p = _Plan(shape, o["widths"], o["depths"], o["strides"], o["stem_channels"], o["stem_act"], o["head_channels"],
              o["feature_channels"], o["width_mult"], o["min_resolution"], o["stem_stride"])
    kernels, expand_ratios, se, activations = o["kernels"], o["expand_ratios"], o["se"], o["activations"]
    stem_act, block_choice, dropout = o["stem_act"], o["block_choice"], o["dropout"]
    seen: set[str] = set()

    def emit(factory, spec_of, in_shape):
        key = unit_key(spec_of, in_shape)
        if key not in seen:
            seen.add(key)
            yield key, factory, tuple(in_shape)

    stem = f"stem(c_in={shape.channels},c_out={p.stem_c},k=3,s={p.stem_stride},act={stem_act})"
    yield from emit(lambda: Stem(shape.channels, p.stem_c, p.stem_stride, stem_act), stem, p.stem_in)
    prev_widths: tuple[int, ...] = (p.stem_c,)
    for s in range(len(p.widths)):
        res = p.stage_in_res[s]
        res2 = ((res[0] + 1) // 2, (res[1] + 1) // 2) if p.strides[s] == 2 else res
        for w in p.widths[s]:
            for first in (True, False):
                if not first and max(p.depths[s]) < 2:
                    continue
                c_ins, stride, r = (prev_widths, p.strides[s], res) if first else ((w,), 1, res2)
                for ci in c_ins:
                    for k in kernels:
                        for e in expand_ratios:
                            for u in se:
                                for a in activations:
                                    blk = _block_factory(ci, w, k, e, bool(u), a, stride=stride)
                                    yield from emit(blk, blk.spec, (ci, *r))
                if block_choice == "op" and not first and max(p.depths[s]) > min(p.depths[s]):
                    yield from emit(lambda w=w: Skip(w), f"skip(c={w})", (w, *r))
        prev_widths = p.widths[s]
    for ci in prev_widths:
        spec = f"head(c_in={ci},head={p.head_c},features={p.feat_c},classes={shape.num_classes},act={stem_act})"
        yield from emit(lambda ci=ci: Head(ci, p.head_c, p.feat_c, shape.num_classes, stem_act, dropout), spec,
                        (ci, *p.out_res))


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """The space's configuration with its defaults filled in (the space function's own defaults)."""
    params = inspect.signature(mbconv).parameters
    out = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    unknown = sorted(set(config) - set(out))
    if unknown:
        raise ValueError(f"mbconv: unknown setting {unknown[0]!r}")
    return {**out, **config}


def op_candidates(kernels, expand_ratios, se, activations) -> dict[str, tuple[int, float, bool, str]]:
    """``block_choice="op"``: candidate name -> (kernel, expansion, SE, activation), e.g. ``k5_e6_se_hs``."""
    out = {}
    for k in kernels:
        for e in expand_ratios:
            for u in se:
                for a in activations:
                    out[f"k{k}_e{_num(e)}{'_se' if u else ''}{'_hs' if a == 'hswish' else ''}"] = (k, e, bool(u), a)
    return out


def _block_factory(c_in, c_out, k, e, se, act, stride):
    """A factory with the block's spec known without building it."""
    spec = MBConv.describe(c_in, c_out, k, e, stride, se, act)

    def factory() -> nn.Module:
        return MBConv(c_in, c_out, k, e, stride, se, act)
    factory.spec = spec  # type: ignore[attr-defined]
    return factory


mbconv.enumerate_latency_units = enumerate_latency_units  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------------------
# text form
# --------------------------------------------------------------------------------------------------------------
def _n_stages(space: SearchSpace) -> int:
    return len(space.config.get("widths", DEFAULT_WIDTHS))


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def to_string(space: SearchSpace, arch: Architecture) -> str:
    """``24x2(k3e4 k3e3) ...``: per stage width x depth, then kernel, expansion, ``+se``, ``/hs`` per block
    (``block_choice="op"``: every block position, ``skip`` for the ones left out)."""
    if space.config.get("block_choice", "values") == "op":
        return _op_string(space, arch)
    stages = []
    for s in range(1, _n_stages(space) + 1):
        depth = int(arch[f"s{s}_depth"])
        toks = []
        for b in range(1, depth + 1):
            pre = f"s{s}_b{b}_"
            toks.append(f"k{arch[pre + 'kernel']}e{_num(arch[pre + 'expand'])}"
                        f"{'+se' if arch[pre + 'se'] else ''}{'/hs' if arch[pre + 'act'] == 'hswish' else ''}")
        stages.append(f"{arch[f's{s}_width']}x{depth}({' '.join(toks)})")
    return " ".join(stages)


def _op_string(space: SearchSpace, arch: Architecture) -> str:
    stages = []
    depths = space.config.get("depths", DEFAULT_DEPTHS)
    for s in range(1, _n_stages(space) + 1):
        toks = []
        for b in range(1, max(depths[s - 1]) + 1):
            name = str(arch[f"s{s}_b{b}"])
            m = re.fullmatch(r"k(\d+)_e([0-9.]+)(_se)?(_hs)?", name)
            toks.append("skip" if m is None else f"k{m[1]}e{m[2]}{'+se' if m[3] else ''}{'/hs' if m[4] else ''}")
        stages.append(f"{arch[f's{s}_width']}x{len(toks)}({' '.join(toks)})")
    return " ".join(stages)


_STAGE = re.compile(r"(\d+)x(\d+)\(([^)]*)\)")
_BLOCK = re.compile(r"k(\d+)e([0-9.]+)(\+se)?(/hs)?")


def parse(space: SearchSpace, text: str) -> Architecture:
    """Read the text form (or a preset name such as ``mobilenetv3_large``) as an architecture of ``space``."""
    text = PRESETS.get(text.strip().lower(), text)
    stages = _STAGE.findall(text)
    if len(stages) != _n_stages(space) or _STAGE.sub("", text).strip():
        raise ArchitectureError(f"not an mbconv architecture of {_n_stages(space)} stages: {text[:80]!r} "
                                f"(expected e.g. {MOBILENETV3_LARGE[:40]!r}... or a preset: {', '.join(PRESETS)})")
    op_mode = space.config.get("block_choice", "values") == "op"
    choices: dict[str, Any] = {}
    for s, (width, depth, body) in enumerate(stages, start=1):
        blocks = body.split()
        if len(blocks) != int(depth):
            raise ArchitectureError(f"stage {s}: depth {depth} but {len(blocks)} blocks in {body!r}")
        choices[f"s{s}_width"] = int(width)
        if not op_mode:
            choices[f"s{s}_depth"] = int(depth)
        else:  # shallower stages: the remaining positions are skipped
            positions = max(space.config.get("depths", DEFAULT_DEPTHS)[s - 1])
            blocks += ["skip"] * max(0, positions - len(blocks))
        for b, tok in enumerate(blocks, start=1):
            if op_mode and tok == "skip":
                choices[f"s{s}_b{b}"] = "skip"
                continue
            m = _BLOCK.fullmatch(tok)
            if m is None:
                raise ArchitectureError(f"stage {s} block {b}: cannot read {tok!r} (expected e.g. k5e6+se/hs)")
            e = float(m.group(2))
            e_val = int(e) if e.is_integer() else e
            if op_mode:
                choices[f"s{s}_b{b}"] = f"k{m[1]}_e{_num(e_val)}{'_se' if m[3] else ''}{'_hs' if m[4] else ''}"
                continue
            pre = f"s{s}_b{b}_"
            choices.update({pre + "kernel": int(m.group(1)), pre + "expand": e_val,
                            pre + "se": m.group(3) is not None, pre + "act": "hswish" if m.group(4) else "relu"})
    for d in space.decisions:  # inactive blocks: canonical first options
        choices.setdefault(d.label, d.choices[0])
    return space.canonical(space.validate(Architecture(choices)))
