"""ENAS: Pham, Guan, Zoph, Le & Dean, "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018.

The LSTM controller of :mod:`archsearch.strategies.rl` samples children of the space; a child is a single path
through the supernet, so all children share their weights. Each epoch alternates the paper's two phases:

1. shared weights: one pass over the training split, each batch training the child the controller samples for it;
2. controller: ``controller_steps`` REINFORCE updates, each on the reward of one sampled child, its accuracy on a
   validation batch under the shared weights, with a moving-average baseline and an entropy bonus.

The derived architecture is, as in ENAS, the best of ``derive_samples`` children sampled from the trained
controller, ranked by validation accuracy with the shared weights (BN statistics recalibrated).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ...space import Architecture
from ..rl import Controller
from .base import OneShotOptions, OneShotStrategy, register_oneshot


@dataclass
class ENASOptions(OneShotOptions):
    controller_hidden: int = 64
    controller_lr: float = 0.005  # ENAS uses 3.5e-4 over 2000 steps an epoch; fewer steps here need a larger one
    controller_steps: int = 30  # REINFORCE updates per epoch
    baseline_decay: float = 0.95
    entropy_weight: float = 1e-4
    derive_samples: int = 10


@register_oneshot("enas")
class ENAS(OneShotStrategy):
    """Shared weights trained on controller-sampled children; the controller trained by REINFORCE."""

    Options = ENASOptions
    searches_alpha = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        gen = torch.Generator().manual_seed(self.seed + 101)
        self.controller = Controller(self.space, hidden=self.opts.controller_hidden, generator=gen)
        self.c_opt = torch.optim.Adam(self.controller.parameters(), lr=self.opts.controller_lr)
        self.baseline: float | None = None
        self._derived: tuple[int, Architecture] | None = None

    def child_path(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        return self.supernet.path_of(self.supernet.with_values(self.space.canonical(arch)))

    def step(self, xt, yt, xv, yv) -> float:
        with torch.no_grad():
            arch, _, _ = self.controller.sample()
        self.state.set("path", self.child_path(arch))
        return self.w_step(xt, yt)

    def end_epoch(self) -> None:
        """Phase 2: REINFORCE on validation batches (reward: the child's accuracy as a fraction)."""
        val = self._cycle(self.x_val, self.y_val)
        for _ in range(self.opts.controller_steps):
            xv, yv = next(val)
            arch, log_prob, entropy = self.controller.sample()
            self.state.set("path", self.child_path(arch))
            with torch.no_grad():  # the shared weights in training mode (batch statistics), as ENAS
                reward = self.reward(self.model(xv), yv)
            if self.baseline is None:
                self.baseline = reward
            loss = -(reward - self.baseline) * log_prob - self.opts.entropy_weight * entropy
            self.c_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.c_opt.step()
            self.baseline = self.opts.baseline_decay * self.baseline + (1 - self.opts.baseline_decay) * reward

    def reward(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        """The child's reward on a validation batch: its accuracy as a fraction; for a language model (targets
        of shape (N, T)) ENAS's c / perplexity with c = 80 (Sec. 3.1), scaled by 1/80 to stay in [0, 1]."""
        if y.dim() > 1:
            return float(1.0 / torch.exp(F.cross_entropy(logits, y).clamp(max=50.0)))
        return float((logits.argmax(1) == y).float().mean())

    def derive(self) -> Architecture:
        if self._derived is not None and self._derived[0] == self.epoch:
            return self._derived[1]
        gen = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)  # leaves the controller's generator
        best, best_acc = None, -1.0
        for _ in range(self.opts.derive_samples):
            with torch.no_grad():
                arch = self.supernet.with_values(self.space.canonical(self.controller.sample(gen)[0]))
            acc = self.path_accuracy(arch)
            if acc > best_acc:
                best, best_acc = arch, acc
        self._derived = (self.epoch, best)
        return best

    def extra_state(self) -> dict[str, Any]:
        return {"controller": self.controller.state_dict(), "c_opt": self.c_opt.state_dict(),
                "c_gen": self.controller.generator.get_state(), "baseline": self.baseline}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.c_opt.load_state_dict(state["c_opt"])
        self.controller.generator.set_state(state["c_gen"])
        self.baseline = state["baseline"]
