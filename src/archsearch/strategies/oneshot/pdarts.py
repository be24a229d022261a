"""P-DARTS: Chen, Xie, Wu & Tian, "Progressive Differentiable Architecture Search: Bridging the Depth Gap between
Search and Evaluation", ICCV 2019.

DARTS searches a shallow supernet and evaluates a deep network; P-DARTS closes the gap by searching in ``stages``
of growing depth (CIFAR-10: 5, 11, 17 cells) while shrinking the candidate set of every edge, so that the deeper
supernets still fit in memory (8 -> 5 -> 3 candidates). Per stage (Sec. 3.2-3.3):

* a fresh supernet at that stage's depth and fresh α, holding per edge only the candidates kept so far (the other
  candidates are left out of the softmax, exactly as if they were not built); weights and α are trained as in
  first-order DARTS, the weights' learning rate following a cosine schedule within the stage;
* dropout on the parameter-free skip connections at a rate that grows from stage to stage (``skip_dropout``,
  P-DARTS: 0.0, 0.4, 0.7) and decays within a stage as p·exp(-0.2·epoch), so that the search does not collapse
  onto skip connections, which train fastest;
* at the end of a stage the weakest candidates of every edge (lowest softmax(α) among those kept) are dropped,
  leaving ``keep[stage]`` candidates ('none' is never dropped: its weight is how DARTS measures an edge's
  strength, and the derivation never picks it).

The derived architecture is DARTS's rule on the last stage's α restricted to the kept candidates, with P-DARTS's
search-space regularisation: while the normal cell (every decision, for spaces without cell types) holds more
than ``max_skip`` (M = 2) skip connections, the skip connection with the lowest weight is removed and the cell
derived again. Depth is grown through a setting of the space (``depth_setting``: ``layers`` for the ``cell``
space, ``cells_per_stage`` for ``nb201``), by ``depth_step`` per stage.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ...errors import UserError
from ...genotypes import CELL_TYPES, input_label, op_label
from ...space import Architecture
from ...training.loop import accuracy
from .base import OneShotOptions, register_oneshot
from .cell_supernet import CellSupernet, edge_label
from .darts import DARTS
from .supernet import MixedOp, build_supernet

DEPTH_SETTINGS = {"layers": 2, "cells_per_stage": 1}  # space setting -> default growth per stage


@dataclass
class PDARTSOptions(OneShotOptions):
    stages: int = 3
    depth_setting: str | None = None  # the space setting that sets depth; None: "layers" or "cells_per_stage"
    depth_step: int | None = None  # cells added per stage; None: 2 for "layers", 1 for "cells_per_stage"
    keep: tuple = (5, 3)  # candidates per edge kept for stages 2, 3, ... ('none' included when present)
    skip_dropout: tuple = (0.0, 0.4, 0.7)  # dropout on skip connections per stage (decays within a stage)
    skip_dropout_decay: float = 0.2
    max_skip: int = 2  # M: at most this many skip connections in the derived (normal) cell
    skip_name: str = "skip_connect"
    warmup_epochs: int = 0  # per stage, epochs that train only the weights (P-DARTS: 10 of 25)

    def __post_init__(self):
        self.keep, self.skip_dropout = tuple(self.keep), tuple(self.skip_dropout)
        if self.stages < 1:
            raise UserError(f"P-DARTS option stages must be at least 1, got {self.stages}")
        if any(not isinstance(k, int) or k < 2 for k in self.keep):
            raise UserError(f"P-DARTS option keep must list candidate counts of at least 2, got {list(self.keep)}")
        if not self.skip_dropout or any(not 0 <= p < 1 for p in self.skip_dropout):
            raise UserError(f"P-DARTS option skip_dropout must list rates in [0, 1), got {list(self.skip_dropout)}")
        if self.max_skip < 0:
            raise UserError(f"P-DARTS option max_skip must be >= 0, got {self.max_skip}")


@register_oneshot("pdarts")
class PDARTS(DARTS):
    """Progressive DARTS: stages of growing depth, shrinking candidate sets, skip dropout, at most M skips."""

    Options = PDARTSOptions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.depth_key, self.base_depth = self._depth_setting()
        self.stage = 0  # the base class built the stage-1 supernet: the space's own depth, every candidate
        self.kept: dict[str, tuple[int, ...]] = {label: tuple(range(len(a)))
                                                 for label, a in self.supernet.alphas.tensors.items()}
        self._hook_skip_dropout()

    # --- stages ----------------------------------------------------------------------------------------------------
    def _depth_setting(self) -> tuple[str | None, int | None]:
        cfg = {**_defaults(self.space.fn), **self.space.config, **(self.opts.search_config or {})}
        key = self.opts.depth_setting
        if key is None:
            key = next((k for k in DEPTH_SETTINGS if k in cfg), None)
        elif key not in cfg:
            raise UserError(f"P-DARTS depth_setting {key!r} is not a setting of space {self.space.name!r}")
        if key is None:
            return None, None  # a space without a depth setting: the stages only shrink the candidates
        if not isinstance(cfg[key], int):
            raise UserError(f"P-DARTS depth_setting {key!r} must be an integer setting, got {cfg[key]!r}")
        return key, int(cfg[key])

    def stage_of(self, epoch: int) -> int:
        """The stage an epoch belongs to: the epochs are split evenly over the stages."""
        return min(self.opts.stages - 1, epoch * self.opts.stages // self.total_epochs)

    def stage_bounds(self, stage: int) -> tuple[int, int]:
        epochs = [e for e in range(self.total_epochs) if self.stage_of(e) == stage]
        return (epochs[0], epochs[-1] + 1) if epochs else (self.total_epochs, self.total_epochs)

    def depth(self, stage: int) -> int | None:
        if self.depth_key is None:
            return None
        step = self.opts.depth_step if self.opts.depth_step is not None else DEPTH_SETTINGS.get(self.depth_key, 1)
        return self.base_depth + stage * int(step)

    def _build_stage(self, stage: int) -> None:
        """A fresh supernet (weights, α, optimisers) at the stage's depth, restricted to the kept candidates."""
        o = self.opts
        cfg = dict(o.search_config or {})
        if self.depth_key is not None:
            cfg[self.depth_key] = self.depth(stage)
        try:
            self.supernet = build_supernet(self.space, self.data.shape, self.seed + 1000 * stage, o.fixed_values,
                                           cfg or None)
        except (ValueError, TypeError) as e:
            raise UserError(f"cannot build the P-DARTS stage-{stage + 1} supernet of {self.space.name!r}: "
                            f"{e}") from None
        self.model = self.supernet.model.to(self.device)
        self.supernet.alphas.to(self.device)
        self.state = self.supernet.state
        self.w_opt = torch.optim.SGD(self.supernet.weights(), lr=o.w_lr, momentum=o.w_momentum,
                                     weight_decay=o.w_weight_decay)
        self.a_opt = torch.optim.Adam(self.supernet.alphas.parameters(), lr=o.alpha_lr,
                                      betas=(o.alpha_beta1, 0.999), weight_decay=o.alpha_weight_decay)
        if self.cost_vectors:
            from .latency_loss import load_cost_table
            self.cost_vectors = load_cost_table(o.cost_table, self.supernet, self.data.shape)
        self.stage = stage
        self._hook_skip_dropout()

    def _hook_skip_dropout(self) -> None:
        """Dropout after every parameter-free skip connection of the supernet (P-DARTS Sec. 3.3)."""
        for m in self.model.modules():
            if isinstance(m, MixedOp) and not m._shared:
                for k, name in enumerate(m.names):
                    cand = m.candidates[k]
                    if name == self.opts.skip_name and not any(True for _ in cand.parameters()):
                        cand.register_forward_hook(self._skip_dropout_hook)

    def _skip_dropout_hook(self, module, inputs, out):
        p = self.skip_dropout_rate()
        return F.dropout(out, p, module.training) if p > 0 else out

    def skip_dropout_rate(self) -> float:
        rates = self.opts.skip_dropout
        base = rates[min(self.stage, len(rates) - 1)]
        return base * math.exp(-self.opts.skip_dropout_decay * (self.epoch - self.stage_bounds(self.stage)[0]))

    def drop_weakest(self) -> None:
        """Keep, per edge, the ``keep[stage]`` strongest candidates of this stage ('none' always kept)."""
        n_keep = self.opts.keep[min(self.stage, len(self.opts.keep) - 1)]
        for label, a in self.supernet.alphas.tensors.items():
            options = self.supernet.options(label)
            if not _is_op_decision(options):
                continue
            kept = self.kept[label]
            p = F.softmax(a.detach().cpu()[list(kept)], 0)
            none = [k for k in kept if options[k] == "none"]
            ranked = sorted((k for k in kept if options[k] != "none"), key=lambda k: -float(p[kept.index(k)]))
            self.kept[label] = tuple(sorted(none + ranked[:max(1, n_keep - len(none))]))

    def train_epoch(self) -> float:
        new = self.stage_of(self.epoch)
        if new != self.stage:
            self.drop_weakest()
            self._build_stage(new)
        return super().train_epoch()

    # --- the DARTS step on the kept candidates ---------------------------------------------------------------------
    def _softmax(self) -> None:
        self.state.set("softmax", path=self.kept)

    def step(self, xt, yt, xv, yv) -> float:
        self._softmax()
        if self.epoch - self.stage_bounds(self.stage)[0] >= self.opts.warmup_epochs:
            self.alpha_step(xv, yv)
        return self.w_step(xt, yt)

    def supernet_accuracy(self) -> float:
        self._softmax()
        measure = getattr(self, "accuracy", None)  # the base class's (data-parallel aware) when it has one
        return measure(self.x_val, self.y_val) if measure else accuracy(self.model, self.x_val, self.y_val,
                                                                           device=self.device)

    def _lr(self) -> float:
        """Cosine from w_lr to w_lr_min within each stage (each stage is a search of its own in P-DARTS)."""
        o = self.opts
        start, end = self.stage_bounds(self.stage_of(self.epoch))
        t = (self.epoch - start) / max(1, end - start)
        return o.w_lr_min + 0.5 * (o.w_lr - o.w_lr_min) * (1 + math.cos(math.pi * min(1.0, t)))

    # --- derivation ------------------------------------------------------------------------------------------------
    def scores(self) -> dict[str, torch.Tensor]:
        """softmax(α) over the kept candidates (0 for the dropped ones); raw α for input decisions."""
        out = {}
        for label, a in self.supernet.alphas.tensors.items():
            a = a.detach().cpu()
            if not _is_op_decision(self.supernet.options(label)):
                out[label] = a
                continue
            kept = list(self.kept[label])
            p = torch.zeros_like(a)
            p[kept] = F.softmax(a[kept], 0)
            out[label] = p
        return out

    def derive(self) -> Architecture:
        """DARTS's derivation on the kept candidates, then at most ``max_skip`` skips (P-DARTS Sec. 3.3)."""
        scores = self.scores()
        arch = self.supernet.derive(scores)
        for _ in range(sum(len(s) for s in scores.values())):
            skips = self.skip_edges(arch)
            if len(skips) <= self.opts.max_skip:
                break
            label, k = min(skips, key=lambda lk: float(scores[lk[0]][lk[1]]))
            scores[label] = scores[label].clone()
            scores[label][k] = 0.0
            arch = self.supernet.derive(scores)
        return arch

    def skip_edges(self, arch: Architecture) -> list[tuple[str, int]]:
        """(α label, candidate index) of every skip connection the architecture's limited cell uses."""
        skip = self.opts.skip_name
        out = []
        if isinstance(self.supernet, CellSupernet):
            ops, t = self.supernet.ops, CELL_TYPES[0]  # P-DARTS limits the normal cell
            for i in range(self.supernet.nodes):
                for s in (0, 1):
                    if arch[op_label(t, i, s)] == skip:
                        out.append((edge_label(t, i, arch[input_label(t, i, s)][0]), ops.index(skip)))
            return out
        for label in self.supernet.alphas.labels:
            options = self.supernet.options(label)
            if _is_op_decision(options) and arch.get(label) == skip:
                out.append((label, list(options).index(skip)))
        return out

    # --- checkpoints -----------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"stage": self.stage, "kept": {k: list(v) for k, v in self.kept.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        extra = state.get("extra") or {}
        self.kept = {k: tuple(v) for k, v in extra.get("kept", self.kept).items()}
        if extra.get("stage", 0) != self.stage:
            self._build_stage(int(extra["stage"]))
        super().load_state_dict(state)


def _is_op_decision(options) -> bool:
    return bool(options) and all(isinstance(o, str) for o in options)


def _defaults(fn) -> dict[str, Any]:
    try:
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}
    except (TypeError, ValueError):
        return {}
