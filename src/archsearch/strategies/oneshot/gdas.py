"""GDAS: Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours", CVPR 2019 (and SNAS: Xie et
al., "SNAS: Stochastic Neural Architecture Search", ICLR 2019).

Each step draws, per decision, a Gumbel-softmax sample of softmax(α) at temperature τ: one-hot in the forward pass
(only the sampled candidate runs) with the soft sample's gradient (straight-through), so the cost of a step is
that of one path. τ decays linearly from ``tau_max`` to ``tau_min`` over the search (GDAS: 10 -> 0.1). w is
updated on a training batch and α on a validation batch, each with a fresh sample. ``hard=False`` keeps the soft
sample in the forward pass (SNAS's relaxation: every candidate runs).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import OneShotOptions, OneShotStrategy, register_oneshot
from .supernet import sigmoid_gates


@dataclass
class GDASOptions(OneShotOptions):
    tau_max: float = 10.0
    tau_min: float = 0.1
    hard: bool = True  # one-hot forward (GDAS); False: soft Gumbel-softmax sample (SNAS)


@register_oneshot("gdas")
class GDAS(OneShotStrategy):
    """Gumbel-softmax sampled single paths, α learnt through the straight-through gradient."""

    Options = GDASOptions

    @property
    def tau(self) -> float:
        o = self.opts
        return o.tau_max - (o.tau_max - o.tau_min) * self.epoch / max(1, self.total_epochs - 1)

    def sample_gates(self) -> None:
        gates = {}
        for label, a in self.supernet.alphas.tensors.items():
            if self.supernet.n_chosen(label) != 1:
                gates[label] = sigmoid_gates(a, self.gen, self.tau, self.opts.hard)
                continue
            while True:  # as GDAS: resample in the (rare) case of an infinite noise value
                gumbel = -torch.empty(a.shape).exponential_(generator=self.gen).log().to(a.device)
                probs = F.softmax((F.log_softmax(a, 0) + gumbel) / self.tau, 0)
                if torch.isfinite(probs).all():
                    break
            one_hot = F.one_hot(probs.argmax(), len(probs)).to(probs.dtype)
            gates[label] = one_hot - probs.detach() + probs if self.opts.hard else probs
        self.state.set("gumbel", gates=gates)
        self.state.hard = self.opts.hard

    def step(self, xt, yt, xv, yv) -> float:
        self.sample_gates()
        loss = self.w_step(xt, yt)
        self.sample_gates()
        self.alpha_step(xv, yv)
        return loss
