"""FBNet: Wu, Dai, Zhang, Wang, Sun, Wu, Tian, Vajda, Jia & Keutzer, "FBNet: Hardware-Aware Efficient ConvNet
Design via Differentiable Neural Architecture Search", CVPR 2019.

The supernet mixes every candidate block of each layer with Gumbel-softmax weights m_l = GumbelSoftmax(θ_l, τ)
(Sec. 3.3: the soft sample in the forward pass, so every candidate runs, as in the paper; ``hard=True`` gives
GDAS's one-hot forward with the same gradient). The architecture loss is the paper's (Sec. 3.1, 3.3)

    L(a, w_a) = CE(a, w_a) · α · log(LAT(a))^β,     LAT(a) = Σ_l Σ_i m_{l,i} · LAT(b_{l,i}),

where LAT(b_{l,i}) comes from a per-op latency table (``archsearch profile``; FBNet's lookup table, Sec. 3.2)
and the fixed layers (stem, head) are added to it; α = 0.2, β = 0.6 as in the paper. Without a table the factor
is 1 (a latency-blind search). τ starts at 5.0 and decays by exp(-0.045) per epoch; θ uses Adam (lr 0.01, weight
decay 5e-4); the first ``warmup_epochs`` train the weights only (the paper: 10 of 90). Weights are trained on the
cross-entropy alone (the latency factor does not depend on them).

Reuses the one-shot machinery: the generic supernet (``mbconv`` with ``block_choice="op"`` is FBNet's layer-wise
space) and GDAS's Gumbel sampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ...errors import UserError
from .base import register_oneshot
from .gdas import GDAS, GDASOptions
from .supernet import search_space_of


@dataclass
class FBNetOptions(GDASOptions):
    tau_max: float = 5.0  # initial temperature
    tau_decay: float = math.exp(-0.045)  # per epoch
    hard: bool = False  # FBNet's soft Gumbel-softmax sample in the forward pass
    alpha_lr: float = 0.01
    alpha_beta1: float = 0.9
    alpha_weight_decay: float = 5e-4
    latency_table: str | None = None  # `archsearch profile` output for this space and input size
    latency_alpha: float = 0.2  # α of the loss CE · α log(LAT)^β
    latency_beta: float = 0.6  # β
    latency_unit_ms: float = 1.0  # LAT is divided by this before the log (FBNet: milliseconds)
    warmup_epochs: int = 0  # epochs that train w only


@register_oneshot("fbnet")
class FBNet(GDAS):
    """Gumbel-softmax supernet with FBNet's latency-aware loss CE · α · log(LAT)^β."""

    Options = FBNetOptions

    def __init__(self, space, data, epochs, seed=0, device=None, **options):
        super().__init__(space, data, epochs, seed=seed, device=device, **options)
        o = self.opts
        if o.latency_alpha <= 0 or o.latency_unit_ms <= 0 or o.warmup_epochs < 0:
            raise UserError("fbnet: latency_alpha and latency_unit_ms must be positive, warmup_epochs >= 0")
        self.latency_costs: dict[str, torch.Tensor] = {}
        self.fixed_latency_ms = 0.0
        if o.latency_table is not None:
            self._load_latency(o.latency_table)

    def _load_latency(self, path: str) -> None:
        from ...hardware.latency_table import LatencyTable

        table = LatencyTable.load(Path(path))
        if list(table.meta.get("input", [])) != list(self.data.shape.size):
            raise UserError(f"fbnet: latency table {path} was profiled at input {table.meta.get('input')}, the data "
                            f"is {list(self.data.shape.size)}")
        sp = search_space_of(self.space, self.opts.search_config)
        costs = table.layer_costs(sp, self.data.shape, self.supernet.values)
        self.fixed_latency_ms = table.fixed_cost(sp, self.data.shape, self.supernet.values)
        for label, a in self.supernet.alphas.tensors.items():
            if label in costs:
                per_op = costs[label]
                self.latency_costs[label] = torch.tensor([per_op[str(n)] for n in self.supernet.options(label)],
                                                         dtype=a.dtype, device=a.device)
        if not self.latency_costs:
            raise UserError(f"fbnet: latency table {path} gives no cost to any decision of space {self.space.name!r} "
                            f"(use a space whose candidates are latency units, e.g. mbconv with block_choice=op)")

    @property
    def tau(self) -> float:
        return self.opts.tau_max * self.opts.tau_decay ** self.epoch

    def sampled_latency(self) -> torch.Tensor:
        """LAT(a) of the current Gumbel sample: Σ_l m_l · LAT(b_l) plus the fixed layers (ms)."""
        gates = self.state.gates
        return self.fixed_latency_ms + sum((gates[label] * c).sum() for label, c in self.latency_costs.items())

    def expected_latency(self) -> float:
        """Σ_l softmax(θ_l) · LAT(b_l) plus the fixed layers: the latency the search is heading for (ms)."""
        with torch.no_grad():
            return float(self.fixed_latency_ms + sum((F.softmax(self.supernet.alphas[label], 0) * c).sum()
                                                     for label, c in self.latency_costs.items()))

    def alpha_loss(self, x, y):
        loss = self.loss(x, y)
        if not self.latency_costs:
            return loss
        o = self.opts
        lat = self.sampled_latency() / o.latency_unit_ms
        return loss * o.latency_alpha * torch.log(lat).clamp_min(1e-3) ** o.latency_beta

    def step(self, xt, yt, xv, yv) -> float:
        if self.epoch < self.opts.warmup_epochs:
            self.sample_gates()
            return self.w_step(xt, yt)
        return super().step(xt, yt, xv, yv)

    def run_epoch(self) -> dict[str, float]:
        metrics = super().run_epoch()
        if self.latency_costs:
            metrics["expected_latency_ms"] = self.expected_latency()
        return metrics
