"""ProxylessNAS: Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware",
ICLR 2019.

Paths are binarised so that a step never holds all N candidates (Sec. 3.2):

* weight step: per decision one candidate is sampled from p = softmax(α) and only it runs (one path);
* α step: two candidates are sampled from p (without replacement), one of them made active with the two
  renormalised probabilities; binary gates g (1 active, 0 other) scale them, the active one is run with
  autograd and the other without. ∂L/∂α_i = Σ_j ∂L/∂g_j · p_j(δ_ij − p_i) over the two (eq. 4, their
  "two" mode), obtained here as the gradient of the straight-through gates g = onehot − p.detach() + p. After the
  Adam step the two α are shifted so that their total probability is unchanged (the paper's rescaling), which
  leaves the unsampled candidates' probabilities as they were.

Memory per step is that of about two paths. The expected-latency term λ·Σ p·cost (eq. 5) comes from a cost table
(``latency_weight``, ``cost_table``; see latency_loss.py). α uses Adam(lr 1e-3, betas (0, 0.999)) as in the
paper's code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import OneShotOptions, OneShotStrategy, register_oneshot
from .supernet import sigmoid_gates


@dataclass
class ProxylessOptions(OneShotOptions):
    alpha_lr: float = 1e-3
    alpha_beta1: float = 0.0
    alpha_weight_decay: float = 0.0


@register_oneshot("proxyless")
class ProxylessNAS(OneShotStrategy):
    """Binarised two-path α updates, single-path weight updates."""

    Options = ProxylessOptions

    def step(self, xt, yt, xv, yv) -> float:
        self.state.set("path", self.sample_path())
        loss = self.w_step(xt, yt)
        self.binary_alpha_step(xv, yv)
        return loss

    def sample_path(self) -> dict[str, tuple[int, ...]]:
        """One candidate per decision drawn from softmax(α) (inputs: each kept with probability σ(α))."""
        path = {}
        for label, a in self.supernet.alphas.tensors.items():
            if self.supernet.n_chosen(label) == 1:
                path[label] = tuple(self.multinomial(F.softmax(a.detach(), 0), 1))
            else:
                keep = self.uniform(len(a)) < torch.sigmoid(a.detach())
                path[label] = tuple(int(i) for i in torch.nonzero(keep).flatten())
        return path

    def binary_alpha_step(self, xv, yv) -> None:
        path, gates, involved = {}, {}, {}
        for label, a in self.supernet.alphas.tensors.items():
            if self.supernet.n_chosen(label) != 1:
                gates[label] = sigmoid_gates(a, self.gen)
                continue
            if len(a) == 1:
                path[label], gates[label] = (0, 0), torch.tensor([1.0, 0.0], device=a.device)
                continue
            pair = self.multinomial(F.softmax(a.detach(), 0), 2)
            c = self.multinomial(F.softmax(a.detach()[pair], 0), 1)[0]
            active, other = pair[c], pair[1 - c]
            p = F.softmax(a[[active, other]], 0)
            path[label] = (active, other)
            gates[label] = torch.tensor([1.0, 0.0], device=a.device) - p.detach() + p
            involved[label] = ([active, other], a.detach()[[active, other]].clone())
        self.state.set("binary", path, gates)
        self.alpha_step(xv, yv)
        with torch.no_grad():  # keep the two candidates' total probability mass (the paper's rescaling)
            for label, (idx, old) in involved.items():
                a = self.supernet.alphas[label]
                offset = math.log(float(a[idx].exp().sum() / old.exp().sum()))
                a[idx] -= offset
