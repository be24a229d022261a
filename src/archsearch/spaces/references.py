"""The hand-designed reference architecture of each built-in space: what a person would write in it by hand.
Every search trains it with the same evaluator, seed and fidelity, so "best found vs reference" says what the
search added (the seeds' warning: random search and hand design are strong baselines). Each function reads the
space's own decisions, so it follows the space's configuration (layers, nodes, stages)."""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from ..space import Architecture, Decision, SearchSpace
from .mbconv import DEFAULT_DEPTHS
from .registry import register_reference


def _pick(space: SearchSpace, rule: Callable[[Decision], Any]) -> Architecture:
    """Every decision from ``rule`` (None: its first choice), canonicalised."""
    out = {}
    for d in space.decisions:
        v = rule(d)
        out[d.label] = d.choices[0] if v is None or not d.contains(v) else v
    return space.canonical(Architecture(out))


def _closest(choices, target):
    """The choice nearest ``target`` (a tie goes to the larger: a 3x3 stand-in is 5x5 rather than 1x1)."""
    return min(choices, key=lambda c: (abs(float(c) - target), -float(c)))


def _first_of(choices, preferred: Sequence[str]):
    """The first of ``preferred`` the decision offers (None: none of them)."""
    return next((p for p in preferred if p in choices), None)


#: Cell ops nearest a 3x3 conv, best first; and the shortcut, or failing that no branch at all.
_CELL_CONVS = ("sep_conv_3x3", "dil_conv_3x3", "sep_conv_5x5", "dil_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7")
_CELL_SHORTCUTS = ("skip_connect", "none")


def macro(space: SearchSpace) -> Architecture:
    """A plain CNN: every layer a 3x3 conv, no skips, filters growing with depth (the smallest choice first,
    the largest in the last layers), as in VGG-style networks."""
    layers = int(space.config.get("layers", 6))

    def rule(d: Decision):
        i = int(d.label[1:].split("_")[0])
        if d.label.endswith("_op"):
            return "conv"
        if d.label.endswith("_kernel"):
            return _closest(d.choices, 3)
        if d.label.endswith("_filters"):
            ordered = sorted(d.choices)
            return ordered[min(len(ordered) - 1, i * len(ordered) // max(1, layers))]
        if d.label.endswith("_skips"):
            return ()
        return None
    return _pick(space, rule)


def nb201(space: SearchSpace) -> Architecture:
    """NAS-Bench-201's ResNet cell (Dong & Yang 2020): two 3x3 convs in sequence plus an identity shortcut."""
    return space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")


def cell(space: SearchSpace) -> Architecture:
    """A ResNet-like cell: each node adds a 3x3 separable conv (or the space's nearest conv op) of the latest
    state to that state (a residual block), chained through the nodes, in the normal and the reduction cell."""
    def rule(d: Decision):
        parts = d.label.split("_")  # normal_n0_op0, normal_n0_in1
        node, which = int(parts[1][1:]), parts[2]
        if which.startswith("in"):
            return (node + 1,)  # the previous node (input 1 = c_{k-1} for the first)
        conv = _first_of(d.choices, _CELL_CONVS)
        return conv if which == "op0" else _first_of(d.choices, _CELL_SHORTCUTS) or conv
    return _pick(space, rule)


def mbconv(space: SearchSpace) -> Architecture:
    """MobileNetV3-Large (Howard et al. 2019) where the space expresses it (its default settings), else a
    MobileNet-like stack (V2's kernel 3, expansion 6, ReLU; V3's SE where offered; or the nearest choices), the
    middle width and depth of each stage."""
    try:
        from .mbconv import parse
        return space.validate(parse(space, "mobilenetv3_large"))
    except Exception:  # noqa: BLE001 - another configuration of the space: the V2-like rule
        pass

    depths = space.config.get("depths", DEFAULT_DEPTHS)

    def rule(d: Decision):
        if d.label.endswith("_kernel"):
            return _closest(d.choices, 3)
        if d.label.endswith("_expand"):
            return _closest(d.choices, 6)
        if d.label.endswith("_se"):
            return True in d.choices
        if d.label.endswith("_act"):
            return "relu"
        if d.label.endswith("_width") or d.label.endswith("_depth"):
            return sorted(d.choices)[len(d.choices) // 2]
        if d.kind == "layer":  # block_choice="op": sS_bB, the middle depth's blocks, then skips
            s, b = (int(t[1:]) for t in d.label.split("_"))
            ds = sorted(depths[s - 1])
            return _mobile_block(d.choices) if b <= ds[len(ds) // 2] or "skip" not in d.choices else "skip"
        return None
    return _pick(space, rule)


def _mobile_block(names: Sequence[str]) -> str:
    """Among ``k5_e6_se_hs``-style candidates, the one nearest kernel 3, expansion 6, SE, ReLU."""
    def gap(name: str) -> tuple:
        m = re.fullmatch(r"k(\d+)_e([0-9.]+)(_se)?(_hs)?", name)
        if m is None:
            return (float("inf"),)
        return (abs(int(m[1]) - 3), -int(m[1]), abs(float(m[2]) - 6), m[3] is None, m[4] is not None)
    return min(names, key=gap)


def superkernel(space: SearchSpace) -> Architecture:
    """Every layer a square 3x3 kernel (the nearest square one when ``max_kernel`` < 3): the plain CNN of
    NASIB's macro space."""
    k = _closest(range(1, int(space.config.get("max_kernel", 9)) + 1), 3)
    return _pick(space, lambda d: f"{k}x{k}")


def hierarchical(space: SearchSpace) -> Architecture:
    """A plain conv stack in Liu et al.'s hierarchy: motif0 a chain of 3x3 separable convs (the space's nearest
    to a 3x3 conv; it has no dense one), the cell a chain of motif0; every other edge ``none``."""
    def rule(d: Decision):
        motif, _, edge = d.label.partition(":")
        j, i = (int(t) for t in edge.split("<-"))
        if motif == "top":
            return "motif0" if j == i + 1 else "none"
        return "sep_conv_3x3" if motif == "m0" and j == i + 1 else "none"
    return _pick(space, rule)


def rnn(space: SearchSpace) -> Architecture:
    """A plain recurrent cell: a chain of tanh nodes, each from the previous one (the vanilla-RNN / LSTM-like
    baseline DARTS compares with)."""
    def rule(d: Decision):
        n = int(d.label[4:].split("_")[0])
        return (n - 1,) if d.label.endswith("_in") else "tanh"
    return _pick(space, rule)


REFERENCES: dict[str, Callable[[SearchSpace], Architecture]] = {
    "macro": macro, "nb201": nb201, "cell": cell, "mbconv": mbconv, "superkernel": superkernel, "rnn": rnn,
    "enas-rnn": rnn, "hierarchical": hierarchical,
}
for _name, _fn in REFERENCES.items():
    register_reference(_name, _fn)
